#!/usr/bin/env bash
# The main job, end to end on this machine: build berth, make a busybox image from Debian's
# busybox-static, and walk through what berth does with it. Uses its own store under /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -q
berth() { echo "+ berth $*" >&2; ./target/release/berth "$@"; }

export BERTH_ROOT=${BERTH_ROOT:-/tmp/berth-demo/root} BERTH_RUNROOT=${BERTH_RUNROOT:-/tmp/berth-demo/run}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

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

# The main job: a Python project's Dockerfile (examples/python-train), built and run. The base
# image is made from Debian packages (no Docker Hub needed); pip uses the package index the
# machine reaches.
if ! berth image inspect python:3.11-slim >/dev/null 2>&1; then
    examples/make-python-base.sh ./target/release/berth
fi
berth build -t python-train examples/python-train
berth run --rm python-train
berth build -t python-train examples/python-train   # every step CACHED
