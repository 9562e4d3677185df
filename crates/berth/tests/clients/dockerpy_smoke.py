"""docker-py 7.2 against `berth serve`: images, containers, networks, volumes.

Run by crates/berth/tests/api_clients.rs with DOCKER_HOST=unix://<socket>, REGISTRY=127.0.0.1:<port>
(a `berth registry serve` with htpasswd), REGISTRY_USER, REGISTRY_PASSWORD and SECTIONS (a
comma-separated subset of: images, build, containers, networks, volumes). Every check raises on
failure; the last line printed is "ok".
"""

import io
import os
import sys
import tarfile
import time

import docker

client = docker.from_env()
sections = set(os.environ.get("SECTIONS", "images,build,containers,networks,volumes").split(","))
registry = os.environ.get("REGISTRY", "")
auth = {
    "username": os.environ.get("REGISTRY_USER", ""),
    "password": os.environ.get("REGISTRY_PASSWORD", ""),
}


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def stream_errors(lines):
    """The error messages of a JSON progress stream (decoded dicts)."""
    out = []
    for msg in lines:
        if isinstance(msg, dict) and "error" in msg:
            out.append(msg["error"])
    return out


check(client.ping(), "ping")

if "images" in sections:
    img = client.images.get("busybox")
    check(any(t.startswith("busybox") for t in img.tags), f"busybox tags: {img.tags}")
    repo = f"{registry}/py/busybox"
    check(img.tag(repo, "1"), "tag")
    check(f"{repo}:1" in client.images.get(f"{repo}:1").tags, "tagged name resolves")
    # Without credentials the registry refuses the push: the error arrives in the stream.
    errs = stream_errors(client.images.push(repo, tag="1", stream=True, decode=True))
    check(errs, "push without credentials must fail")
    pushed = list(client.images.push(repo, tag="1", stream=True, decode=True, auth_config=auth))
    check(not stream_errors(pushed), f"push: {pushed}")
    check(any("aux" in m and m["aux"].get("Digest", "").startswith("sha256:") for m in pushed),
          f"push aux: {pushed}")
    rd = client.images.get_registry_data(f"{repo}:1", auth_config=auth)
    check(rd.id.startswith("sha256:") and rd.attrs["Platforms"][0]["os"] == "linux",
          f"registry data {rd.attrs}")
    client.images.remove(f"{repo}:1")
    check(not any(f"{repo}:1" in i.tags for i in client.images.list()), "removed")
    pulled = client.images.pull(repo, tag="1", auth_config=auth)
    check(pulled.id == img.id, f"pulled {pulled.id} != {img.id}")
    check(any(d.startswith(f"{repo}@sha256:") for d in pulled.attrs["RepoDigests"]),
          f"repo digests {pulled.attrs['RepoDigests']}")
    hist = pulled.history()
    check(len(hist) >= 1, "history")
    client.images.remove(f"{repo}:1")
    print("images ok")

if "build" in sections:
    ctx = io.BytesIO()
    with tarfile.open(fileobj=ctx, mode="w") as t:
        df = b"FROM busybox\nARG WHO=nobody\nRUN echo built-by-$WHO | tee /who\nCOPY f /f\nCMD [\"cat\", \"/who\"]\n"
        for name, data in (("Dockerfile", df), ("f", b"file\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    ctx.seek(0)
    image, logs = client.images.build(fileobj=ctx, custom_context=True, tag="pybuilt:1",
                                      buildargs={"WHO": "py"}, rm=True)
    logs = list(logs)
    check("pybuilt:1" in image.tags, f"built tags {image.tags}")
    check(any("built-by-py" in m.get("stream", "") for m in logs), f"build logs {logs}")
    out = client.containers.run("pybuilt:1", remove=True)
    check(out == b"built-by-py\n", f"built image runs: {out!r}")
    # A failing build raises BuildError with the step's words.
    bad = io.BytesIO(b"FROM busybox\nRUN exit 3\n")
    try:
        client.images.build(fileobj=bad, tag="pybad:1")
        raise AssertionError("a failing RUN must fail the build")
    except docker.errors.BuildError as e:
        check("exit" in str(e) or "code" in str(e), f"build error: {e}")
    client.images.remove("pybuilt:1")
    print("build ok")

if "containers" in sections:
    out = client.containers.run("busybox", ["echo", "hello"], remove=True)
    check(out == b"hello\n", f"run output {out!r}")
    c = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done; sleep 30"],
                              detach=True)
    got = b""
    for chunk in c.logs(stream=True, follow=True):
        got += chunk
        if b"line3" in got:
            break
    check(b"line1\nline2\nline3" in got, f"streamed logs {got!r}")
    code, out = c.exec_run(["sh", "-c", "echo from-exec; exit 0"])
    check(code == 0 and out == b"from-exec\n", f"exec {code} {out!r}")
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as t:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        t.addfile(info, io.BytesIO(b"hello\n"))
    check(c.put_archive("/tmp", data.getvalue()), "put_archive")
    bits, stat = c.get_archive("/tmp/hello.txt")
    raw = b"".join(bits)
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        check(t.extractfile("hello.txt").read() == b"hello\n", "get_archive content")
    check(stat["name"] == "hello.txt", f"stat {stat}")
    c.kill()
    res = c.wait(timeout=20)
    check(res["StatusCode"] == 137, f"wait after kill {res}")
    c.remove()
    print("containers ok")

if "networks" in sections:
    n = client.networks.create("pynet", driver="bridge", labels={"suite": "py"})
    check(n.name == "pynet", "network name")
    check(any(x.id == n.id for x in client.networks.list(filters={"label": "suite=py"})), "filter by label")
    c = client.containers.run("busybox", ["sleep", "30"], detach=True, network="pynet", name="pyctr")
    n.reload()
    check(c.id in n.attrs.get("Containers", {}) or any(c.id.startswith(k) for k in n.attrs.get("Containers", {})),
          f"container on network: {n.attrs.get('Containers')}")
    other = client.networks.create("pynet2")
    other.connect(c)
    other.disconnect(c)
    c.remove(force=True)
    other.remove()
    n.remove()
    try:
        client.networks.get("pynet")
        raise AssertionError("removed network still found")
    except docker.errors.NotFound:
        pass
    print("networks ok")

if "volumes" in sections:
    v = client.volumes.create("pyvol", labels={"suite": "py"})
    check(v.name == "pyvol", "volume name")
    check(client.volumes.get("pyvol").attrs["Labels"] == {"suite": "py"}, "volume labels")
    check(any(x.name == "pyvol" for x in client.volumes.list(filters={"label": "suite=py"})), "volume filter")
    out = client.containers.run("busybox", ["sh", "-c", "echo kept > /v/f; cat /v/f"],
                                volumes={"pyvol": {"bind": "/v", "mode": "rw"}}, remove=True)
    check(out == b"kept\n", f"volume write {out!r}")
    v.remove()
    try:
        client.volumes.get("pyvol")
        raise AssertionError("removed volume still found")
    except docker.errors.NotFound:
        pass
    print("volumes ok")

print("ok")
