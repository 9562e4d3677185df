#!/usr/bin/env bash
# kube figures: `kube play` of a 3-replica Deployment + NodePort Service (busybox httpd) until
# the command returns with every container running (checked after each round, outside the
# timing; `kube down` is outside it too), and `kube generate` of one of the pods it made,
# medians of RUNS, idle and loaded (two `yes > /dev/null` loops this script starts and kills
# by PID), with `podman kube play` / `podman kube generate` in the same run (ENGINES=berth
# alone skips podman; podman's test image is localhost/busybox, e.g. `podman import` of a
# busybox rootfs).
#
#   bench/kube.sh                      # release build of berth and its helper binaries
#   RUNS=10 MODES=idle BERTH=/path/to/berth bench/kube.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
[ -n "${BERTH:-}" ] || {
  cargo build --release -q -p berth -p berth-runtime -p berth-network --bins
  BERTH=$CARGO_TARGET_DIR/release/berth
}
RUNS=${RUNS:-10}
MODES=${MODES-idle loaded}
ENGINES=${ENGINES:-berth podman}
PORT=${PORT:-30481}
W=${W:-$(mktemp -d /var/tmp/berth-bench.XXXXXX)}
export BERTH_ROOT=$W/root BERTH_RUNROOT=$W/run
# crun refuses this hybrid cgroup host; runc runs.
PODMAN="podman --runtime runc"
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
cleanup() {
  load_off
  "$BERTH" kube down "$W/berth.yaml" >/dev/null 2>&1 || true
  if [ -f "$W/podman.yaml" ]; then $PODMAN kube down "$W/podman.yaml" >/dev/null 2>&1 || true; fi
  rm -rf "$W"
}
trap cleanup EXIT

# The busybox image from the host's busybox-static.
mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/tmp"
cp /bin/busybox "$W/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done
tar -C "$W/rootfs" -cf "$W/busybox.tar" .
"$BERTH" import -c 'CMD ["sh"]' "$W/busybox.tar" busybox >/dev/null

# manifest IMAGE NODEPORT. The container declares no containerPort: podman 4.3 publishes every
# declared one on the host, so three replicas would conflict with one another (it publishes
# no Service port either; berth publishes the nodePort on the first replica).
manifest() {
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: httpd
        image: $1
        imagePullPolicy: IfNotPresent
        command: ["/bin/httpd", "-f", "-p", "8080", "-h", "/tmp"]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
    nodePort: $2
EOF
}
manifest busybox "$PORT" > "$W/berth.yaml"
manifest localhost/busybox "$((PORT + 1))" > "$W/podman.yaml"

med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s%N; }
ms() { local m; m=$(med); echo "$((m / 1000)).$(((m % 1000) / 100))"; }

# Containers of the play that run (infra containers left out).
running_berth() { "$BERTH" ps --filter label=io.berth.kube.owner=Deployment/web --filter status=running -q | wc -l; }
running_podman() { $PODMAN ps --pod --filter status=running --format '{{.IsInfra}} {{.PodName}}' | grep -c '^false web' || true; }

# A timed command failed: its error output, and stop.
fail() { cat "$W/err" >&2; exit 1; }

# play ENGINE: prints the microseconds one play took; fails unless every replica runs.
play() {
  local t0 t1 n want
  case $1 in
    berth)
      t0=$(now); "$BERTH" kube play "$W/berth.yaml" >/dev/null 2>"$W/err" || fail; t1=$(now)
      n=$(running_berth); want=3 ;;
    podman)
      t0=$(now); $PODMAN kube play "$W/podman.yaml" >/dev/null 2>"$W/err" || fail; t1=$(now)
      n=$(running_podman); want=$PODMAN_REPLICAS ;;
  esac
  [ "$n" -eq "$want" ] || { echo "$1: $n of $want containers run after kube play" >&2; exit 1; }
  echo $(( (t1 - t0) / 1000 ))
}
down() {
  case $1 in
    berth) "$BERTH" kube down "$W/berth.yaml" >/dev/null ;;
    podman) $PODMAN kube down "$W/podman.yaml" >/dev/null 2>&1 ;;
  esac
}
# generate ENGINE: microseconds of one `kube generate` of the first pod of the play.
generate() {
  local t0 t1
  case $1 in
    berth) t0=$(now); "$BERTH" kube generate "$GEN_POD" >/dev/null 2>"$W/err" || fail; t1=$(now) ;;
    podman) t0=$(now); $PODMAN kube generate "$GEN_POD" >/dev/null 2>"$W/err" || fail; t1=$(now) ;;
  esac
  echo $(( (t1 - t0) / 1000 ))
}

measure() { # ENGINE MODE
  local plays=() gens=()
  play "$1" >/dev/null; down "$1" # warm-up
  for _ in $(seq "$RUNS"); do plays+=("$(play "$1")"); down "$1"; done
  play "$1" >/dev/null
  case $1 in
    berth) GEN_POD=$("$BERTH" pod ls --format '{{.Name}}' | sort | head -1) ;;
    podman) GEN_POD=$($PODMAN pod ls --format '{{.Name}}' | sort | head -1) ;;
  esac
  generate "$1" >/dev/null
  for _ in $(seq "$RUNS"); do gens+=("$(generate "$1")"); done
  down "$1"
  printf '%-26s %-7s kube play (3 replicas + Service): %6s ms   kube generate POD: %6s ms\n' \
    "$ENGINE_NAME" "$2" "$(printf '%s\n' "${plays[@]}" | ms)" "$(printf '%s\n' "${gens[@]}" | ms)"
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $BERTH, medians of $RUNS"
PODMAN_OK=
if [[ " $ENGINES " == *" podman "* ]]; then
  if command -v podman >/dev/null && podman image exists localhost/busybox 2>/dev/null; then
    PODMAN_OK=1
    # Count what podman runs of the Deployment (one pod per replica, or fewer).
    $PODMAN kube play "$W/podman.yaml" >/dev/null 2>&1
    PODMAN_REPLICAS=$(running_podman)
    down podman
    [ "$PODMAN_REPLICAS" -gt 0 ] || { echo "podman kube play runs nothing here" >&2; exit 1; }
    echo "# podman $(podman version --format '{{.Client.Version}}') runs $PODMAN_REPLICAS pod(s) of the 3-replica Deployment"
  else
    echo "# podman: no localhost/busybox image here — skipped"
  fi
fi
for mode in $MODES; do
  [ "$mode" = loaded ] && load_on
  ENGINE_NAME="berth" measure berth "$mode"
  if [ -n "$PODMAN_OK" ]; then ENGINE_NAME="podman (runc)" measure podman "$mode"; fi
  load_off
done
