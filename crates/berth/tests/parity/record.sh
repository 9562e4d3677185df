#!/bin/bash
# Records Docker 20.10's output for the command lines in cases.jsonl into recorded.jsonl, which
# crates/berth/tests/parity.rs compares berth against. Runs a private dockerd (Debian's
# docker.io) with its own data root and socket under a temp dir and without iptables rules
# (--iptables=false: published ports go through docker-proxy alone), so the host's firewall
# stays as it is; its default bridge docker0 gets 172.31.254.1/24, and is deleted with
# everything else at the end, also on failure. Run it when no other dockerd is running.
#
#   sudo crates/berth/tests/parity/record.sh           # rewrite recorded.jsonl
#   sudo crates/berth/tests/parity/record.sh --check   # record afresh and diff against it (exit 1 on a difference)
#
# Outputs are normalised as the test normalises berth's: container IDs printed alone are <ID>,
# the short ID of the image `other` is {other}, the data root is /var/lib/docker.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
check=false
[ "${1:-}" = --check ] && check=true
docker=/usr/bin/docker # Debian's 20.10 CLI (/usr/local/bin/docker may be a newer one)
[ -x /usr/sbin/dockerd ] && [ -x "$docker" ] || {
	echo "record.sh: needs dockerd and the docker CLI: apt-get install docker.io" >&2
	exit 1
}
[ -x /bin/busybox ] || {
	echo "record.sh: needs /bin/busybox: apt-get install busybox-static" >&2
	exit 1
}
work=$(mktemp -d /tmp/berth-parity-record.XXXXXX)
sock=$work/docker.sock
pid=
if ip link show docker0 >/dev/null 2>&1; then
	echo "record.sh: docker0 exists (another dockerd?): stop it first" >&2
	exit 1
fi
cleanup() {
	set +e
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	# What dockerd and its containerd left mounted under the data root.
	grep -o " $work[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
	rm -rf "$work"
	ip link del docker0 2>/dev/null
	return 0
}
trap cleanup EXIT

/usr/sbin/dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
	-H "unix://$sock" --iptables=false --ip6tables=false --ip-masq=false --bip 172.31.254.1/24 \
	--storage-driver overlay2 --exec-opt native.cgroupdriver=cgroupfs \
	>"$work/dockerd.log" 2>&1 &
pid=$!
for _ in $(seq 300); do [ -S "$sock" ] && "$docker" -H "unix://$sock" version >/dev/null 2>&1 && break; sleep 0.1; done
export DOCKER_HOST=unix://$sock

# The image berth's tests use: busybox-static, its applets as links, passwd and group.
root=$work/rootfs
mkdir -p "$root/bin" "$root"/{etc,tmp,root,proc,sys,dev,var}
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$root" -cf "$work/busybox.tar" .
"$docker" import -c 'CMD ["sh"]' "$work/busybox.tar" busybox >/dev/null
other=$("$docker" import -c 'CMD ["sh"]' "$work/busybox.tar" other)
other=${other:7:12}

target=$here/recorded.jsonl
$check && target=$work/recorded.jsonl
python3 - "$here/cases.jsonl" "$target" "$docker" "$other" "$work/data" <<'PY'
import json, re, subprocess, sys
cases, out, docker, other, data = sys.argv[1:]
def norm(s):
    s = s.replace(data, "/var/lib/docker").replace(other, "{other}")
    if re.fullmatch(r"[0-9a-f]{64}\n", s):
        s = "<ID>\n"
    return s
with open(cases) as f, open(out, "w") as w:
    for line in f:
        if not line.strip():
            continue
        args = json.loads(line)
        argv = [a.replace("{other}", other) for a in args]
        p = subprocess.run([docker] + argv, capture_output=True, text=True, timeout=120)
        rec = {"args": args, "code": p.returncode, "stdout": norm(p.stdout), "stderr": norm(p.stderr)}
        w.write(json.dumps(rec) + "\n")
        print(f"{p.returncode} {' '.join(args)}", file=sys.stderr)
PY
"$docker" version --format 'recorded with docker {{.Client.Version}} / dockerd {{.Server.Version}}' >&2
if $check; then
	diff -u "$here/recorded.jsonl" "$target"
	echo "record.sh: the recordings match this dockerd" >&2
fi
