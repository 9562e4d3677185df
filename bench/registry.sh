#!/usr/bin/env bash
# Registry benchmarks, side by side in one run: push and pull of one image by berth, Docker
# (dockerd 20.10), Podman and skopeo, each against berth's own `registry serve` and Debian's
# docker-registry (distribution 2.8); how fast each registry serves one 150 MB blob to 8 parallel
# curl clients; and how many bytes a built layer of random data takes when berth and Docker push
# it. Every figure is taken idle and loaded (two `yes > /dev/null` loops this script starts and
# stops by PID), and the load average is recorded with it.
#
#   bench/registry.sh [RUNS]      (default 3 runs per figure; prints medians)
#   BERTH=path/to/berth bench/registry.sh   (use a release binary built elsewhere)
#   MODES=idle bench/registry.sh            (only one column)
#
# The image: 3 layers of 50 MiB of random data each (gzip -1), made locally as a docker-archive
# and loaded into berth, Docker and Podman. Everything talks to 127.0.0.1. Needs: curl, skopeo,
# docker-registry (scripts/setup.sh installs them); Docker and Podman figures need a running
# dockerd and a working podman (../shared/anchors/setup.sh starts them) and are skipped, saying
# so, without them. Docker treats 127.0.0.0/8 registries as insecure (plain HTTP) by default.
# Results: a markdown table on stdout (and in $OUT, default bench/out/registry.md).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-3}
MODES=${MODES:-"idle loaded"}
OUT=${OUT:-bench/out/registry.md}
# BERTH=/path/to/berth uses that binary instead of building one.
if [ -z "${BERTH:-}" ]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-pull}
    cargo build --release -q -p berth
    BERTH=$CARGO_TARGET_DIR/release/berth
fi
DOCKER=/usr/bin/docker # the docker.io 20.10 client (a newer CLI may shadow it on PATH)
WORK=$(mktemp -d /var/tmp/berth-regbench.XXXXXX)
mkdir -p "$(dirname "$OUT")"
TAG=bench/regbench-$$
LOADERS=()
stop_load() {
    for p in "${LOADERS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${LOADERS[@]}"; do wait "$p" 2>/dev/null || true; done
    LOADERS=()
}
start_load() {
    for _ in 1 2; do
        yes >/dev/null &
        LOADERS+=($!)
    done
}
cleanup() {
    stop_load
    for f in "$WORK"/pid.*; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    wait 2>/dev/null || true
    if [ "${HAVE_DOCKER:-0}" = 1 ]; then
        $DOCKER images --format '{{.Repository}}:{{.Tag}}' | grep -F "$TAG" | xargs -r $DOCKER rmi -f >/dev/null 2>&1 || true
    fi
    if [ "${HAVE_PODMAN:-0}" = 1 ]; then
        podman images --format '{{.Repository}}:{{.Tag}}' | grep -F "$TAG" | xargs -r podman rmi -f >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# A private, empty client configuration (no credentials); podman reads it too and fails when the
# directory has no config.json.
export DOCKER_CONFIG=$WORK/docker-config
mkdir -p "$DOCKER_CONFIG" && echo '{}' > "$DOCKER_CONFIG/config.json"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
load1() { cut -d' ' -f1 /proc/loadavg; }

HAVE_DIST=0; command -v docker-registry >/dev/null && HAVE_DIST=1
HAVE_SKOPEO=0; command -v skopeo >/dev/null && HAVE_SKOPEO=1
HAVE_DOCKER=0; [ -x $DOCKER ] && $DOCKER info >/dev/null 2>&1 && HAVE_DOCKER=1
HAVE_PODMAN=0; command -v podman >/dev/null && podman info >/dev/null 2>&1 && HAVE_PODMAN=1
[ $HAVE_DOCKER = 1 ] || echo "note: no running dockerd: Docker figures skipped" >&2
[ $HAVE_PODMAN = 1 ] || echo "note: podman does not work here: Podman figures skipped" >&2
[ $HAVE_DIST = 1 ] || echo "note: no docker-registry: distribution figures skipped" >&2

# --- the image -----------------------------------------------------------------------------
echo "== making a 3 x 50 MiB image" >&2
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
[{"Config":"config.json","RepoTags":["$TAG:latest"],"Layers":[${layers[*]}]}]
EOF
)
tar -C "$WORK/img" -cf "$WORK/image.tar" manifest.json config.json layer1.tar.gz layer2.tar.gz layer3.tar.gz
IMAGE_BYTES=$(du -cb "$WORK"/img/layer*.tar.gz | tail -1 | cut -f1)
export BERTH_ROOT=$WORK/store BERTH_RUNROOT=$WORK/run
"$BERTH" load -q -i "$WORK/image.tar" >/dev/null
[ $HAVE_DOCKER = 1 ] && $DOCKER load -q -i "$WORK/image.tar" >/dev/null
[ $HAVE_PODMAN = 1 ] && podman load -q -i "$WORK/image.tar" >/dev/null
echo "image: $(awk -v b="$IMAGE_BYTES" 'BEGIN{printf "%.1f", b/1e6}') MB compressed" >&2

# --- registries ----------------------------------------------------------------------------
# Each start sets PORT and SPID (the server's pid, also kept in $WORK/pid.PORT for cleanup).
wait_up() { until curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null; do sleep 0.05; done; }
start_registry() { # $1 berth|dist, $2 storage dir
    PORT=$(free_port)
    if [ "$1" = berth ]; then
        "$BERTH" registry serve --addr "127.0.0.1:$PORT" --storage "$2" >/dev/null 2>&1 &
    else
        cat > "$2.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $2}}
http: {addr: 127.0.0.1:$PORT}
EOF
        docker-registry serve "$2.yml" >/dev/null 2>&1 &
    fi
    SPID=$!; echo "$SPID" > "$WORK/pid.$PORT"
    wait_up
}
stop_registry() { kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; rm -f "$WORK/pid.$PORT"; }

# Times a command (its output discarded); prints seconds.
timed() {
    local t0 t1
    t0=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }; t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'
}

# --- push: a fresh, empty registry each run --------------------------------------------------
push_once() { # $1 client, $2 ref; prints seconds
    local t rc=0
    case $1 in
        berth) "$BERTH" tag "$TAG" "$2"; t=$(timed "$BERTH" push -q "$2") || rc=1; "$BERTH" rmi "$2" >/dev/null ;;
        docker) $DOCKER tag "$TAG" "$2"; t=$(timed $DOCKER push "$2") || rc=1; $DOCKER rmi "$2" >/dev/null ;;
        podman) t=$(timed podman push -q --tls-verify=false "localhost/$TAG" "docker://$2") || rc=1 ;;
        skopeo) t=$(timed skopeo copy -q --dest-tls-verify=false "docker-archive:$WORK/image.tar" "docker://$2") || rc=1 ;;
    esac
    echo "${t:-}"
    return $rc
}
bench_push() { # $1 client, $2 berth|dist
    local times=() t
    for _ in $(seq "$RUNS"); do
        rm -rf "$WORK/reg-push"
        start_registry "$2" "$WORK/reg-push"
        t=$(push_once "$1" "127.0.0.1:$PORT/bench/img:latest") || { stop_registry; echo failed; return 0; }
        times+=("$t")
        stop_registry
    done
    printf '%s\n' "${times[@]}" | median
}

# --- pull: from a registry holding the image, into an empty store each run -------------------
# Docker and Podman would find the layers of the image they loaded (same diff IDs) and skip the
# download: the loaded image is removed before each pull and the pulled one tagged as it after.
pull_once() { # $1 client, $2 ref; prints seconds
    local t rc=0
    case $1 in
        berth)
            rm -rf "$WORK/pullstore" "$WORK/pullrun"
            t=$(BERTH_ROOT=$WORK/pullstore BERTH_RUNROOT=$WORK/pullrun timed "$BERTH" pull -q "$2") || rc=1 ;;
        docker)
            $DOCKER rmi "$TAG" >/dev/null || return 1
            t=$(timed $DOCKER pull -q "$2") || rc=1
            $DOCKER tag "$2" "$TAG" && $DOCKER rmi "$2" >/dev/null ;;
        podman)
            podman rmi "localhost/$TAG" >/dev/null || return 1
            t=$(timed podman pull -q --tls-verify=false "$2") || rc=1
            podman tag "$2" "localhost/$TAG" && podman rmi "$2" >/dev/null ;;
        # download only (to a dir: layout), no unpacking
        skopeo)
            rm -rf "$WORK/skopeo-out"
            t=$(timed skopeo copy -q --src-tls-verify=false "docker://$2" "dir:$WORK/skopeo-out") || rc=1 ;;
    esac
    echo "${t:-}"
    return $rc
}
bench_pull() { # $1 client, $2 port
    local times=() t
    for _ in $(seq "$RUNS"); do
        t=$(pull_once "$1" "127.0.0.1:$2/bench/img:latest") || { echo failed; return 0; }
        times+=("$t")
    done
    rm -rf "$WORK/pullstore" "$WORK/pullrun" "$WORK/skopeo-out"
    printf '%s\n' "${times[@]}" | median
}

# --- serving one 150 MB blob to 8 parallel clients -------------------------------------------
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
    for _ in $(seq "$RUNS"); do
        clients=()
        t0=$(now)
        for _ in 1 2 3 4 5 6 7 8; do
            curl -fsS -o /dev/null "http://127.0.0.1:$1/v2/bench/blob/blobs/$BLOB_DIGEST" &
            clients+=($!)
        done
        for c in "${clients[@]}"; do wait "$c"; done
        t1=$(now)
        times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
    done
    printf '%s\n' "${times[@]}" | median
}

# --- the bytes a built layer of 50 MiB of random data takes when pushed ----------------------
pushed_bytes() { # $1 port: sum of config and layer sizes in bench/built's manifest
    curl -fsS -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://127.0.0.1:$1/v2/bench/built/manifests/latest" |
        python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["config"]["size"] + sum(l["size"] for l in m["layers"]))'
}
built_sizes() {
    mkdir -p "$WORK/ctx"
    head -c 50M /dev/urandom > "$WORK/ctx/blob"
    printf 'FROM scratch\nCOPY blob /blob\n' > "$WORK/ctx/Dockerfile"
    start_registry berth "$WORK/reg-built"
    "$BERTH" build -q -t "127.0.0.1:$PORT/bench/built" "$WORK/ctx" >/dev/null
    "$BERTH" push -q "127.0.0.1:$PORT/bench/built" >/dev/null
    SIZE_BERTH=$(pushed_bytes "$PORT")
    if [ $HAVE_DOCKER = 1 ]; then
        DOCKER_BUILDKIT=0 $DOCKER build -q -t "127.0.0.1:$PORT/bench/built" "$WORK/ctx" >/dev/null
        $DOCKER push "127.0.0.1:$PORT/bench/built" >/dev/null
        SIZE_DOCKER=$(pushed_bytes "$PORT")
        $DOCKER rmi "127.0.0.1:$PORT/bench/built" >/dev/null
    fi
    stop_registry
}

# --- all figures, once per mode ----------------------------------------------------------------
declare -A R  # R[figure|registry|mode] = "seconds load"
CLIENTS_PUSH="berth"; CLIENTS_PULL="berth"
[ $HAVE_DOCKER = 1 ] && { CLIENTS_PUSH="$CLIENTS_PUSH docker"; CLIENTS_PULL="$CLIENTS_PULL docker"; }
[ $HAVE_PODMAN = 1 ] && { CLIENTS_PUSH="$CLIENTS_PUSH podman"; CLIENTS_PULL="$CLIENTS_PULL podman"; }
[ $HAVE_SKOPEO = 1 ] && { CLIENTS_PUSH="$CLIENTS_PUSH skopeo"; CLIENTS_PULL="$CLIENTS_PULL skopeo"; }
REGS="berth"; [ $HAVE_DIST = 1 ] && REGS="berth dist"
record() { # figure registry mode seconds
    R["$1|$2|$3"]="$4 $(load1)"
    echo "  $1 / $2 / $3: $4 s (load $(load1))" >&2
}
for mode in $MODES; do
    echo "== $mode" >&2
    [ "$mode" = loaded ] && start_load
    for reg in $REGS; do
        for c in $CLIENTS_PUSH; do record "$c push" "$reg" "$mode" "$(bench_push "$c" "$reg")"; done
        start_registry "$reg" "$WORK/reg-pull-$reg"
        port=$PORT
        "$BERTH" tag "$TAG" "127.0.0.1:$port/bench/img"
        "$BERTH" push -q "127.0.0.1:$port/bench/img" >/dev/null
        for c in $CLIENTS_PULL; do record "$c pull" "$reg" "$mode" "$(bench_pull "$c" "$port")"; done
        upload_blob "$port"
        record "serve" "$reg" "$mode" "$(bench_serve "$port")"
        stop_registry
        rm -rf "$WORK/reg-pull-$reg"
    done
    stop_load
done
SIZE_BERTH=""; SIZE_DOCKER=""
built_sizes

# --- the table -------------------------------------------------------------------------------
cell() { # figure registry mode bytes
    local v=${R["$1|$2|$3"]:-}
    [ -z "$v" ] && { printf '–'; return; }
    case $v in failed*) printf 'failed'; return ;; esac
    set -- $v "$4"
    awk -v t="$1" -v l="$2" -v b="$3" 'BEGIN {printf "%.2f s, **%.0f MB/s** (load %.1f)", t, b / t / 1e6, l}'
}
label() {
    case $1 in
        "berth push") echo '`berth push`' ;;
        "docker push") echo '`docker push` (dockerd 20.10)' ;;
        "podman push") echo '`podman push`' ;;
        "skopeo push") echo '`skopeo copy` docker-archive → registry' ;;
        "berth pull") echo '`berth pull` (unpacked)' ;;
        "docker pull") echo '`docker pull` (unpacked)' ;;
        "podman pull") echo '`podman pull` (unpacked)' ;;
        "skopeo pull") echo '`skopeo copy` registry → `dir:` (download only)' ;;
        serve) echo '150 MB blob to 8 parallel curl clients' ;;
    esac
}
{
    echo "Image: $(awk -v b="$IMAGE_BYTES" 'BEGIN{printf "%.1f", b/1e6}') MB compressed (3 × 50 MiB random, gzip -1); $RUNS runs per figure, medians;"
    echo "MB/s = compressed MB moved per second of wall time; load = 1-minute load average after the figure."
    echo
    hdr="| figure |"; sep="|---|"
    for reg in $REGS; do for mode in $MODES; do
        name=$([ "$reg" = berth ] && echo "berth registry serve" || echo "docker-registry 2.8")
        hdr="$hdr $name, $mode |"; sep="$sep---|"
    done; done
    echo "$hdr"; echo "$sep"
    for fig in $(for c in $CLIENTS_PUSH; do echo "$c:push"; done) $(for c in $CLIENTS_PULL; do echo "$c:pull"; done) serve; do
        f=${fig/:/ }
        bytes=$IMAGE_BYTES; [ "$f" = serve ] && bytes=$((8 * 150000000))
        row="| $(label "$f") |"
        for reg in $REGS; do for mode in $MODES; do row="$row $(cell "$f" "$reg" "$mode" "$bytes") |"; done; done
        echo "$row"
    done
    echo
    echo "A built layer of 50 MiB (52,428,800 bytes) of random data, as pushed (config + layer):"
    echo "berth ${SIZE_BERTH:-–} bytes; Docker (classic builder) ${SIZE_DOCKER:-–} bytes."
} | tee "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
