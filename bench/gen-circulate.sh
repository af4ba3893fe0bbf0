#!/bin/bash
# Circulate benchmark: one switch's cross-connect rate as measured by two generators,
# DPDK testpmd (exactly as ../shared/bench/dpdk-loopback.sh drives it: two virtio-user
# ports, io forwarding, `start tx_first 16`) and `vnf gen --circulate` (the same loop, zero
# copy, 512 frames injected per port). Both should report the same figure.
#
# Each measurement starts the switch afresh on CPU 1 and the generator on CPU 0, waits 2 s
# after the first frames go in, then counts what both generator ports receive for
# SECONDS, in Mpps. Rounds alternate which generator goes first. Prints each round, the
# medians and, last, the best rounds and their ratio (vnf-gen / testpmd; 1.000 = agree).
#
# testpmd's figure is its two ports' RX-packets from `show port stats all` only. (The
# awk in dpdk-loopback.sh also adds the RX-packets lines that `stop` prints afterwards,
# per port and accumulated, which count from `tx_first` on, so its figure comes out
# about three times too high; this script also prints that figure, as "harness-awk".)
#
# Each generator measures the slower of itself and the switch: where the two disagree,
# the higher figure is the nearer to the switch's own rate.
#
# usage: bench/gen-circulate.sh [-r ROUNDS] [-s SECONDS] [VNF_BINARY] [-- 'SWITCH']
#   SWITCH is run by bash with $SOCKDIR set, as dpdk-loopback.sh's COMMAND; it must serve
#   $SOCKDIR/vh0.sock and $SOCKDIR/vh1.sock (one queue pair each) and cross-connect them.
#   Default: vnf run deploy/examples/xconnect-bench.yaml.
# Needs root (hugepages for testpmd) and dpdk-testpmd (apt-get install dpdk-dev).
set -u
rounds=6 secs=6
while [ $# -gt 0 ]; do
  case $1 in
    -r) rounds=$2; shift 2 ;;
    -s) secs=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "usage: $0 [-r ROUNDS] [-s SECONDS] [VNF_BINARY] [-- 'SWITCH']" >&2; exit 2 ;;
    *) vnf=$1; shift ;;
  esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
vnf=${vnf:-$here/target/release/vnf}
[ -x "$vnf" ] || { echo "build vnf first: cargo build --release" >&2; exit 1; }
switch_cmd=${1:-$vnf run $here/deploy/examples/xconnect-bench.yaml}
command -v dpdk-testpmd >/dev/null || { echo "needs dpdk-testpmd (apt-get install dpdk-dev)" >&2; exit 1; }
if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 1024 ]; then echo 1024 >/proc/sys/vm/nr_hugepages; fi
mountpoint -q /dev/hugepages || { mkdir -p /dev/hugepages && mount -t hugetlbfs none /dev/hugepages; }

work=$(mktemp -d /tmp/gen-circulate.XXXXXX)
export SOCKDIR=$work/sock

# start_switch LOG: starts the switch on CPU 1; sets $sw to its process group.
start_switch() {
  rm -rf "$SOCKDIR"; mkdir -p "$SOCKDIR"
  setsid taskset -c 1 bash -c "tail -f /dev/null | $switch_cmd" >"$1.switch" 2>&1 &
  sw=$!
  for _ in $(seq 300); do [ -S "$SOCKDIR/vh0.sock" ] && [ -S "$SOCKDIR/vh1.sock" ] && break; sleep 0.1; done
  sleep 1
}

stop_switch() { kill -- -"$sw" 2>/dev/null; wait "$sw" 2>/dev/null; }

# testpmd_rate LOG: dpdk-loopback.sh's generator; prints Mpps.
testpmd_rate() {
  local log=$1 fifo=$work/fifo
  start_switch "$log"
  rm -f "$fifo"; mkfifo "$fifo"
  ( sleep 2; echo "start tx_first 16"; sleep 2; echo "clear port stats all"; sleep "$secs"
    echo "show port stats all"; sleep 0.5; echo "stop"; sleep 0.5; echo "quit" ) >"$fifo" &
  timeout $((secs + 30)) dpdk-testpmd --lcores '0@0,1@0' --file-prefix="gen$$" --in-memory --no-pci -m 256 \
    --single-file-segments \
    --vdev "net_virtio_user0,path=$SOCKDIR/vh0.sock,queues=1" \
    --vdev "net_virtio_user1,path=$SOCKDIR/vh1.sock,queues=1" \
    -- -i --forward-mode=io --nb-cores=1 --rxd=1024 --txd=1024 <"$fifo" >"$log.gen" 2>&1
  stop_switch
  awk -v s="$secs" '/NIC statistics for port/{p=1} p&&/RX-packets:/{n+=$2} END{printf "%.3f\n", n/s/1e6}' \
    "$log.gen" >"$log.harness"
  # Only the RX-packets line right under each port's NIC statistics banner.
  awk -v s="$secs" '/NIC statistics for port [0-9]+ +#/{p=1; next} p&&/RX-packets:/{n+=$2; p=0}
       END{printf "%.3f\n", n/s/1e6}' "$log.gen"
}

# vnf_gen_rate LOG: vnf gen --circulate, the same 2 s before counting; prints Mpps.
vnf_gen_rate() {
  local log=$1
  start_switch "$log"
  timeout $((secs + 30)) taskset -c 0 "$vnf" gen --circulate --port "$SOCKDIR/vh0.sock" \
    --port "$SOCKDIR/vh1.sock" --warmup 2 --duration "$secs" >"$log.gen" 2>&1
  stop_switch
  awk '/^circulate: rx_mpps=/{for (i = 2; i <= NF; i++) if ($i ~ /^rx_mpps=/) { sub("rx_mpps=", "", $i); v = $i } }
       END{ if (v == "") v = "0.000"; print v }' "$log.gen"
  grep -o 'frames_lost=[0-9]*' "$log.gen" | grep -qv 'frames_lost=0$' && echo "  (vnf gen lost frames: $log.gen)" >&2
}

as=() bs=() ratios=()
for r in $(seq "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then a=$(testpmd_rate "$work/tp$r"); b=$(vnf_gen_rate "$work/vg$r")
  else b=$(vnf_gen_rate "$work/vg$r"); a=$(testpmd_rate "$work/tp$r"); fi
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN{ if (a > 0) printf "%.3f", b/a; else print "nan" }')
  echo "round $r: testpmd=$a Mpps vnf-gen=$b Mpps ratio=$ratio (harness-awk=$(cat "$work/tp$r.harness") Mpps)"
  as+=("$a"); bs+=("$b"); ratios+=("$ratio")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
best() { printf '%s\n' "$@" | sort -g | tail -1; }
ba=$(best "${as[@]}"); bb=$(best "${bs[@]}")
echo "logs: $work"
echo "median: testpmd=$(median "${as[@]}") Mpps vnf-gen=$(median "${bs[@]}") Mpps ratio=$(median "${ratios[@]}")"
echo "best: testpmd=$ba Mpps vnf-gen=$bb Mpps ratio=$(awk -v a="$ba" -v b="$bb" 'BEGIN{ if (a > 0) printf "%.3f", b/a; else print "nan" }')"
