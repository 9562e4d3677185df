#!/usr/bin/env bash
# The main job, end to end on this machine: build berth, make a busybox image from Debian's
# busybox-static, and walk through what berth does with it. Uses its own store under /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*" >&2; }
step "Installing the Debian packages berth uses (scripts/setup.sh)"
scripts/setup.sh
step "Building berth (release): the first build compiles every dependency, about 7 minutes on an idle 2-core machine"
cargo build --release --bins
berth() { echo "+ berth $*" >&2; ./target/release/berth "$@"; }

# Always the demo's own store, whatever BERTH_ROOT/BERTH_RUNROOT say: the demo removes and
# prunes, and must never touch a user's containers or images.
export BERTH_ROOT=/tmp/berth-demo/root BERTH_RUNROOT=/tmp/berth-demo/run
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "Images: a busybox image from Debian's busybox-static, saved, loaded, inspected"
# A root filesystem: /bin/busybox and its applets.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/"
for applet in $("$work/rootfs/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
tar -C "$work/rootfs" --sort=name --mtime=@0 --owner=0 --group=0 -cf "$work/busybox.tar" .

berth import -c 'CMD ["sh"]' -m "busybox from Debian's busybox-static" "$work/busybox.tar" busybox:latest
berth tag busybox:latest ml/base:1.0
berth images
berth history busybox
berth image inspect --format '{{.Id}} {{json .Config.Cmd}} {{.Os}}/{{.Architecture}}' busybox
berth save -o "$work/images.tar" busybox ml/base:1.0
berth rmi ml/base:1.0 busybox
berth images
berth load -i "$work/images.tar"
skopeo inspect "docker-archive:$work/images.tar:busybox:latest" --format 'skopeo reads the archive: {{.Architecture}} {{len .Layers}} layer(s)'
berth images --format 'table {{.Repository}}\t{{.Tag}}\t{{.Size}}'
berth info --format 'store {{.DockerRootDir}}, cgroup v{{.CgroupVersion}}, kernel {{.KernelVersion}}'

step "Containers: the commands learned for Docker"
berth run --rm busybox echo "hello from a container"
berth rm -f worker >/dev/null 2>&1 || true
berth run -d --name worker busybox sh -c 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 1; done'
berth ps
berth exec worker sh -c 'echo "exec: hostname $(hostname), pid 1 is $(cat /proc/1/comm)"'
sleep 2
berth logs --tail 2 worker
berth stop -t 1 worker
berth ps -a --filter name=worker
berth rm worker
berth container prune -f   # the demo's own root: only what the demo made

step "A web server: a locally built image, published on a free host port"
mkdir -p "$work/web"
echo '<h1>hello from berth</h1>' > "$work/web/index.html"
printf 'FROM busybox\nCOPY index.html /www/index.html\nEXPOSE 80\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n' > "$work/web/Dockerfile"
berth build -q -t web "$work/web"
berth rm -f webserver >/dev/null 2>&1 || true
# A free host port, so that a web server already on 8080 does not stop the demo.
web_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
berth run -d --publish "$web_port:80" --name webserver web
berth port webserver
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$web_port/" && break; sleep 0.1; done
berth rm -f webserver

step "A registry of our own on 127.0.0.1: push, remove, pull back"
berth registry serve --addr 127.0.0.1:0 --storage "$work/registry" > "$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do grep -q Listening "$work/registry.log" && break; sleep 0.1; done
addr=$(sed -n 's#.*Listening on https\?://\([^ ]*\).*#\1#p' "$work/registry.log" | head -1)
berth tag busybox "$addr/demo/busybox:1"
berth push "$addr/demo/busybox:1"
berth rmi "$addr/demo/busybox:1"
berth pull "$addr/demo/busybox:1"
kill "$registry_pid"

step "The main job: a Python project's Dockerfile (examples/python-train), built and run"
# The base
# image is made from Debian packages (no Docker Hub needed); pip uses the package index the
# machine reaches.
if ! berth image inspect python:3.11-slim >/dev/null 2>&1; then
    examples/make-python-base.sh ./target/release/berth
fi
berth build -t python-train examples/python-train
berth run --rm python-train
berth build -t python-train examples/python-train   # every step CACHED

step "Done. The demo's images live in its own store: BERTH_ROOT=/tmp/berth-demo/root"
echo "To use berth yourself: scripts/install.sh (puts berth on PATH), then 'berth run --rm busybox echo hi'" >&2
echo "after importing an image (see README, Getting started)." >&2
