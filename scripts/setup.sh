#!/usr/bin/env bash
# Installs what berth's build, tests and demo need on a fresh Debian machine (run as root).
set -euo pipefail

packages=(gcc libc6-dev util-linux busybox-static tini python3 python3-pip skopeo runc crun libseccomp-dev libelf-dev zlib1g-dev make pkg-config tar gzip zstd curl hyperfine time nftables iproute2 docker-registry apache2-utils podman mmdebstrap)
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
