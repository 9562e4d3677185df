#!/usr/bin/env bash
# The whole test suite: installs what the tests need, builds, runs every unit and integration
# test (as root: tests start real containers and mount real filesystems).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: run as root (the tests mount overlay filesystems and create namespaces)" >&2
    exit 1
fi
if [ ! -d ../shared/conformance ]; then
    echo "scripts/test.sh: ../shared (conformance corpora, specs) must sit beside this checkout" >&2
    exit 1
fi

scripts/setup.sh
export CARGO_TERM_COLOR=never
cargo build --workspace --all-targets
# Two test threads per binary keeps the 2-core machine responsive; binaries run one at a time.
# The log is kept so that the summary below can say how many tests ran: a test that cannot run
# fails, it is never counted as passed.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set -o pipefail
status=0
cargo test --workspace -- --test-threads=2 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i } }
     END { printf "\nscripts/test.sh: %d tests passed, %d failed, %d ignored\n", p, f, g }' "$log"
exit "$status"
