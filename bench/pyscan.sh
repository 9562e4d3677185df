#!/bin/sh
# The requirement checks of `berth build` on a project with 500 .py files (the issue's goal:
# ≤ 100 ms). Times the checks alone, outside a build, with the release build of the
# berth-python example `scan`: listing the context, parsing requirements.txt, scanning every
# .py file, reading 200 installed distributions from a layer directory, checking.
# Usage: bench/pyscan.sh [RUNS]   (default 21; prints every run and the median)
set -eu
RUNS=${1:-21}
cd "$(dirname "$0")/.."
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
CTX=$DIR/ctx
LAYER=$DIR/layer
SP=$LAYER/usr/local/lib/python3.11/site-packages
mkdir -p "$CTX" "$SP" "$LAYER/usr/local/lib/python3.11"
: > "$LAYER/usr/local/lib/python3.11/os.py"
i=0
while [ $i -lt 200 ]; do
    d=$SP/pkg$i-1.0.$i.dist-info
    mkdir -p "$d"
    printf 'Metadata-Version: 2.1\nName: pkg%s\nVersion: 1.0.%s\nRequires-Dist: pkg%s\n' $i $i $((i + 1)) > "$d/METADATA"
    printf 'pkg%s/__init__.py,sha256=x,10\npkg%s/core.py,,\n' $i $i > "$d/RECORD"
    echo "pkg$i==1.0.$i" >> "$CTX/requirements.txt"
    i=$((i + 1))
done
# 500 modules in 50 packages, each ~120 lines: imports of stdlib, installed and local modules,
# docstrings, strings and comments the scanner must skip.
p=0
while [ $p -lt 50 ]; do
    mkdir -p "$CTX/app/mod$p"
    : > "$CTX/app/mod$p/__init__.py"
    m=0
    while [ $m -lt 9 ]; do
        f=$CTX/app/mod$p/m$m.py
        {
            printf '"""Module %s.%s.\n\nimport not_code\n"""\nimport os, sys\nimport json\nfrom collections import defaultdict\nimport pkg%s\nfrom pkg%s.core import thing\nfrom app.mod%s import m%s\nfrom . import sibling\n' $p $m $((p * 3)) $((p * 3 + 1)) $(((p + 1) % 50)) $m
            n=0
            while [ $n -lt 20 ]; do
                printf 'def f%s(x):\n    # a comment with import words\n    s = "import nothing; from x import y"\n    return x * %s\n\n' $n $n
                n=$((n + 1))
            done
        } > "$f"
        m=$((m + 1))
    done
    p=$((p + 1))
done
echo "$(find "$CTX" -name '*.py' | wc -l) .py files, $(cat "$CTX"/app/*/*.py | wc -l) lines"
cargo build -q --release -p berth-python --example scan
BIN=${CARGO_TARGET_DIR:-target}/release/examples/scan
"$BIN" "$CTX" "$LAYER" "$RUNS" > "$DIR/times"
sort -n "$DIR/times" | awk -v runs="$RUNS" '
    { t[NR] = $1 }
    END { printf "runs: %d  min %.1f ms  median %.1f ms  max %.1f ms\n", NR, t[1], t[int((NR + 1) / 2)], t[NR] }'
