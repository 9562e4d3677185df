#!/usr/bin/env bash
# The per-container monitor's memory and the OOM verdict's latency, side by side with Podman's
# conmon and Docker's containerd-shim when they answer (this script never starts or stops
# their daemons; `../shared/anchors/setup.sh` does), idle and loaded (two `yes > /dev/null`
# loops this script starts and stops by PID).
#
#   bench/monitor.sh             # release build; results in bench/out/monitor-*.txt|json
#   RUNS=5 MODES=idle ENGINES=berth BERTH=/path/to/berth bench/monitor.sh
#
# Memory: `smaps_rollup` of the process that stays with a running `sleep` container (berth's
# relay, conmon, containerd-shim-runc-v2), with one container and with CONTAINERS (default 10)
# running, since the shared pages of their code are divided among them (Pss).
# OOM: wall time of `run --memory 64m busybox sh -c 'head -c 300m /dev/zero | tail'` (the
# pipe's reader grows to the limit and is OOM-killed; the engine reports exit 137), hyperfine
# medians, and for berth the time from the kernel's kill (the cgroup's `oom_kill` count seen
# rising) to the CLI's exit.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
[ -n "${BERTH:-}" ] || { cargo build --release -q -p berth -p berth-runtime --bins; BERTH=$CARGO_TARGET_DIR/release/berth; }
RUNS=${RUNS:-5}
MODES=${MODES-idle loaded}
CONTAINERS=${CONTAINERS:-10}
ENGINES=${ENGINES:-berth docker podman}
W=${W:-$(mktemp -d /var/tmp/berth-bench.XXXXXX)}
OUT=bench/out
mkdir -p "$OUT"
export BERTH_ROOT=$W/root BERTH_RUNROOT=$W/run
LOAD_PIDS=()
load_on() {
    for _ in 1 2; do yes >/dev/null & LOAD_PIDS+=($!); done
    sleep 2
}
load_off() {
    [ ${#LOAD_PIDS[@]} -eq 0 ] && return 0
    kill "${LOAD_PIDS[@]}" 2>/dev/null || true
    wait "${LOAD_PIDS[@]}" 2>/dev/null || true
    LOAD_PIDS=()
}
have() { case " $ENGINES " in *" $1 "*) command -v "$1" >/dev/null && "$1" info >/dev/null 2>&1;; *) false;; esac; }
engine_cmd() { case $1 in docker) echo /usr/bin/docker;; podman) echo "$PODMAN";; berth) echo "$BERTH";; esac; }
L='--label berth.bench.monitor=1'
rm_ours() {
    local ids; ids=$($1 ps -aq --no-trunc --filter label=berth.bench.monitor=1 2>/dev/null) || return 0
    [ -z "$ids" ] || { $1 stop -t 0 $ids >/dev/null 2>&1; $1 rm -f $ids >/dev/null 2>&1; } || true
}
cleanup() {
    load_off
    for e in berth docker podman; do have $e && rm_ours "$(engine_cmd $e)"; done
    rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/tmp"
cp /bin/busybox "$W/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$W/rootfs/etc/passwd"
tar -C "$W/rootfs" -cf "$W/busybox.tar" .
"$BERTH" import -c 'CMD ["sh"]' "$W/busybox.tar" busybox >/dev/null
PODMAN="podman"
if have podman && ! podman run --rm --network none busybox true >/dev/null 2>&1; then
    PODMAN="podman --runtime runc"
fi
engines=(berth)
for e in docker podman; do have $e && engines+=("$e"); done
echo "engines: ${engines[*]}" >&2

# The process that stays with container $2 of engine $1.
keeper() {
    local D; D=$(engine_cmd "$1")
    case $1 in
    berth) cut -d' ' -f1 "$BERTH_ROOT/containers/$($D inspect -f '{{.Id}}' "$2")/monitor.pid" ;;
    podman) $D inspect -f '{{.State.ConmonPid}}' "$2" ;;
    docker) ps -o ppid= -p "$($D inspect -f '{{.State.Pid}}' "$2")" | tr -d ' ' ;;
    esac
}
rollup() { grep -E '^(Rss|Pss|Private_Dirty):' "/proc/$1/smaps_rollup" | awk '{printf "%s %s kB  ", $1, $2}'; }

: > "$OUT/monitor-memory.txt"
for e in "${engines[@]}"; do
    D=$(engine_cmd "$e")
    $D run -d $L --name bench-mon-1 --network none busybox sleep 100000 >/dev/null
    sleep 1
    p=$(keeper "$e" bench-mon-1)
    echo "$e ($(cat /proc/$p/comm)), 1 container: $(rollup "$p")" | tee -a "$OUT/monitor-memory.txt"
    for i in $(seq 2 "$CONTAINERS"); do
        $D run -d $L --name "bench-mon-$i" --network none busybox sleep 100000 >/dev/null
    done
    sleep 1
    echo "$e, $CONTAINERS containers, the first one's: $(rollup "$p")" | tee -a "$OUT/monitor-memory.txt"
    rm_ours "$D"
done

# OOM: when the kernel killed (the cgroup's oom_kill count rose) and when berth's CLI returned.
oom_cmd='head -c 300m /dev/zero | tail'
berth_oom_split() {
    local t0 id dir f k="" t1
    t0=$(date +%s%N)
    "$BERTH" run -d $L --name bench-oom --memory 64m --network none busybox sh -c "$oom_cmd" >/dev/null
    id=$("$BERTH" inspect -f '{{.Id}}' bench-oom)
    f=/sys/fs/cgroup/memory/berth/$id/memory.oom_control
    [ -f "$f" ] || f=/sys/fs/cgroup/berth/$id/memory.events
    while [ -z "$k" ]; do
        grep -q '^oom_kill [1-9]' "$f" 2>/dev/null && k=$(date +%s%N)
        [ -n "$k" ] || [ -f "$BERTH_ROOT/containers/$id/exit.json" ] && break
        sleep 0.005
    done
    "$BERTH" wait bench-oom >/dev/null
    t1=$(date +%s%N)
    echo "start to OOM kill $(( (${k:-$t1} - t0) / 1000000 )) ms, kill to wait's return $(( (t1 - ${k:-$t1}) / 1000000 )) ms, OOMKilled=$("$BERTH" inspect -f '{{.State.OOMKilled}}' bench-oom)"
    "$BERTH" rm -f bench-oom >/dev/null
}
: > "$OUT/monitor-oom.txt"
for mode in $MODES; do
    [ "$mode" = loaded ] && load_on
    cmds=()
    for e in "${engines[@]}"; do
        cmds+=("$(engine_cmd "$e") run --rm --memory 64m --network none busybox sh -c '$oom_cmd'")
    done
    echo "$mode load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/monitor-oom.txt"
    hyperfine -i --warmup 1 --runs "$RUNS" "${cmds[@]}" --export-json "$OUT/monitor-oom-$mode.json"
    for _ in 1 2 3; do echo "berth $mode: $(berth_oom_split)" | tee -a "$OUT/monitor-oom.txt"; done
    load_off
done
