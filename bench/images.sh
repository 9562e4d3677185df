#!/usr/bin/env bash
# Figures for the image store: `images` with 1,000 images, `image inspect`, `import` and `load` of
# a 150 MB random-content image, and peak memory of import/load. Side by side with `podman load`
# and `docker load` when those engines run here (../shared/anchors/setup.sh starts them).
#
#   bench/images.sh            # release build, results in bench/out/images.md
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
[ -n "${BERTH_PREBUILT:-}" ] || cargo build --release -q
BERTH=${BERTH:-$PWD/target/release/berth}
W=${W:-$(mktemp -d /var/tmp/berth-bench.XXXXXX)}
OUT=bench/out
mkdir -p "$OUT"
trap 'rm -rf "$W"' EXIT
export BERTH_ROOT=$W/root BERTH_RUNROOT=$W/run

# A tiny root filesystem; 1,000 images differ only in a label.
mkdir -p "$W/tiny/etc" && echo tiny > "$W/tiny/etc/hostname"
tar -C "$W/tiny" -cf "$W/tiny.tar" .
echo "creating 1,000 images…" >&2
for i in $(seq 1 1000); do
    "$BERTH" import -c "LABEL n=$i" "$W/tiny.tar" "bench/img$((i % 50)):t$i" >/dev/null
done

# 150 MB of random content in one layer.
mkdir -p "$W/big"
head -c 150000000 /dev/urandom > "$W/big/data.bin"
tar -C "$W/big" -cf "$W/big.tar" .
SIZE_MB=$(( $(stat -c %s "$W/big.tar") / 1000000 ))

hyperfine -N --warmup 3 --runs 30 --export-json "$OUT/list.json" \
    "$BERTH images" "$BERTH image inspect bench/img1:t1" "$BERTH images -q"

# import: each run into a fresh root so nothing is deduplicated.
hyperfine --warmup 1 --runs 7 --export-json "$OUT/import.json" \
    --prepare "rm -rf $W/r2" \
    "BERTH_ROOT=$W/r2 $BERTH import $W/big.tar big:1"
BERTH_ROOT=$W/r2 "$BERTH" import "$W/big.tar" big:1 >/dev/null
BERTH_ROOT=$W/r2 "$BERTH" save -o "$W/big-archive.tar" big:1
hyperfine --warmup 1 --runs 7 --export-json "$OUT/load.json" \
    --prepare "rm -rf $W/r3" \
    "BERTH_ROOT=$W/r3 $BERTH load -q -i $W/big-archive.tar"

peak() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
rm -rf "$W/r4"; IMPORT_KB=$(BERTH_ROOT=$W/r4 peak "$BERTH" import "$W/big.tar" big:1)
rm -rf "$W/r5"; LOAD_KB=$(BERTH_ROOT=$W/r5 peak "$BERTH" load -q -i "$W/big-archive.tar")
head -c 15000000 /dev/urandom > "$W/big/data.bin"; tar -C "$W/big" -cf "$W/small.tar" .
rm -rf "$W/r6"; SMALL_IMPORT_KB=$(BERTH_ROOT=$W/r6 peak "$BERTH" import "$W/small.tar" small:1)

others=""
if command -v podman >/dev/null && podman info >/dev/null 2>&1; then
    hyperfine --warmup 1 --runs 5 --export-json "$OUT/podman-load.json" \
        --prepare "podman rmi -f big:1 >/dev/null 2>&1 || true" \
        "podman load -q -i $W/big-archive.tar" && others="$others podman"
fi
if [ -S /var/run/docker.sock ] && /usr/bin/docker info >/dev/null 2>&1; then
    hyperfine --warmup 1 --runs 5 --export-json "$OUT/docker-load.json" \
        --prepare "/usr/bin/docker rmi -f big:1 >/dev/null 2>&1 || true" \
        "/usr/bin/docker load -q -i $W/big-archive.tar" && others="$others docker"
fi

python3 - "$OUT" "$SIZE_MB" "$IMPORT_KB" "$LOAD_KB" "$SMALL_IMPORT_KB" "$others" <<'PY'
import json, sys
out, size_mb, imp_kb, load_kb, small_kb, others = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6].split()
def med(name, i=0):
    return json.load(open(f"{out}/{name}.json"))["results"][i]["median"]
lines = ["| figure | median | target |", "|---|---|---|"]
lines.append(f"| `images` (1,000 images) | {med('list',0)*1000:.1f} ms | ≤ 10 ms |")
lines.append(f"| `image inspect` | {med('list',1)*1000:.1f} ms | ≤ 5 ms |")
lines.append(f"| `images -q` (1,000 images) | {med('list',2)*1000:.1f} ms | |")
lines.append(f"| `import` {size_mb} MB | {med('import'):.3f} s = {size_mb/med('import'):.0f} MB/s | ≥ 300 MB/s |")
lines.append(f"| `load` {size_mb} MB docker-archive | {med('load'):.3f} s = {size_mb/med('load'):.0f} MB/s | ≥ 300 MB/s |")
for o in others:
    m = med(f"{o}-load")
    lines.append(f"| `{o} load` same archive | {m:.3f} s = {size_mb/m:.0f} MB/s (berth is {m/med('load'):.1f}× faster) | |")
lines.append(f"| peak RSS, import 150 MB / 15 MB | {int(imp_kb)//1024} MiB / {int(small_kb)//1024} MiB | independent of size |")
lines.append(f"| peak RSS, load 150 MB | {int(load_kb)//1024} MiB | |")
text = "\n".join(lines)
open(f"{out}/images.md", "w").write(text + "\n")
print(text)
PY

{
    echo "# Image store figures"
    echo
    echo "Measured by \`bench/images.sh\` on $(date -u +%Y-%m-%d), release build, $(nproc) cores,"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Medians; hyperfine."
    echo
    cat "$OUT/images.md"
} > bench/README-images.md
