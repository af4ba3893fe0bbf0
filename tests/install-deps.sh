#!/bin/bash
# Installs what the integration tests need on a fresh Debian 12 machine (as root):
# QEMU 10 from bookworm-backports, busybox for the guest userland, DPDK (testpmd is an
# independent vhost-user peer), tshark and scapy as independent decoders.
# Idempotent: it skips what is already there.
set -eu
export DEBIAN_FRONTEND=noninteractive

need=()
command -v qemu-system-x86_64 >/dev/null && qemu-system-x86_64 --version | grep -q 'version 1[0-9]' || need+=(qemu)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v dpdk-testpmd >/dev/null || need+=(dpdk)
command -v tshark >/dev/null || need+=(tshark)
# cpio(1) reads the harness's initramfs back in its unit tests, as an independent check.
command -v cpio >/dev/null || need+=(cpio)
# The unit tests of vnf's packet builders decode their output with scapy.
/usr/bin/python3 -c 'import scapy' 2>/dev/null || need+=(python3-scapy)
[ ${#need[@]} -eq 0 ] && exit 0

if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
  cat >/etc/apt/sources.list.d/bookworm-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt-get update -qq
apt-get install -y -qq -t bookworm-backports qemu-system-x86 >/dev/null
apt-get install -y -qq busybox-static dpdk-dev tshark python3-scapy cpio >/dev/null
