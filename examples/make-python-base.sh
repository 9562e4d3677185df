#!/usr/bin/env bash
# Makes the `python:3.11-slim` base image from Debian packages (no Docker Hub needed): a
# minimal bookworm root with python3, venv and pip (Debian's python is 3.11), imported into berth.
#   examples/make-python-base.sh [BERTH]      (default: berth on $PATH; runs as root)
# The host's local CA certificates (a TLS-intercepting proxy's) are trusted in the image too.
# PIP_BREAK_SYSTEM_PACKAGES lets `pip install` work system-wide as in the official image.
set -euo pipefail
BERTH=${1:-berth}
if ! command -v mmdebstrap >/dev/null; then
    apt-get install -y -qq mmdebstrap >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mmdebstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    --aptopt='APT::Install-Recommends "false"' \
    --customize-hook='ln -sf python3 "$1/usr/bin/python"' \
    --customize-hook='if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" && chroot "$1" update-ca-certificates >/dev/null; fi' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$work/rootfs.tar"
"$BERTH" import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
    -c 'ENV PIP_ROOT_USER_ACTION=ignore' \
    -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    -c 'CMD ["python3"]' \
    "$work/rootfs.tar" python:3.11-slim
