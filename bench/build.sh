#!/usr/bin/env bash
# Build figures: the anchors' small Dockerfile (FROM busybox; WORKDIR; COPY 3 files; RUN; CMD),
# a no-cache build and a fully cached rebuild, whole-process wall time of `berth build -q`;
# then the cost of reproducibility: a context in the seed project's shape (requirements, a RUN
# that installs 5,000 files as pip would, 300 project files) built without the cache with the
# default epoch (every mtime clamped, on disk and in the archive) and with `--timestamp now`
# (nothing clamped), runs interleaved.
#   bench/build.sh [N]          (as root; release build; hyperfine when installed)
# Prints the medians; bench/README-build.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p berth
case $CARGO_TARGET_DIR in /*) T=$CARGO_TARGET_DIR ;; *) T=$PWD/$CARGO_TARGET_DIR ;; esac
B=$T/release/berth
W=$(mktemp -d /var/tmp/berth-bench-build.XXXXXX)
trap 'rm -rf "$W"' EXIT
export BERTH_ROOT=$W/root BERTH_RUNROOT=$W/run

# The busybox base image, from the host's busybox-static.
mkdir -p "$W/bb/bin" "$W/bb/etc" "$W/bb/tmp"
cp /bin/busybox "$W/bb/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/bb/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$W/bb/etc/passwd"
echo 'root:x:0:' >"$W/bb/etc/group"
tar -C "$W/bb" -cf "$W/bb.tar" .
"$B" import -c 'CMD ["sh"]' "$W/bb.tar" busybox >/dev/null

# The anchors' small context (../shared/anchors/setup.sh).
C=$W/small-ctx
mkdir -p "$C"
cat >"$C/Dockerfile" <<'DF'
FROM busybox
WORKDIR /app
COPY a.txt b.txt run.sh ./
RUN sh run.sh > out.txt && wc -c out.txt
CMD ["cat", "/app/out.txt"]
DF
echo alpha >"$C/a.txt"
seq 1 1000 >"$C/b.txt"
printf '#!/bin/sh\ncat a.txt\nmd5sum b.txt\ndate -u +%%F\n' >"$C/run.sh"

if command -v hyperfine >/dev/null; then
    hyperfine -N -w 2 -r "$N" --export-json "$W/h.json" \
        -n "berth build --no-cache" "$B build --no-cache -q -t anc-small $C" \
        -n "berth build (cached)" "$B build -q -t anc-small $C"
    python3 -c "import json,sys; [print(f\"{r['command']}: median {r['median']*1000:.1f} ms\") for r in json.load(open(sys.argv[1]))['results']]" "$W/h.json"
else
    median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
    t() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000)); }
    for label in no-cache cached; do
        flag=; [ $label = no-cache ] && flag=--no-cache
        "$B" build $flag -q -t anc-small "$C" >/dev/null
        for _ in $(seq "$N"); do t "$B" build $flag -q -t anc-small "$C"; done |
            median | awk -v l="$label" '{printf "berth build %-9s median %.1f ms\n", l, $1/1000}'
    done
fi

# The cost of reproducibility. Not in a git work tree, so the epoch is the base's `created`.
P=$W/ml-ctx
mkdir -p "$P/src" "$P/data"
cat >"$P/Dockerfile" <<'DF'
FROM busybox
WORKDIR /app
COPY requirements.txt .
RUN i=0; while [ $i -lt 50 ]; do mkdir -p /site/pkg$i; j=0; while [ $j -lt 100 ]; do echo "v = $i$j" > /site/pkg$i/m$j.py; j=$((j+1)); done; i=$((i+1)); done
COPY . .
CMD ["sh"]
DF
printf 'numpy==1.26.4\npandas==2.2.2\n' >"$P/requirements.txt"
for i in $(seq 1 200); do echo "x = $i" >"$P/src/m$i.py"; done
for i in $(seq 1 100); do seq 1 "$i" >"$P/data/d$i.csv"; done
# Interleaved (A B A B …) so a shared machine's changing load falls on both alike.
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000)); }
"$B" build --no-cache -q -t ml "$P" >/dev/null
"$B" build --no-cache --timestamp now -q -t ml "$P" >/dev/null
: >"$W/clamped"
: >"$W/clock"
for _ in $(seq "$N"); do
    ms "$B" build --no-cache -q -t ml "$P" >>"$W/clamped"
    ms "$B" build --no-cache --timestamp now -q -t ml "$P" >>"$W/clock"
done
python3 - "$W/clamped" "$W/clock" <<'PY'
import statistics, sys
a, b = ([int(l) / 1000 for l in open(f)] for f in sys.argv[1:3])
ma, mb = statistics.median(a), statistics.median(b)
print(f"seed-shaped build --no-cache, clamped (default epoch): median {ma:.1f} ms (min {min(a):.1f}, {len(a)} runs)")
print(f"seed-shaped build --no-cache, --timestamp now:         median {mb:.1f} ms (min {min(b):.1f}, {len(b)} runs)")
print(f"reproducibility costs {100 * (ma - mb) / mb:+.1f} % (median against median)")
PY
