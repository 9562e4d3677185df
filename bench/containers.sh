#!/usr/bin/env bash
# Container figures: `run --rm --network none busybox true`, the `run -d` + `stop -t 0` + `rm`
# cycle, `exec ctr true`, `ps -a` with 100 containers, each on the idle machine and loaded (two
# `yes > /dev/null` loops this script starts and stops by PID); `create` and `rm -f` of 1,000
# containers; `ps -a` with 10,000 containers; the monitor's RSS. Docker and Podman side by
# side in the same run when they answer (`../shared/anchors/setup.sh` starts them; this script
# never starts or stops them, and touches only the containers it made: label berth.bench).
#
#   bench/containers.sh          # release build; results in bench/out/containers-*.json
#   RUNS=15 MODES=loaded MANY=0 PS_COUNTS= BERTH=/path/to/berth bench/containers.sh
#
#   MODES      idle and/or loaded (default both)
#   MANY       containers for the create / rm -f figure (default 1000; 0 skips it)
#   PS_COUNTS  berth's `ps -a` with that many containers after everything else (default 10000)
#   ENGINES    default "berth docker podman"
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
[ -n "${BERTH:-}" ] || { cargo build --release -q -p berth -p berth-runtime; BERTH=$CARGO_TARGET_DIR/release/berth; }
RUNS=${RUNS:-30}
MODES=${MODES-idle loaded}
MANY=${MANY:-1000}
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
engine_cmd() { case $1 in docker) echo /usr/bin/docker;; podman) echo "$PODMAN";; berth) echo "$BERTH";; *) echo "$1";; esac; }
# Only the containers this script made.
ours() { $1 ps -aq --no-trunc --filter label=berth.bench; }
rm_ours() { # (podman's rm -f of a running container waits 10 s for SIGTERM: stop it first)
    local ids; ids=$(ours "$1" 2>/dev/null) || return 0
    [ -z "$ids" ] || { $1 stop -t 0 $ids >/dev/null 2>&1; $1 rm -f $ids >/dev/null 2>&1; } || true
}
cleanup() {
    load_off
    "$BERTH" ps -aq --no-trunc | xargs -r "$BERTH" rm -f >/dev/null 2>&1 || true
    for e in docker podman; do have $e && rm_ours "$(engine_cmd $e)"; done
    rm -rf "$W"
}
trap cleanup EXIT

# The busybox image from the host's busybox-static.
mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/tmp"
cp /bin/busybox "$W/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$W/rootfs/etc/passwd"
tar -C "$W/rootfs" -cf "$W/busybox.tar" .
"$BERTH" import -c 'CMD ["sh"]' "$W/busybox.tar" busybox >/dev/null

# Podman's default crun refuses hybrid cgroup hosts ("cgroups in hybrid mode not supported"):
# measure it with runc there.
PODMAN="podman"
if have podman && ! podman run --rm --network none busybox true >/dev/null 2>&1; then
    PODMAN="podman --runtime runc"
fi
others=()
for e in docker podman; do have $e && others+=("$e"); done
echo "engines: berth ${others[*]}" >&2

L='--label berth.bench=1'
section() { # name mode -- hyperfine args…
    local name=$1 mode=$2; shift 3
    echo "$name $mode start $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/containers-loadavg.txt"
    hyperfine "$@" --export-json "$OUT/containers-$mode-$name.json"
    echo "$name $mode end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/containers-loadavg.txt"
}
: > "$OUT/containers-loadavg.txt"

# A running container per engine for exec, and 100 containers per engine for ps -a.
"$BERTH" run -d $L --name bench-exec --network none busybox sleep 100000 >/dev/null
seq 99 | xargs -P 4 -I{} "$BERTH" create $L --network none busybox true >/dev/null
for e in "${others[@]}"; do
    D=$(engine_cmd $e)
    $D rm -f bench-exec >/dev/null 2>&1 || true
    $D run -d $L --name bench-exec --network none busybox sleep 100000 >/dev/null
    seq 99 | xargs -P 4 -I{} $D create $L --network none busybox true >/dev/null
done

for mode in $MODES; do
    [ "$mode" = loaded ] && load_on
    cmds_run=("$BERTH run --rm --network none busybox true")
    cmds_cycle=("sh -c 'id=\$($BERTH run -d --network none busybox sleep 1000); $BERTH stop -t 0 \$id >/dev/null; $BERTH rm \$id >/dev/null'")
    cmds_exec=("$BERTH exec bench-exec true")
    cmds_ps=("$BERTH ps -a")
    for e in "${others[@]}"; do
        D=$(engine_cmd $e)
        cmds_run+=("$D run --rm --network none busybox true")
        cmds_cycle+=("sh -c 'id=\$($D run -d --network none busybox sleep 1000); $D stop -t 0 \$id >/dev/null; $D rm \$id >/dev/null'")
        cmds_exec+=("$D exec bench-exec true")
        cmds_ps+=("$D ps -a")
    done
    section run "$mode" -- -N --warmup 3 --runs "$RUNS" "${cmds_run[@]}"
    section cycle "$mode" -- --warmup 2 --runs "$RUNS" "${cmds_cycle[@]}"
    section exec "$mode" -- -N --warmup 3 --runs "$RUNS" "${cmds_exec[@]}"
    section ps100 "$mode" -- -N --warmup 3 --runs "$RUNS" "${cmds_ps[@]}"
    load_off
done

# Monitor RSS of the running container (kB).
mpid=$(cut -d' ' -f1 "$BERTH_ROOT/containers/$("$BERTH" inspect -f '{{.Id}}' bench-exec)/monitor.pid")
echo "monitor: $(grep -E '^(Rss|Pss|Pss_Anon|Pss_File|Private_Dirty):' /proc/$mpid/smaps_rollup | tr -s ' ' | tr '\n' ' ')" | tee "$OUT/containers-monitor-rss.txt"
"$BERTH" ps -aq --no-trunc | xargs -r "$BERTH" rm -f >/dev/null
for e in "${others[@]}"; do rm_ours "$(engine_cmd $e)"; done

# create of MANY containers one command at a time, then one `rm -f` of all of them.
if [ "$MANY" -gt 0 ]; then
    : > "$OUT/containers-many.txt"
    for e in berth "${others[@]}"; do
        D=$(engine_cmd $e)
        l0=$(cut -d' ' -f1 /proc/loadavg)
        t0=$(date +%s.%N)
        for _ in $(seq "$MANY"); do $D create $L --network none busybox true >/dev/null; done
        t1=$(date +%s.%N)
        ids=$(ours "$D")
        [ "$(echo "$ids" | wc -l)" -eq "$MANY" ] || { echo "$e: expected $MANY containers" >&2; exit 1; }
        t2=$(date +%s.%N)
        $D rm -f $ids >/dev/null
        t3=$(date +%s.%N)
        l1=$(cut -d' ' -f1 /proc/loadavg)
        printf '%s create %d: %.1f s; rm -f %d: %.1f s (load %s -> %s)\n' "$e" "$MANY" \
            "$(awk "BEGIN{print $t1 - $t0}")" "$MANY" "$(awk "BEGIN{print $t3 - $t2}")" "$l0" "$l1" \
            | tee -a "$OUT/containers-many.txt"
    done
fi

# berth's ps -a with 10,000 containers (created, never started).
for n in ${PS_COUNTS-10000}; do
    have=$("$BERTH" ps -aq | wc -l)
    echo "creating $((n - have)) containers…" >&2
    seq $((have + 1)) "$n" | xargs -P 4 -I{} "$BERTH" create --network none busybox true >/dev/null
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/containers-ps-$n.json" "$BERTH ps -a"
done

python3 bench/containers_table.py "$OUT"
