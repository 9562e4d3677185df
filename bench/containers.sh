#!/usr/bin/env bash
# Container figures: `run --rm --network none busybox true`, the `run -d` + `stop -t 0` + `rm`
# cycle, `exec ctr true`, `ps -a` with 100 and 10,000 containers, and the monitor's RSS.
# Docker and Podman side by side when ../shared/anchors/setup.sh started them (ENGINES=berth
# alone skips them).
#
#   bench/containers.sh          # release build; results in bench/out/containers-*.json
#   RUNS=15 PS_COUNTS=100 BERTH=/path/to/berth bench/containers.sh   # fewer runs, skip 10,000
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
[ -n "${BERTH:-}" ] || { cargo build --release -q -p berth -p berth-runtime; BERTH=$CARGO_TARGET_DIR/release/berth; }
RUNS=${RUNS:-30}
ENGINES=${ENGINES:-berth docker podman}
W=${W:-$(mktemp -d /var/tmp/berth-bench.XXXXXX)}
OUT=bench/out
mkdir -p "$OUT"
export BERTH_ROOT=$W/root BERTH_RUNROOT=$W/run
cleanup() { "$BERTH" ps -aq --no-trunc | xargs -r "$BERTH" rm -f >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT

# The busybox image from the host's busybox-static.
mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/tmp"
cp /bin/busybox "$W/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$W/rootfs/etc/passwd"
tar -C "$W/rootfs" -cf "$W/busybox.tar" .
"$BERTH" import -c 'CMD ["sh"]' "$W/busybox.tar" busybox >/dev/null

have() { case " $ENGINES " in *" $1 "*) command -v "$1" >/dev/null && "$1" info >/dev/null 2>&1;; *) false;; esac; }
# Podman's default crun refuses hybrid cgroup hosts ("cgroups in hybrid mode not supported"):
# measure it with runc there.
PODMAN="podman"
if have podman && ! podman run --rm --network none busybox true >/dev/null 2>&1; then
    PODMAN="podman --runtime runc"
fi
engine_cmd() { case $1 in docker) echo /usr/bin/docker;; podman) echo "$PODMAN";; *) echo "$1";; esac; }
cmds_run=("$BERTH run --rm --network none busybox true")
cmds_cycle=("sh -c '$BERTH stop -t 0 \$($BERTH run -d --network none busybox sleep 1000) >/dev/null && $BERTH rm \$($BERTH ps -lq) >/dev/null'")
for e in docker podman; do
    if have $e; then
        D=$(engine_cmd $e)
        cmds_run+=("$D run --rm --network none busybox true")
        cmds_cycle+=("sh -c 'id=\$($D run -d --network none busybox sleep 1000); $D stop -t 0 \$id >/dev/null; $D rm \$id >/dev/null'")
    fi
done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/containers-run.json" "${cmds_run[@]}"
hyperfine --warmup 2 --runs "$RUNS" --export-json "$OUT/containers-cycle.json" "${cmds_cycle[@]}"

# exec into a running container.
"$BERTH" run -d --name bench-exec --network none busybox sleep 100000 >/dev/null
cmds_exec=("$BERTH exec bench-exec true")
for e in docker podman; do
    if have $e; then
        D=$(engine_cmd $e)
        $D rm -f bench-exec >/dev/null 2>&1 || true
        $D run -d --name bench-exec --network none busybox sleep 100000 >/dev/null
        cmds_exec+=("$D exec bench-exec true")
    fi
done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/containers-exec.json" "${cmds_exec[@]}"

# Monitor RSS of the running container (kB).
mpid=$(cut -d' ' -f1 "$BERTH_ROOT/containers/$("$BERTH" inspect -f '{{.Id}}' bench-exec)/monitor.pid")
echo "monitor: $(grep -E '^(Rss|Pss|Pss_Anon|Pss_File|Private_Dirty):' /proc/$mpid/smaps_rollup | tr -s ' ' | tr '\n' ' ')" | tee "$OUT/containers-monitor-rss.txt"
"$BERTH" rm -f bench-exec >/dev/null
for e in docker podman; do have $e && { D=$(engine_cmd $e); $D rm -f bench-exec >/dev/null 2>&1 || true; }; done

# ps -a with 100, then 10,000 containers (created, never started).
for n in ${PS_COUNTS:-100 10000}; do
    have=$("$BERTH" ps -aq | wc -l)
    echo "creating $((n - have)) containers…" >&2
    seq $((have + 1)) "$n" | xargs -P 4 -I{} "$BERTH" create --network none busybox true >/dev/null
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/containers-ps-$n.json" "$BERTH ps -a"
done
