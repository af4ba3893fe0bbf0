#!/bin/bash
# Transmit-only generator benchmark: vnf gen against DPDK testpmd's virtio-user txonly.
#
# The sink is DPDK testpmd's vhost PMD in rxonly mode on CPU 1. Each round runs both
# generators on CPU 0 in turn (alternating which goes first), 64-byte frames, and reads
# the rate the sink received (a "64-byte frame" counts the FCS, so both put 60 bytes on
# the virtio wire). Prints each round and, last, the ratio of the best rounds.
#
# usage: bench/gen-txonly.sh [-r ROUNDS] [-s SECONDS] [VNF_BINARY]
set -u
rounds=6 secs=5
while [ $# -gt 0 ]; do
  case $1 in
    -r) rounds=$2; shift 2 ;;
    -s) secs=$2; shift 2 ;;
    *) break ;;
  esac
done
vnf=${1:-$(dirname "$0")/../target/release/vnf}
command -v dpdk-testpmd >/dev/null || { echo "needs dpdk-testpmd (apt-get install dpdk-dev)" >&2; exit 1; }
if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 1024 ]; then echo 1024 >/proc/sys/vm/nr_hugepages; fi
mountpoint -q /dev/hugepages || { mkdir -p /dev/hugepages && mount -t hugetlbfs none /dev/hugepages; }
[ -x "$vnf" ] || { echo "build vnf first: cargo build --release" >&2; exit 1; }
work=$(mktemp -d /tmp/gen-txonly.XXXXXX)
sock=$work/sink.sock

# rate NAME GENERATOR-COMMAND: runs the sink and the generator, prints the sink's Mpps.
rate() {
  local name=$1 gen=$2 fifo=$work/fifo
  rm -f "$fifo" "$sock"; mkfifo "$fifo"
  ( sleep 3; echo "clear port stats all"; sleep "$secs"; echo "show port stats all"; sleep 0.5; echo quit ) >"$fifo" &
  dpdk-testpmd --lcores '0@1,1@1' --file-prefix="sink$$" --in-memory --no-pci -m 256 --single-file-segments \
    --vdev "net_vhost0,iface=$sock,queues=1" -- -i --forward-mode=rxonly --auto-start \
    --rxd=1024 --txd=1024 <"$fifo" >"$work/$name.sink" 2>&1 &
  local sink=$!
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  setsid taskset -c 0 bash -c "$gen" >"$work/$name.gen" 2>&1 &
  local g=$!
  wait "$sink"
  kill -- -"$g" 2>/dev/null; wait "$g" 2>/dev/null
  # The RX-packets of `show port stats all` only: `quit` then prints forward statistics
  # counted from the start, warm-up included, which must not be taken instead.
  awk -v s="$secs" '/NIC statistics for port [0-9]+ +#/{p=1; next} p&&/RX-packets:/{n=$2; p=0} END{printf "%.3f\n", n/s/1e6}' "$work/$name.sink"
}

dpdk_gen="tail -f /dev/null | dpdk-testpmd --lcores '0@0,1@0' --file-prefix=gen$$ --in-memory --no-pci -m 256 --single-file-segments \
  --vdev net_virtio_user0,path=$sock,queues=1 -- -i --forward-mode=txonly --txpkts=60 \
  --auto-start --rxd=1024 --txd=1024"
vnf_gen="$vnf gen --port $sock --tx-only --size 64 --rate max --duration $((secs + 6))"

as=() bs=()
for r in $(seq "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then a=$(rate dpdk "$dpdk_gen"); b=$(rate vnf "$vnf_gen")
  else b=$(rate vnf "$vnf_gen"); a=$(rate dpdk "$dpdk_gen"); fi
  echo "round $r: dpdk-txonly=$a Mpps vnf-gen=$b Mpps"
  as+=("$a"); bs+=("$b")
done
best() { printf '%s\n' "$@" | sort -g | tail -1; }
ba=$(best "${as[@]}"); bb=$(best "${bs[@]}")
echo "logs: $work"
echo "best: dpdk-txonly=$ba Mpps vnf-gen=$bb Mpps ratio=$(awk -v a="$ba" -v b="$bb" 'BEGIN{ if (a > 0) printf "%.3f", b/a; else print "nan" }')"
