#!/usr/bin/env bash
# Registry benchmarks: pull and push throughput of berth against a loopback registry (berth's own
# `registry serve` and Debian's docker-registry, distribution 2.8), with skopeo beside it, and
# how fast each registry serves one 150 MB blob to 8 parallel curl clients.
#
#   bench/registry.sh [RUNS]      (default 5 runs per figure; prints medians)
#   BERTH=path/to/berth bench/registry.sh   (use a release binary built elsewhere)
#
# The image: 3 layers of 50 MiB of random data each (gzip -1), made locally as a docker-archive
# and loaded with `berth load`. Everything talks to 127.0.0.1. Needs: curl, skopeo,
# docker-registry (scripts/setup.sh installs them). Results: bench/README-registry.md.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-5}
# BERTH=/path/to/berth uses that binary instead of building one.
if [ -z "${BERTH:-}" ]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-pull}
    cargo build --release -q -p berth
    BERTH=$CARGO_TARGET_DIR/release/berth
fi
WORK=$(mktemp -d /var/tmp/berth-regbench.XXXXXX)
cleanup() {
    for f in "$WORK"/pid.*; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
export DOCKER_CONFIG=$WORK/docker-config

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mbps() { awk -v b="$1" -v t="$2" 'BEGIN {printf "%.0f", b / t / 1e6}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the image -----------------------------------------------------------------------------
echo "== making a 3 x 50 MiB image"
mkdir -p "$WORK/img"
diff_ids=()
layers=()
for i in 1 2 3; do
    mkdir -p "$WORK/img/l$i/data"
    head -c 50M /dev/urandom > "$WORK/img/l$i/data/blob$i"
    tar -C "$WORK/img/l$i" --owner=0 --group=0 -cf "$WORK/img/layer$i.tar" data
    diff_ids+=("\"sha256:$(sha256sum "$WORK/img/layer$i.tar" | cut -d' ' -f1)\"")
    gzip -1 -c "$WORK/img/layer$i.tar" > "$WORK/img/layer$i.tar.gz"
    layers+=("\"layer$i.tar.gz\"")
    rm -rf "$WORK/img/l$i" "$WORK/img/layer$i.tar"
done
(IFS=,; cat > "$WORK/img/config.json" <<EOF
{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[${diff_ids[*]}]}}
EOF
cat > "$WORK/img/manifest.json" <<EOF
[{"Config":"config.json","RepoTags":["bench/img:latest"],"Layers":[${layers[*]}]}]
EOF
)
tar -C "$WORK/img" -cf "$WORK/image.tar" manifest.json config.json layer1.tar.gz layer2.tar.gz layer3.tar.gz
IMAGE_BYTES=$(du -cb "$WORK"/img/layer*.tar.gz | tail -1 | cut -f1)
export BERTH_ROOT=$WORK/store BERTH_RUNROOT=$WORK/run
"$BERTH" load -q -i "$WORK/image.tar" >/dev/null
echo "image: $(awk -v b="$IMAGE_BYTES" 'BEGIN{printf "%.1f", b/1e6}') MB compressed"

# --- registries ----------------------------------------------------------------------------
# Each start sets PORT and SPID (the server's pid, also kept in $WORK/pid.PORT for cleanup).
wait_up() { until curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null; do sleep 0.05; done; }
start_berth_registry() { # $1 storage dir
    PORT=$(free_port)
    "$BERTH" registry serve --addr "127.0.0.1:$PORT" --storage "$1" >/dev/null 2>&1 &
    SPID=$!; echo "$SPID" > "$WORK/pid.$PORT"
    wait_up
}
start_distribution() { # $1 storage dir
    PORT=$(free_port)
    local port=$PORT
    cat > "$1.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $1}}
http: {addr: 127.0.0.1:$port}
EOF
    docker-registry serve "$1.yml" >/dev/null 2>&1 &
    SPID=$!; echo "$SPID" > "$WORK/pid.$PORT"
    wait_up
}
stop() { kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; rm -f "$WORK/pid.$PORT"; }

HAVE_DIST=0; command -v docker-registry >/dev/null && HAVE_DIST=1
HAVE_SKOPEO=0; command -v skopeo >/dev/null && HAVE_SKOPEO=1
declare -A RESULT

# --- push: a fresh, empty registry each run --------------------------------------------------
bench_push() { # $1 berth|distribution
    local times=() port t0 t1
    for r in $(seq "$RUNS"); do
        rm -rf "$WORK/reg-push"
        if [ "$1" = berth ]; then start_berth_registry "$WORK/reg-push"; else start_distribution "$WORK/reg-push"; fi
        port=$PORT
        "$BERTH" tag bench/img "127.0.0.1:$port/bench/img"
        t0=$(now); "$BERTH" push -q "127.0.0.1:$port/bench/img" >/dev/null; t1=$(now)
        times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
        "$BERTH" rmi "127.0.0.1:$port/bench/img" >/dev/null
        stop
    done
    printf '%s\n' "${times[@]}" | median
}

# --- pull: a fresh, empty store each run -----------------------------------------------------
bench_pull() { # $1 port
    local times=() t0 t1
    for r in $(seq "$RUNS"); do
        rm -rf "$WORK/pullstore" "$WORK/pullrun"
        t0=$(now)
        BERTH_ROOT=$WORK/pullstore BERTH_RUNROOT=$WORK/pullrun "$BERTH" pull -q "127.0.0.1:$1/bench/img" >/dev/null
        t1=$(now)
        times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
    done
    rm -rf "$WORK/pullstore" "$WORK/pullrun"
    printf '%s\n' "${times[@]}" | median
}

bench_skopeo_pull() { # $1 port: download only (to a dir: layout), no unpacking
    local times=() t0 t1
    for r in $(seq "$RUNS"); do
        rm -rf "$WORK/skopeo-out"
        t0=$(now)
        skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$1/bench/img" "dir:$WORK/skopeo-out"
        t1=$(now)
        times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
    done
    rm -rf "$WORK/skopeo-out"
    printf '%s\n' "${times[@]}" | median
}

bench_skopeo_push() { # $1 berth|distribution
    local times=() port t0 t1
    for r in $(seq "$RUNS"); do
        rm -rf "$WORK/reg-push"
        if [ "$1" = berth ]; then start_berth_registry "$WORK/reg-push"; else start_distribution "$WORK/reg-push"; fi
        port=$PORT
        t0=$(now)
        skopeo copy -q --dest-tls-verify=false "docker-archive:$WORK/image.tar" "docker://127.0.0.1:$port/bench/img"
        t1=$(now)
        times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
        stop
    done
    printf '%s\n' "${times[@]}" | median
}

report() { # label seconds bytes
    printf '%-58s %7.2f s  %6s MB/s\n' "$1" "$2" "$(mbps "$3" "$2")"
}

echo "== push ($RUNS runs each, median)"
t=$(bench_push berth); report "berth push -> berth registry serve" "$t" "$IMAGE_BYTES"
[ $HAVE_DIST = 1 ] && { t=$(bench_push distribution); report "berth push -> docker-registry" "$t" "$IMAGE_BYTES"; }
if [ $HAVE_SKOPEO = 1 ]; then
    t=$(bench_skopeo_push berth); report "skopeo copy docker-archive -> berth registry serve" "$t" "$IMAGE_BYTES"
    [ $HAVE_DIST = 1 ] && { t=$(bench_skopeo_push distribution); report "skopeo copy docker-archive -> docker-registry" "$t" "$IMAGE_BYTES"; }
fi

echo "== pull ($RUNS runs each, median; berth unpacks into an empty store, skopeo only downloads)"
start_berth_registry "$WORK/reg-berth"; BPORT=$PORT
"$BERTH" tag bench/img "127.0.0.1:$BPORT/bench/img"; "$BERTH" push -q "127.0.0.1:$BPORT/bench/img" >/dev/null
t=$(bench_pull "$BPORT"); report "berth pull <- berth registry serve" "$t" "$IMAGE_BYTES"
[ $HAVE_SKOPEO = 1 ] && { t=$(bench_skopeo_pull "$BPORT"); report "skopeo copy -> dir: <- berth registry serve" "$t" "$IMAGE_BYTES"; }
if [ $HAVE_DIST = 1 ]; then
    start_distribution "$WORK/reg-dist"; DPORT=$PORT
    "$BERTH" tag bench/img "127.0.0.1:$DPORT/bench/img"; "$BERTH" push -q "127.0.0.1:$DPORT/bench/img" >/dev/null
    t=$(bench_pull "$DPORT"); report "berth pull <- docker-registry" "$t" "$IMAGE_BYTES"
    [ $HAVE_SKOPEO = 1 ] && { t=$(bench_skopeo_pull "$DPORT"); report "skopeo copy -> dir: <- docker-registry" "$t" "$IMAGE_BYTES"; }
fi

# --- serving one 150 MB blob to 8 parallel clients -----------------------------------------------
echo "== one 150 MB blob to 8 parallel curl clients ($RUNS runs each, median)"
head -c 150000000 /dev/urandom > "$WORK/blob150"
BLOB_DIGEST="sha256:$(sha256sum "$WORK/blob150" | cut -d' ' -f1)"
upload_blob() { # $1 port
    local loc
    loc=$(curl -fsS -X POST -D - -o /dev/null "http://127.0.0.1:$1/v2/bench/blob/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
    case "$loc" in http*) ;; *) loc="http://127.0.0.1:$1$loc" ;; esac
    case "$loc" in *\?*) loc="$loc&digest=$BLOB_DIGEST" ;; *) loc="$loc?digest=$BLOB_DIGEST" ;; esac
    curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/blob150" "$loc" >/dev/null
}
bench_serve() { # $1 port
    local times=() t0 t1 clients
    for r in $(seq "$RUNS"); do
        clients=()
        t0=$(now)
        for c in 1 2 3 4 5 6 7 8; do
            curl -fsS -o /dev/null "http://127.0.0.1:$1/v2/bench/blob/blobs/$BLOB_DIGEST" &
            clients+=($!)
        done
        for c in "${clients[@]}"; do wait "$c"; done
        t1=$(now)
        times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
    done
    printf '%s\n' "${times[@]}" | median
}
upload_blob "$BPORT"
t=$(bench_serve "$BPORT"); report "berth registry serve, 8 x 150 MB" "$t" $((8 * 150000000))
if [ $HAVE_DIST = 1 ]; then
    upload_blob "$DPORT"
    t=$(bench_serve "$DPORT"); report "docker-registry, 8 x 150 MB" "$t" $((8 * 150000000))
fi
