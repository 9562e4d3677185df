"""testcontainers-python against `berth serve`: a generic container with a published port and
a log wait strategy, the reaper (Ryuk) disabled. Run by crates/berth/tests/api_clients.rs."""

import urllib.request

from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import wait_for_logs

cmd = ["sh", "-c", "mkdir -p /www && echo tc-ok > /www/index.html && echo serving && exec httpd -f -p 80 -h /www"]
with DockerContainer("busybox").with_command(cmd).with_exposed_ports(80) as c:
    wait_for_logs(c, "serving", timeout=30)
    host = c.get_container_host_ip()
    port = c.get_exposed_port(80)
    body = None
    for _ in range(50):
        try:
            body = urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=2).read()
            break
        except OSError:
            import time
            time.sleep(0.1)
    assert body == b"tc-ok\n", f"published port answered {body!r}"
print("ok")
