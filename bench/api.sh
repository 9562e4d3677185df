#!/usr/bin/env bash
# Engine API figures: the docker CLI 28 (/usr/local/bin/docker) against `berth serve`:
# `docker run --rm $IMG true`, `docker ps -a` with 100 containers, `docker exec ctr true`,
# the idle server's RSS, and 200 concurrent `docker ps` with 20 concurrent `docker run --rm`.
# dockerd 20.10 (Debian docker.io) side by side when it is installed (DOCKERD=0 skips it): the
# host's own dockerd when one answers on /var/run/docker.sock (../shared/anchors/setup.sh
# starts one; the bench then removes only what it made there), otherwise one started here with
# its own containerd, data root and socket under the scratch directory, without touching the
# host's firewall (--iptables=false), and stopped at the end. Both get the same busybox image,
# imported from the host's busybox-static.
#
#   bench/api.sh                         # release build; results in bench/out/api-*.json
#   RUNS=20 BERTH=target/debug/berth bench/api.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
[ -n "${BERTH:-}" ] || { cargo build --release -q -p berth -p berth-runtime; BERTH=$CARGO_TARGET_DIR/release/berth; }
BERTH=$(realpath "$BERTH")
DOCKER=${DOCKER:-/usr/local/bin/docker}
RUNS=${RUNS:-20}
DOCKERD=${DOCKERD:-1}
[ -x /usr/sbin/dockerd ] || DOCKERD=0
# A second dockerd would fight the host's over docker0: use the running one instead.
HOST_DOCKERD=0
if [ "$DOCKERD" = 1 ] && "$DOCKER" -H unix:///var/run/docker.sock version >/dev/null 2>&1; then
    HOST_DOCKERD=1
fi
W=${W:-$(mktemp -d /var/tmp/berth-api-bench.XXXXXX)}
OUT=bench/out
mkdir -p "$OUT"
export BERTH_ROOT=$W/root BERTH_RUNROOT=$W/run DOCKER_CONFIG=$W/docker-config
B=unix://$W/berth.sock
D=unix://$W/docker.sock
[ "$HOST_DOCKERD" = 1 ] && D=unix:///var/run/docker.sock
IMG=berth-bench/busybox
pids=()
cleanup() {
    "$BERTH" ps -aq --no-trunc | xargs -r "$BERTH" rm -f >/dev/null 2>&1 || true
    if [ "$DOCKERD" = 1 ]; then
        "$DOCKER" -H "$D" ps -aq --filter ancestor=$IMG | xargs -r "$DOCKER" -H "$D" rm -f >/dev/null 2>&1 || true
        [ "$HOST_DOCKERD" = 1 ] && "$DOCKER" -H "$D" rmi $IMG >/dev/null 2>&1 || true
    fi
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    done
    [ "$DOCKERD" = 1 ] && [ "$HOST_DOCKERD" = 0 ] && ip link del docker0 2>/dev/null || true
    grep -o " $W[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$W" 2>/dev/null || echo "bench/api.sh: left $W behind (busy mounts)" >&2
}
trap cleanup EXIT

# The busybox image from the host's busybox-static.
mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/tmp"
cp /bin/busybox "$W/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$W/rootfs/etc/passwd"
tar -C "$W/rootfs" -cf "$W/busybox.tar" .
"$BERTH" import -c 'CMD ["sh"]' "$W/busybox.tar" $IMG >/dev/null

wait_sock() { for _ in $(seq 300); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "no socket $1" >&2; return 1; }

"$BERTH" serve -H "$B" 2>"$W/serve.log" &
pids+=($!)
SERVE=$!
wait_sock "$W/berth.sock"
"$DOCKER" -H "$B" version >/dev/null

engines=(berth)
if [ "$DOCKERD" = 1 ] && [ "$HOST_DOCKERD" = 0 ]; then
    containerd --root "$W/containerd" --state "$W/containerd-state" --address "$W/containerd.sock" \
        >"$W/containerd.log" 2>&1 &
    pids+=($!)
    wait_sock "$W/containerd.sock"
    dockerd --containerd="$W/containerd.sock" --data-root "$W/docker" --exec-root "$W/docker-exec" \
        --pidfile "$W/docker.pid" -H "$D" --iptables=false --ip6tables=false \
        >"$W/dockerd.log" 2>&1 &
    pids+=($!)
    wait_sock "$W/docker.sock"
    for _ in $(seq 100); do "$DOCKER" -H "$D" version >/dev/null 2>&1 && break; sleep 0.2; done
fi
if [ "$DOCKERD" = 1 ]; then
    "$DOCKER" -H "$D" import -c 'CMD ["sh"]' "$W/busybox.tar" $IMG >/dev/null
    engines+=(docker)
fi
host() { case $1 in berth) echo "$B";; docker) echo "$D";; esac; }

# Idle RSS of the server, after it answered a few requests.
for _ in 1 2 3; do "$DOCKER" -H "$B" ps >/dev/null; done
sleep 1
echo "berth serve idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$SERVE/status)" | tee "$OUT/api-rss.txt"
if [ "$DOCKERD" = 1 ]; then
    dpid=$(pidof dockerd || true); dpid=${dpid%% *}; cpid=$(pidof containerd || true); cpid=${cpid%% *}
    [ "$HOST_DOCKERD" = 1 ] || { dpid=$(cat "$W/docker.pid"); cpid=${pids[1]}; }
    rss() { [ -n "$1" ] && awk '/VmRSS/ {print $2, $3}' "/proc/$1/status" 2>/dev/null || echo "?"; }
    echo "dockerd idle RSS: $(rss "$dpid") (+ containerd: $(rss "$cpid"))" | tee -a "$OUT/api-rss.txt"
fi

cmds=()
for e in "${engines[@]}"; do cmds+=("$DOCKER -H $(host "$e") run --rm $IMG true"); done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/api-run.json" "${cmds[@]}"

cmds=()
for e in "${engines[@]}"; do
    "$DOCKER" -H "$(host "$e")" run -d --name bench-exec $IMG sleep 100000 >/dev/null
    cmds+=("$DOCKER -H $(host "$e") exec bench-exec true")
done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/api-exec.json" "${cmds[@]}"

# 100 containers (99 created + the exec one), listed with ps -a.
for _ in $(seq 99); do "$BERTH" create $IMG true >/dev/null; done
if [ "$DOCKERD" = 1 ]; then
    for _ in $(seq 99); do "$DOCKER" -H "$D" create $IMG true >/dev/null; done
fi
cmds=()
for e in "${engines[@]}"; do cmds+=("$DOCKER -H $(host "$e") ps -a"); done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/api-ps.json" "${cmds[@]}"

# 200 concurrent `docker ps` and 20 concurrent `docker run --rm` at once: every one must
# succeed, and the store must hold the same containers afterwards (nothing left behind).
for e in "${engines[@]}"; do
    h=$(host "$e")
    before=$("$DOCKER" -H "$h" ps -aq | wc -l)
    start=$(date +%s.%N)
    cpids=()
    for _ in $(seq 200); do "$DOCKER" -H "$h" ps >/dev/null 2>>"$W/conc-$e.err" & cpids+=($!); done
    for _ in $(seq 20); do "$DOCKER" -H "$h" run --rm $IMG true >/dev/null 2>>"$W/conc-$e.err" & cpids+=($!); done
    failed=0
    for p in "${cpids[@]}"; do wait "$p" || failed=$((failed + 1)); done
    end=$(date +%s.%N)
    after=$("$DOCKER" -H "$h" ps -aq | wc -l)
    printf '%-6s 200 ps + 20 run --rm at once: %d failed, %.2f s wall, containers %d before / %d after\n' \
        "$e" "$failed" "$(awk "BEGIN {print $end - $start}")" "$before" "$after" | tee -a "$OUT/api-concurrency.txt"
    [ "$failed" = 0 ] || { echo "errors:"; head -5 "$W/conc-$e.err"; }
done

python3 - "$OUT" <<'EOF'
import json, sys, statistics
out = sys.argv[1]
for name in ("run", "exec", "ps"):
    for r in json.load(open(f"{out}/api-{name}.json"))["results"]:
        t = r["times"]
        print(f"{name:5} {statistics.median(t)*1000:8.1f} ms median ({min(t)*1000:.1f}-{max(t)*1000:.1f}, {len(t)} runs)  {r['command']}")
EOF
