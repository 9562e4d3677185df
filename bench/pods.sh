#!/usr/bin/env bash
# Pod figure: `pod create -p` + three `run -d --pod` (busybox httpd) until all four containers
# run (`run -d` returns once the container's init runs), median of RUNS; the pod is removed
# after each round, outside the timing. Podman side by side when it can run here
# (ENGINES=berth alone skips it).
#
#   bench/pods.sh                      # release build
#   RUNS=10 BERTH=/path/to/berth bench/pods.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
[ -n "${BERTH:-}" ] || { cargo build --release -q -p berth -p berth-runtime; BERTH=$CARGO_TARGET_DIR/release/berth; }
RUNS=${RUNS:-20}
ENGINES=${ENGINES:-berth podman}
PORT=${PORT:-18089}
W=${W:-$(mktemp -d /var/tmp/berth-bench.XXXXXX)}
export BERTH_ROOT=$W/root BERTH_RUNROOT=$W/run
cleanup() {
  "$BERTH" pod rm -f benchpod >/dev/null 2>&1 || true
  if [ -n "${PODMAN:-}" ]; then $PODMAN pod rm -f benchpod >/dev/null 2>&1 || true; fi
  rm -rf "$W"
}
trap cleanup EXIT

# The busybox image from the host's busybox-static.
mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/tmp"
cp /bin/busybox "$W/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done
tar -C "$W/rootfs" -cf "$W/busybox.tar" .
"$BERTH" import -c 'CMD ["sh"]' "$W/busybox.tar" busybox >/dev/null

med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s%N; }

# round ENGINE-COMMAND IMAGE: prints the milliseconds one round took.
round() {
  local e=$1 img=$2 t0 t1
  t0=$(now)
  $e pod create --name benchpod -p "127.0.0.1:$PORT:80" >/dev/null
  $e run -d --pod benchpod "$img" httpd -f -p 80 -h /tmp >/dev/null
  $e run -d --pod benchpod "$img" sleep 1000 >/dev/null
  $e run -d --pod benchpod "$img" sleep 1000 >/dev/null
  t1=$(now)
  $e pod rm -f -t 0 benchpod >/dev/null 2>&1 || $e pod rm -f benchpod >/dev/null
  echo $(( (t1 - t0) / 1000 ))
}

measure() { # name engine-command image
  local samples=()
  round "$2" "$3" >/dev/null # warm-up
  for _ in $(seq "$RUNS"); do samples+=("$(round "$2" "$3")"); done
  local m
  m=$(printf '%s\n' "${samples[@]}" | med)
  echo "$1: pod create + 3 run -d --pod, median of $RUNS: $((m / 1000)).$(((m % 1000) / 100)) ms"
}

echo "# $(date -u +%FT%TZ) $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $BERTH"
for e in $ENGINES; do
  case $e in
    berth) measure berth "$BERTH" busybox ;;
    podman)
      if command -v podman >/dev/null && podman image exists localhost/busybox 2>/dev/null; then
        # crun refuses this hybrid cgroup host; runc runs.
        PODMAN="podman --runtime runc"
        measure "podman 4.3 (runc)" "$PODMAN" localhost/busybox
      else
        echo "podman: no localhost/busybox image here (../shared/anchors/setup.sh) — skipped"
      fi
      ;;
  esac
done
