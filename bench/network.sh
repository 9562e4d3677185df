#!/bin/bash
# Network figures for berth, side by side with Docker where dockerd runs (../shared/anchors).
#   bench/network.sh            # as root; N=20 LAT_N=500 MIB=1024 ROUNDS=3 to change the sizes
# Traffic goes only to 127.0.0.1 and to namespaces made here. Prints one line per figure;
# medians go into bench/README-network.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}; LAT_N=${LAT_N:-500}; MIB=${MIB:-1024}; ROUNDS=${ROUNDS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release -p berth-network --example netbench --bin berth-netproxy
B=$CARGO_TARGET_DIR/release
NB=$B/examples/netbench
export BERTH_NETPROXY=$B/berth-netproxy
DOCKER=/usr/bin/docker

med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# $(date -u +%FT%TZ) $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. Per-container network setup (veth into the namespace, address, route, lo up; IPAM row).
echo "berth endpoint (median of $N): $($NB endpoint "$N")"

# 2. run --rm busybox true on the default bridge, when the berth binary has `run`.
if [ -x "$B/berth" ] && "$B/berth" run --help >/dev/null 2>&1; then
  hyperfine -N -w 3 -r "$N" --export-json /tmp/berth-net-run.json "$B/berth run --rm busybox true" >/dev/null
  echo "berth run --rm busybox true: $(python3 -c 'import json;print(round(json.load(open("/tmp/berth-net-run.json"))["results"][0]["median"]*1000,1))') ms"
else
  echo "berth run --rm busybox true: n/a (no berth run in $B)"
fi

# 3. Throughput and connection latency through a published port on 127.0.0.1.
measure() { # name sink_port httpd_port
  local t=() l=()
  for _ in $(seq "$ROUNDS"); do t+=("$($NB tput "127.0.0.1:$2" "$MIB")"); done
  for _ in $(seq "$ROUNDS"); do l+=("$($NB lat "127.0.0.1:$3" "$LAT_N")"); done
  echo "$1 throughput MB/s (median of $ROUNDS x $MIB MiB): $(printf '%s\n' "${t[@]}" | med)"
  echo "$1 connect->first byte ms p50 p99 (median of $ROUNDS x $LAT_N): $(printf '%s\n' "${l[@]}" | awk '{print $1}' | med) $(printf '%s\n' "${l[@]}" | awk '{print $2}' | med)"
}

coproc SRV { "$NB" serve; }
read -r _ SINK HTTPD <&"${SRV[0]}"
measure "berth (splice proxy)" "$SINK" "$HTTPD"
exec {SRV[1]}>&-
wait "$SRV_PID" 2>/dev/null || true

if $DOCKER info >/dev/null 2>&1 && $DOCKER image inspect busybox >/dev/null 2>&1; then
  $DOCKER rm -f berthbench-sink berthbench-httpd >/dev/null 2>&1 || true
  $DOCKER run -d --name berthbench-sink -p 127.0.0.1::9000 busybox nc -ll -p 9000 -e /bin/sh -c 'cat >/dev/null' >/dev/null
  $DOCKER run -d --name berthbench-httpd -p 127.0.0.1::80 busybox sh -c 'mkdir -p /www; echo hello >/www/index.html; exec httpd -f -p 80 -h /www' >/dev/null
  sleep 1
  DS=$($DOCKER port berthbench-sink 9000/tcp | head -1 | sed 's/.*://')
  DH=$($DOCKER port berthbench-httpd 80/tcp | head -1 | sed 's/.*://')
  measure "docker (docker-proxy)" "$DS" "$DH"
  $DOCKER rm -f berthbench-sink berthbench-httpd >/dev/null
else
  echo "docker: not running here (start ../shared/anchors/setup.sh) — skipped"
fi
