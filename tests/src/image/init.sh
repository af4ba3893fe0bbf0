#!/bin/sh
# /init of the test guest. Configuration comes from the kernel command line:
#   vnf.ip=A/N, vnf.ip6=A/N         addresses for eth0
#   vnf.ethK.ip=A/N, vnf.ethK.ip6=  addresses for ethK
#   vnf.vlan=PARENT:ID:PROTO        VLAN interface PARENT.ID, PROTO 802.1q or 802.1ad
#                                   (made in command-line order, so PARENT may be one)
#   vnf.addr=DEV:A/N                address (IPv4, or IPv6 if A has a ':') for any DEV
#   vcmd=BASE64                     shell script to run once the network is up
# The console shows VNF-READY, VNF-RUN, the script's output, then VNF-END rc=N, and the
# guest powers off. The test harness waits for these markers.
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp
echo "VNF-BOOT $(cut -d' ' -f1 /proc/uptime)"

for m in $(cat /etc/vnf/modules); do
	insmod "/lib/modules/$m.ko" || echo "VNF-INSMOD-FAILED $m"
done

ip link set dev lo up
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	vnf.ip=*) echo "eth0 ip ${arg#*=}" ;;
	vnf.ip6=*) echo "eth0 ip6 ${arg#*=}" ;;
	vnf.eth*.ip=* | vnf.eth*.ip6=*)
		key="${arg%%=*}"
		key="${key#vnf.}"
		echo "${key%%.*} ${key#*.} ${arg#*=}"
		;;
	vnf.addr=*)
		v="${arg#*=}"
		case "${v#*:}" in
		*:*) echo "${v%%:*} ip6 ${v#*:}" ;;
		*) echo "${v%%:*} ip ${v#*:}" ;;
		esac
		;;
	vnf.vlan=*)
		v="${arg#*=}"
		echo "$v" >>/run/vlans
		;;
	vcmd=*) echo "${arg#vcmd=}" >/run/vcmd ;;
	esac
done >/run/addrs

# Every NIC is brought up, configured or not: later tests put VLANs and the like on
# top of an address-less NIC.
for dev in /sys/class/net/eth*; do
	[ -e "$dev" ] && ip link set dev "${dev##*/}" up
done
# A VLAN interface's IPv6 addresses skip duplicate detection too (see below).
echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad
if [ -s /run/vlans ]; then
	while IFS=: read -r parent id proto; do
		ip link add link "$parent" name "$parent.$id" type vlan proto "$proto" id "$id" &&
			ip link set dev "$parent.$id" up ||
			echo "VNF-VLAN-FAILED $parent.$id"
	done </run/vlans
fi
while read -r dev family addr; do
	if [ "$family" = ip6 ]; then
		# A fresh address would otherwise stay tentative for a second or more.
		echo 0 >"/proc/sys/net/ipv6/conf/$dev/accept_dad"
		ip -6 addr add "$addr" dev "$dev" || echo "VNF-ADDR-FAILED $dev $addr"
	else
		ip addr add "$addr" dev "$dev" || echo "VNF-ADDR-FAILED $dev $addr"
	fi
done </run/addrs

# The carrier is up once the vhost-user backend is connected; traffic sent before
# that is lost, so the script waits (at most 45 s, then says so).
for dev in /sys/class/net/eth*; do
	[ -e "$dev" ] || continue
	n=0
	while [ "$(cat "$dev/carrier" 2>/dev/null)" != 1 ]; do
		n=$((n + 1))
		if [ $n -gt 450 ]; then
			echo "VNF-NO-CARRIER ${dev##*/}"
			break
		fi
		sleep 0.1
	done
done
echo "VNF-READY $(cut -d' ' -f1 /proc/uptime)"

rc=0
if [ -s /run/vcmd ]; then
	base64 -d /run/vcmd >/run/script.sh || echo "VNF-BAD-SCRIPT"
	echo "VNF-RUN"
	sh /run/script.sh </dev/null 2>&1
	rc=$?
fi
echo "VNF-END rc=$rc"
poweroff -f
