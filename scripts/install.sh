#!/usr/bin/env bash
# Builds berth (release) and installs it under PREFIX (default /usr/local): the `berth` binary,
# its helpers `berth-monitor`, `berth-relay` and `berth-netproxy` beside it, bash/zsh/fish
# completions and man pages. Run as root for the default PREFIX. The first build compiles every
# dependency: about 7 minutes on an idle 2-core machine (much longer when the machine is busy); later builds take
# seconds to a minute.
#   PREFIX=$HOME/.local scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${PREFIX:-/usr/local}

step() { printf '\n==> %s\n' "$*" >&2; }

step "Building berth (release; cargo shows its progress)"
start=$(date +%s)
cargo build --release --bins
echo "built in $(( $(date +%s) - start )) s" >&2

target=${CARGO_TARGET_DIR:-target}/release
step "Installing into $prefix"
install -d "$prefix/bin" "$prefix/share/man/man1" \
    "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" \
    "$prefix/share/fish/vendor_completions.d"
for bin in berth berth-monitor berth-relay berth-netproxy; do
    install -m 0755 "$target/$bin" "$prefix/bin/$bin"
    echo "  $prefix/bin/$bin" >&2
done
"$prefix/bin/berth" completion bash > "$prefix/share/bash-completion/completions/berth"
"$prefix/bin/berth" completion zsh > "$prefix/share/zsh/site-functions/_berth"
"$prefix/bin/berth" completion fish > "$prefix/share/fish/vendor_completions.d/berth.fish"
echo "  completions for bash, zsh and fish" >&2
"$prefix/bin/berth" __man-pages "$prefix/share/man/man1"
echo "  man pages in $prefix/share/man/man1 (man berth, man berth-run, …)" >&2

step "Done"
case ":$PATH:" in
*":$prefix/bin:"*) echo "berth is on your PATH: try 'berth version'" >&2 ;;
*) echo "add $prefix/bin to your PATH, e.g. export PATH=\"$prefix/bin:\$PATH\"" >&2 ;;
esac
echo "state lives in /var/lib/berth and /run/berth (--root/--runroot, BERTH_ROOT/BERTH_RUNROOT)" >&2
