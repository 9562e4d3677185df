#!/usr/bin/env bash
# Installs what berth's build, tests and demo need on a fresh Debian machine (run as root).
set -euo pipefail

packages=(gcc libc6-dev openssl util-linux busybox-static tini catatonit python3 python3-pip skopeo runc crun libseccomp-dev libelf-dev zlib1g-dev make pkg-config tar gzip zstd curl hyperfine time nftables iproute2 docker-registry apache2-utils podman mmdebstrap docker-compose python3-venv git)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Offline validation of the manifests `kube generate` writes (the Kubernetes OpenAPI schemas
# ship inside the package).
python3 -c 'import kubernetes_validate' 2>/dev/null ||
    pip3 install -q --break-system-packages kubernetes-validate

# docker-py and testcontainers-python for the Engine API's client tests (crates/berth/tests/api_clients.rs),
# in the checkout's .venv (Debian's docker-compose brings its own docker-py).
venv="$(cd "$(dirname "$0")/.." && pwd)/.venv"
if ! "$venv/bin/python" -c 'import docker, testcontainers' 2>/dev/null; then
    echo "setup: installing docker-py and testcontainers into $venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'docker==7.2.*' 'testcontainers==4.*'
fi
