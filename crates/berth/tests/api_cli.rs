//! The Engine API server (`berth serve`) driven by the real docker CLI 28.2.2 and by raw HTTP
//! on its unix socket.

mod common;

use common::Berth;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::serve::{Server, DOCKER};

/// A `berth serve` on a socket in the test's directory, stopped (SIGTERM) when dropped.
fn start_server(b: &Berth) -> Server {
    Server::start_with(b, "api", Stdio::piped())
}

/// A raw HTTP/1.1 exchange on the socket: (status, headers lowercased, body).
fn http(sock: &std::path::Path, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: api.moby.localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading a large body, and close.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = out[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head.to_ascii_lowercase(), body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
    out
}

fn message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    v["message"].as_str().expect("a message").to_string()
}

#[test]
fn docker_version_and_info_through_the_socket() {
    let b = Berth::new();
    let mut s = start_server(&b);
    let out = s.docker_ok(&["version"]);
    assert!(out.contains("API version:       1.50"), "{out}");
    assert!(out.contains("minimum version 1.24"), "{out}");
    assert!(out.contains("Server:"), "{out}");
    let out = s.docker_ok(&["version", "--format", "{{.Server.Version}} {{.Server.Os}}"]);
    assert_eq!(out.trim(), format!("{} linux", env!("CARGO_PKG_VERSION")));
    let (code, out, err) = s.docker(&["info"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Containers: 0"), "{out}");
    assert!(out.contains("OSType: linux"), "{out}");
    assert!(!err.contains("rror"), "{err}");
    let n = s.docker_ok(&["info", "--format", "{{.Images}} {{.OSType}}"]);
    assert_eq!(n.trim(), "0 linux");
    // A clean stop: exit 0, the socket removed.
    let (code, err) = s.stop();
    assert_eq!(code, 0, "{err}");
    assert!(!s.sock.exists());
}

#[test]
fn ping_versions_and_errors_as_dockerd() {
    let b = Berth::new();
    let s = start_server(&b);
    let (status, head, body) = http(&s.sock, "GET", "/_ping", b"");
    assert_eq!(status, 200);
    assert_eq!(body, b"OK");
    for h in [
        "api-version: 1.50",
        "ostype: linux",
        "builder-version: 1",
        "docker-experimental: false",
        "swarm: inactive",
        "cache-control: no-cache, no-store, must-revalidate",
        "pragma: no-cache",
    ] {
        assert!(head.contains(h), "{h} missing from\n{head}");
    }
    let (status, _, body) = http(&s.sock, "HEAD", "/_ping", b"");
    assert_eq!((status, body.len()), (200, 0));
    // Every version from 1.24 to 1.50 and none is served; outside that range, dockerd's 400s.
    for path in [
        "/v1.24/version",
        "/v1.41/version",
        "/v1.50/version",
        "/version",
    ] {
        let (status, _, body) = http(&s.sock, "GET", path, b"");
        assert_eq!(status, 200, "{path}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["ApiVersion"], "1.50");
        assert_eq!(v["MinAPIVersion"], "1.24");
    }
    let (status, _, body) = http(&s.sock, "GET", "/v1.51/version", b"");
    assert_eq!(status, 400);
    assert_eq!(
        message(&body),
        "client version 1.51 is too new. Maximum supported API version is 1.50"
    );
    let (status, _, body) = http(&s.sock, "GET", "/v1.12/containers/json", b"");
    assert_eq!(status, 400);
    assert!(message(&body)
        .starts_with("client version 1.12 is too old. Minimum supported API version is 1.24"));
    let (status, _, body) = http(&s.sock, "GET", "/v1.50/no/such/thing", b"");
    assert_eq!((status, message(&body).as_str()), (404, "page not found"));
    let (status, _, body) = http(
        &s.sock,
        "GET",
        "/v1.50/containers/json?filters=%7Bnot-json",
        b"",
    );
    assert_eq!(status, 400);
    assert!(
        message(&body).contains("invalid filter"),
        "{}",
        message(&body)
    );
    let (status, _, body) = http(
        &s.sock,
        "GET",
        "/v1.50/containers/json?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D",
        b"",
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn serve_refuses_what_it_cannot_do_safely() {
    let b = Berth::new();
    // TCP without TLS needs consent; TLS is refused, not ignored.
    let (code, err) = b.fails(&["serve", "-H", "tcp://127.0.0.1:0"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--insecure-tcp") && err.contains("root"),
        "{err}"
    );
    // TLS is for TCP hosts, and server-only TLS is no safer than plain TCP.
    let (_, err) = b.fails(&["serve", "--tlsverify"]);
    assert!(err.contains("tcp:// hosts"), "{err}");
    let (_, err) = b.fails(&[
        "serve",
        "-H",
        "tcp://127.0.0.1:0",
        "--tlsverify",
        "--tlscacert",
        "/nonexistent/ca.pem",
        "--tlscert",
        "/nonexistent/cert.pem",
        "--tlskey",
        "/nonexistent/key.pem",
    ]);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    let (_, err) = b.fails(&["serve", "-H", "udp://x"]);
    assert!(err.contains("unix://PATH or tcp://ADDRESS:PORT"), "{err}");
    let (_, err) = b.fails(&["serve", "--group", "no-such-group-here"]);
    assert!(err.contains("no-such-group-here"), "{err}");

    // A live server's socket is refused; a stale one (a killed server's) is replaced.
    let s = start_server(&b);
    let (_, err) = b.fails(&["serve", "-H", &s.host()]);
    assert!(err.contains("in use"), "{err}");
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let m = std::fs::metadata(&s.sock).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o660);
        assert_eq!(m.uid(), 0);
    }
    let mut s = s;
    let mut child = s.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(s.sock.exists(), "a killed server leaves its socket");
    let s2 = start_server(&b);
    s2.docker_ok(&["version"]);
}

impl Server {
    /// A busybox image in the store (imported by the berth CLI: one store, two front ends).
    fn with_busybox(b: &Berth) -> Server {
        b.import_busybox("busybox");
        start_server(b)
    }

    /// The docker CLI in a real pseudo terminal: (exit code, output).
    fn docker_tty(&self, args: &str) -> (i32, String) {
        // A pty driven by python3 (reads until the terminal closes, then reaps), rather than
        // script(1), which can exit before it has copied a short-lived command's last output.
        const DRIVER: &str = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp("sh", ["sh", "-c", sys.argv[1]])
out = b""
while True:
    try:
        d = os.read(fd, 65536)
    except OSError:
        break
    if not d:
        break
    out += d
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
        let out = Command::new("timeout")
            .args(["30", "python3", "-c", DRIVER, &format!("{DOCKER} {args}")])
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.docker_config.path())
            .stdin(Stdio::null())
            .output()
            .expect("python3 drives the TTY tests");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn docker_run_through_the_api() {
    let b = Berth::new();
    let s = Server::with_busybox(&b);
    let (code, out, err) = s.docker(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!((code, out.as_str()), (0, "hi\n"), "{err}");
    let (code, _, err) = s.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(code, 3, "{err}");
    // stdout and stderr kept apart (stdcopy framing), stdin forwarded and closed.
    let out = Command::new(DOCKER)
        .args([
            "run",
            "--rm",
            "-i",
            "busybox",
            "sh",
            "-c",
            "cat; echo err >&2",
        ])
        .env("DOCKER_HOST", s.host())
        .env("DOCKER_CONFIG", s.docker_config.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"from stdin\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from stdin\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    // --rm containers are gone once run returns.
    assert_eq!(s.docker_ok(&["ps", "-aq"]), "");
    // A TTY: run -it and exec -it in a real pty.
    let (code, out) = s.docker_tty("run --rm -it busybox sh -c 'tty; exit 7'");
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    s.docker_ok(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "1000"]);
    let (code, out) = s.docker_tty("exec -it sleeper sh -c 'tty; exit 4'");
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    let (code, out, err) = s.docker(&[
        "exec",
        "sleeper",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 5",
    ]);
    assert_eq!((code, out.as_str(), err.as_str()), (5, "out\n", "err\n"));
    let (code, _, err) = s.docker(&["exec", "sleeper", "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    s.docker_ok(&["exec", "-d", "sleeper", "touch", "/tmp/detached"]);
    common::wait_for("the detached exec", Duration::from_secs(10), || {
        s.docker(&["exec", "sleeper", "test", "-e", "/tmp/detached"])
            .0
            == 0
    });
    s.docker_ok(&["rm", "-f", "sleeper"]);
}

#[test]
fn container_lifecycle_through_the_api() {
    let b = Berth::new();
    let s = Server::with_busybox(&b);
    let port = free_port().to_string();
    let id = s
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &format!("{port}:80"),
            "--memory",
            "64m",
            "--cpus",
            "0.5",
            "busybox",
            "httpd",
            "-f",
            "-v",
            "-p",
            "80",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    // The published port answers.
    let mut answer = String::new();
    common::wait_for("httpd", Duration::from_secs(10), || {
        let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap()))
        else {
            return false;
        };
        let _ = c.write_all(b"GET / HTTP/1.0\r\n\r\n");
        answer.clear();
        let _ = c.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.")
    });
    let ps = s.docker_ok(&["ps"]);
    assert!(
        ps.contains("web") && ps.contains(&format!("{port}->80/tcp")),
        "{ps}"
    );
    assert_eq!(
        s.docker_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
            "web"
        ])
        .trim(),
        "67108864 500000000"
    );
    // The limits are in the container's cgroup.
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory").exists();
    let (mem, cpu) = if v1 {
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        )
    } else {
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/cpu.max")
    };
    let limits = s.docker_ok(&["exec", "web", "cat", mem, cpu]);
    assert!(limits.starts_with("67108864\n"), "{limits}");
    assert!(
        limits.lines().nth(1).unwrap().starts_with("50000"),
        "{limits}"
    );
    let logs = s.docker_ok(&["logs", "web"]);
    let (_, _, logs_err) = s.docker(&["logs", "web"]);
    assert!(
        format!("{logs}{logs_err}").contains("response:404"),
        "httpd's log: {logs}{logs_err}"
    );
    let top = s.docker_ok(&["top", "web"]);
    assert!(
        top.contains("PID") && top.contains("httpd -f -v -p 80"),
        "{top}"
    );
    let stats = s.docker_ok(&["stats", "--no-stream", "web"]);
    assert!(stats.contains("web") && stats.contains("64MiB"), "{stats}");
    s.docker_ok(&["rename", "web", "web2"]);
    s.docker_ok(&["pause", "web2"]);
    assert!(s.docker_ok(&["ps"]).contains("(Paused)"));
    s.docker_ok(&["unpause", "web2"]);
    s.docker_ok(&["stop", "-t", "1", "web2"]);
    // A second stop is "not modified", which the CLI accepts.
    let (status, _, _) = http(&s.sock, "POST", "/v1.50/containers/web2/stop", b"");
    assert_eq!(status, 304);
    assert_eq!(s.docker_ok(&["ps", "-q"]), "");
    assert_eq!(s.docker_ok(&["ps", "-a", "-q"]).trim(), &id[..12]);
    s.docker_ok(&["start", "web2"]);
    let (status, _, _) = http(&s.sock, "POST", "/v1.50/containers/web2/start", b"");
    assert_eq!(status, 304);
    s.docker_ok(&["kill", "web2"]);
    assert_eq!(s.docker_ok(&["wait", "web2"]).trim(), "137");
    // cp both ways, and a path outside the container refused.
    let host_file = b.dir.path().join("f.txt");
    std::fs::write(&host_file, "data\n").unwrap();
    s.docker_ok(&["start", "web2"]);
    s.docker_ok(&["cp", host_file.to_str().unwrap(), "web2:/tmp/"]);
    assert_eq!(
        s.docker_ok(&["exec", "web2", "cat", "/tmp/f.txt"]),
        "data\n"
    );
    let back = b.dir.path().join("back");
    s.docker_ok(&["cp", "web2:/etc/passwd", back.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&back).unwrap().starts_with("root:"));
    let (code, _, err) = s.docker(&["cp", "web2:/no/such/file", b.dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Could not find the file /no/such/file"),
        "{err}"
    );
    let (status, _, _) = http(
        &s.sock,
        "HEAD",
        "/v1.50/containers/web2/archive?path=/../../../etc/shadow",
        b"",
    );
    assert_eq!(status, 404, "`..` stays inside the container's root");
    // One store: what the berth CLI runs shows through the API, and the other way round.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "from-berth",
        "busybox",
        "sleep",
        "100",
    ]);
    s.docker_ok(&[
        "run",
        "-d",
        "--name",
        "from-docker",
        "busybox",
        "sleep",
        "100",
    ]);
    let docker_ps = s.docker_ok(&["ps", "--format", "{{.Names}}"]);
    assert!(docker_ps.contains("from-berth"), "{docker_ps}");
    let berth_ps = b.ok(&["ps", "--format", "{{.Names}}"]);
    assert!(berth_ps.contains("from-docker"), "{berth_ps}");
    let ids = s.docker_ok(&["ps", "-aq"]);
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.split_whitespace());
    s.docker_ok(&rm);
    assert_eq!(s.docker_ok(&["ps", "-aq"]), "");
    s.docker_ok(&["create", "--name", "idle", "busybox"]);
    let pruned = s.docker_ok(&["container", "prune", "-f"]);
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    assert_eq!(s.docker_ok(&["ps", "-aq"]), "");
}

#[test]
fn events_of_both_front_ends_are_one_history() {
    let b = Berth::new();
    let s = Server::with_busybox(&b);
    let since = chrono_now();
    let id = b.ok(&["run", "-d", "busybox", "true"]).trim().to_string();
    s.docker_ok(&["run", "--rm", "--name", "via-api", "busybox", "true"]);
    let until = chrono_now() + 1;
    let out = s.docker_ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
    ]);
    assert!(out.contains(&format!("container create {id}")), "{out}");
    assert!(
        out.contains("name=via-api") && out.contains("container destroy"),
        "{out}"
    );

    // An exec through the API: created, started, and its end with the exit code.
    s.docker_ok(&["run", "-d", "--name", "execd", "busybox", "sleep", "1000"]);
    let since = chrono_now();
    let (code, _, _) = s.docker(&["exec", "execd", "sh", "-c", "exit 5"]);
    assert_eq!(code, 5);
    s.docker_ok(&["exec", "-d", "execd", "true"]);
    // The detached exec's end is recorded when its process is reaped.
    // (`since` has whole seconds: the container's own create and start may be in range.)
    let mut out = String::new();
    for _ in 0..100 {
        out = s.docker_ok(&[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &(chrono_now() + 1).to_string(),
            "--filter",
            "container=execd",
            "--format",
            "{{.Action}} {{.Actor.Attributes.exitCode}}",
        ]);
        out = out
            .lines()
            .filter(|l| l.starts_with("exec_"))
            .map(|l| format!("{l}\n"))
            .collect();
        if out.lines().count() >= 6 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "exec_create: sh -c exit 5 <no value>",
            "exec_start: sh -c exit 5 <no value>",
            "exec_die 5",
            "exec_create: true  <no value>",
            "exec_start: true  <no value>",
            "exec_die 0",
        ],
        "{out}"
    );
    s.docker_ok(&["rm", "-f", "execd"]);
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn bad_requests_get_dockerd_answers_and_the_server_keeps_serving() {
    let b = Berth::new();
    let s = Server::with_busybox(&b);
    let (status, _, body) = http(&s.sock, "POST", "/v1.50/containers/create", b"{not json");
    assert_eq!(status, 400);
    assert!(
        message(&body).starts_with("invalid JSON"),
        "{}",
        message(&body)
    );
    let (status, _, body) = http(&s.sock, "GET", "/v1.50/containers/nope/json", b"");
    assert_eq!(
        (status, message(&body).as_str()),
        (404, "No such container: nope")
    );
    let (status, _, body) = http(
        &s.sock,
        "POST",
        "/v1.50/containers/create",
        br#"{"Image":"no-such-image"}"#,
    );
    assert_eq!(status, 404, "the CLI pulls on 404");
    assert!(
        message(&body).contains("No such image"),
        "{}",
        message(&body)
    );
    // A field berth cannot honour is refused by name, not dropped.
    let (status, _, body) = http(
        &s.sock,
        "POST",
        "/v1.50/containers/create",
        br#"{"Image":"busybox","HostConfig":{"BlkioWeight":300}}"#,
    );
    assert_eq!(status, 400);
    assert!(
        message(&body).contains("HostConfig.BlkioWeight"),
        "{}",
        message(&body)
    );
    // The engine's rules answer for the API as for the CLI.
    let (status, _, body) = http(
        &s.sock,
        "POST",
        "/v1.50/containers/create",
        br#"{"Image":"busybox","HostConfig":{"Memory":1024}}"#,
    );
    assert_eq!(
        (status, message(&body).as_str()),
        (400, "Minimum memory limit allowed is 6MB")
    );
    let huge = vec![b' '; 11 << 20];
    let (status, _, _) = http(&s.sock, "POST", "/v1.50/containers/create", &huge);
    assert_eq!(status, 413);
    assert_eq!(s.docker_ok(&["ps", "-aq"]), "", "nothing half-created");

    // A client that goes away in the middle of an attach.
    s.docker_ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "while true; do echo x; sleep 0.05; done",
    ]);
    {
        let mut c = UnixStream::connect(&s.sock).unwrap();
        c.write_all(
            b"POST /v1.50/containers/talker/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\
              Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
        )
        .unwrap();
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
        // Dropped here, mid-stream.
    }
    // 200 concurrent listings while it runs: every one answered.
    let threads: Vec<_> = (0..200)
        .map(|_| {
            let sock = s.sock.clone();
            std::thread::spawn(move || http(&sock, "GET", "/v1.50/containers/json", b"").0)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    let ps = s.docker_ok(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(ps.trim(), "talker");
    s.docker_ok(&["rm", "-f", "talker"]);
}

#[test]
fn containers_outlive_the_server_and_a_new_one_manages_them() {
    let b = Berth::new();
    let mut s = Server::with_busybox(&b);
    s.docker_ok(&["run", "-d", "--name", "keeper", "busybox", "sleep", "1000"]);
    let n = s.docker_ok(&["info", "--format", "{{.ContainersRunning}}"]);
    assert_eq!(n.trim(), "1");
    let (code, err) = s.stop();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stopping"), "{err}");
    // The container runs on without the server; the CLI sees it, and so does a new server.
    assert!(b
        .ok(&["ps", "--format", "{{.Names}} {{.State}}"])
        .contains("keeper running"));
    let s2 = start_server(&b);
    assert_eq!(
        s2.docker_ok(&["ps", "--format", "{{.Names}}"]).trim(),
        "keeper"
    );
    s2.docker_ok(&["stop", "-t", "0", "keeper"]);
    s2.docker_ok(&["rm", "keeper"]);
    assert_eq!(s2.docker_ok(&["ps", "-aq"]), "");
}

/// A CA, a server certificate for 127.0.0.1, a client certificate the CA signed, and one
/// another CA signed, made with openssl(1) in `dir`.
fn make_certs(dir: &std::path::Path) {
    let run = |args: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("cd {} && {args}", dir.display()))
            .output()
            .expect("openssl is needed by the TLS test: run scripts/setup.sh");
        assert!(
            out.status.success(),
            "{args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for ca in ["ca", "other-ca"] {
        run(&format!(
            "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN={ca} \
             -keyout {ca}-key.pem -out {ca}.pem"
        ));
    }
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, ca, ext) in [
        ("server", "ca", "server.ext"),
        ("client", "ca", "client.ext"),
        ("stranger", "other-ca", "client.ext"),
    ] {
        run(&format!(
            "openssl req -newkey rsa:2048 -nodes -subj /CN={name} -keyout {name}-key.pem \
             -out {name}.csr && openssl x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}-key.pem \
             -CAcreateserial -days 2 -extfile {ext} -out {name}.pem"
        ));
    }
}

#[test]
fn mutual_tls_on_tcp_lets_in_only_clients_the_ca_signed() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let c = |f: &str| certs.path().join(f).display().to_string();
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let sock = b.dir.path().join("api.sock");
    let child = b
        .command()
        .args([
            "serve",
            "-H",
            &format!("unix://{}", sock.display()),
            "-H",
            &tcp,
        ])
        .args(["--tlsverify", "--tlscacert", &c("ca.pem")])
        .args([
            "--tlscert",
            &c("server.pem"),
            "--tlskey",
            &c("server-key.pem"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut s = Server {
        child: Some(child),
        sock,
        docker_config: tempfile::tempdir().unwrap(),
    };
    common::wait_for("the API socket", Duration::from_secs(10), || {
        UnixStream::connect(&s.sock).is_ok()
    });
    let docker_tcp = |client: &str, args: &[&str]| {
        let out = Command::new(DOCKER)
            .args(["-H", &tcp, "--tlsverify", "--tlscacert", &c("ca.pem")])
            .args(["--tlscert", &c(&format!("{client}.pem"))])
            .args(["--tlskey", &c(&format!("{client}-key.pem"))])
            .args(args)
            .env("DOCKER_CONFIG", s.docker_config.path())
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = docker_tcp("client", &["run", "--rm", "busybox", "echo", "over-tls"]);
    assert_eq!((code, out.trim()), (0, "over-tls"), "{out}");
    let (code, out) = docker_tcp("client", &["version", "--format", "{{.Server.Os}}"]);
    assert_eq!((code, out.trim()), (0, "linux"), "{out}");
    // A certificate another CA signed does not get through the handshake.
    let (code, out) = docker_tcp("stranger", &["ps"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.to_lowercase().contains("tls") || out.contains("certificate"),
        "{out}"
    );
    // Nor does a client without a certificate, or plain HTTP.
    let out = Command::new(DOCKER)
        .args(["-H", &tcp, "--tls", "--tlscacert", &c("ca.pem"), "ps"])
        .env("DOCKER_CONFIG", s.docker_config.path())
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a client without a certificate got in"
    );
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    plain
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "plain HTTP answered on the TLS port"
    );
    // The unix socket stays plain, for local clients.
    s.docker_ok(&["version"]);
    let (code, err) = s.stop();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("(TLS)"),
        "the listener is announced as TLS: {err}"
    );
}

#[test]
fn a_thousand_idle_connections_do_not_stop_the_server() {
    let b = Berth::new();
    b.import_busybox("busybox");
    // The server starts with a soft descriptor limit far below 1,000 (a login shell's 256 or
    // 1024), which it raises to the hard limit.
    let sock = b.dir.path().join("api.sock");
    let mut cmd = b.command();
    cmd.args(["serve", "-H", &format!("unix://{}", sock.display())])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else after fork.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
            lim.rlim_cur = 256;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        })
    };
    let s = Server {
        child: Some(cmd.spawn().unwrap()),
        sock,
        docker_config: tempfile::tempdir().unwrap(),
    };
    common::wait_for("the API socket", Duration::from_secs(10), || {
        UnixStream::connect(&s.sock).is_ok()
    });
    // A client that holds 1,000 connections open: half silent, half with a request's
    // headers begun and never finished. Python raises its own descriptor limit.
    const HOLDER: &str = r#"
import resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
conns = []
for i in range(1000):
    c = socket.socket(socket.AF_UNIX)
    c.connect(sys.argv[1])
    if i % 2:
        c.sendall(b"GET /containers/json HTTP/1.1\r\nHost: x\r\n")
    conns.append(c)
print("holding", flush=True)
sys.stdin.read()
"#;
    let mut holder = Command::new("python3")
        .args(["-c", HOLDER, &s.sock.display().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 holds the idle connections");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "holding");
    // The server raised its soft limit to the hard one.
    let pid = s.child.as_ref().unwrap().id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(open_files[3], open_files[4], "{limits}");
    // While they sit there, the server answers everyone else at once (well before the
    // 30 s after which it closes connections that never finish their headers).
    let out = s
        .client("/usr/bin/timeout")
        .args(["20", DOCKER, "run", "--rm", "busybox", "true"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, _, _) = http(&s.sock, "GET", "/v1.50/containers/json", b"");
    assert_eq!(status, 200);
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    s.docker_ok(&["ps"]);
}

#[test]
fn docker_import_streams_the_tarball_in_the_request_body() {
    let b = Berth::new();
    let s = start_server(&b);
    let tar = common::busybox_tar();
    // `docker import FILE REPO:TAG` sends `fromSrc=-` with the tarball as a chunked body.
    let id = s.docker_ok(&[
        "import",
        "-c",
        "CMD [\"echo\", \"imported\"]",
        "-c",
        "ENV STAGE=api",
        "-m",
        "from the socket",
        tar.to_str().unwrap(),
        "imported:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let out = s.docker_ok(&["run", "--rm", "imported:v1"]);
    assert_eq!(out.trim(), "imported");
    let out = s.docker_ok(&["run", "--rm", "imported:v1", "sh", "-c", "echo $STAGE"]);
    assert_eq!(out.trim(), "api");
    let history = s.docker_ok(&["history", "--format", "{{.Comment}}", "imported:v1"]);
    assert_eq!(history.trim(), "from the socket");
    // The CLI sees what the server stored.
    assert_eq!(
        b.ok(&["image", "inspect", "--format", "{{.Id}}", "imported:v1"])
            .trim(),
        id.trim()
    );
    // A body that is no tarball is refused, and leaves nothing behind.
    let junk = b.dir.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive at all").unwrap();
    let (code, _, err) = s.docker(&["import", junk.to_str().unwrap(), "junk:v1"]);
    assert_ne!(code, 0);
    assert!(!err.is_empty());
    assert_eq!(
        s.docker_ok(&["images", "-q", "junk"]).trim(),
        "",
        "nothing half-imported"
    );
}

/// `POST /build` takes berth's own options (`strict`, `timestamp`) and refuses a parameter
/// it does not know, so no client option is silently dropped.
#[test]
fn build_takes_strict_and_timestamp_and_refuses_unknown_parameters() {
    let b = Berth::with_busybox();
    let s = start_server(&b);
    let ctx = b.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    for (name, text) in [
        (
            "Dockerfile",
            "FROM busybox\nWORKDIR /app\nCOPY pip /usr/local/bin/pip\nCOPY requirements.txt .\nRUN chmod 755 /usr/local/bin/pip && /usr/local/bin/pip install -r requirements.txt\n",
        ),
        ("pip", "#!/bin/sh\necho \"pip $*\"\n"),
        ("requirements.txt", "numpy>=1.2\n"),
    ] {
        std::fs::write(ctx.join(name), text).unwrap();
    }
    let out = Command::new("tar")
        .args(["-C", ctx.to_str().unwrap(), "-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success());
    let tar = out.stdout;

    for (query, want) in [
        ("frobnicate=1", "unknown build parameter \"frobnicate\""),
        ("cgroupparent=/x", "cgroupparent=/x is not supported"),
        ("timestamp=soon", "invalid timestamp \"soon\""),
    ] {
        let (status, _, body) = http(&s.sock, "POST", &format!("/v1.50/build?{query}"), &tar);
        assert_eq!(status, 400, "{query}: {}", String::from_utf8_lossy(&body));
        assert!(message(&body).contains(want), "{query}: {}", message(&body));
    }

    // timestamp=SECONDS, as build --timestamp; the requirement finding is a warning.
    let (status, _, body) = http(
        &s.sock,
        "POST",
        "/v1.50/build?t=api:ts&timestamp=1234",
        &tar,
    );
    let stream = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{stream}");
    assert!(stream.contains("Successfully tagged api:ts"), "{stream}");
    assert!(
        stream.contains("[Warning] requirements.txt:1: numpy"),
        "{stream}"
    );
    assert_eq!(
        b.ok(&["image", "inspect", "-f", "{{.Created}}", "api:ts"])
            .trim(),
        "1970-01-01T00:20:34Z"
    );

    // strict=1, as build --strict: the finding fails the build and nothing is tagged.
    let (status, _, body) = http(&s.sock, "POST", "/v1.50/build?t=api:strict&strict=1", &tar);
    let stream = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{stream}");
    assert!(stream.contains("errorDetail"), "{stream}");
    assert!(stream.contains("--strict: "), "{stream}");
    assert!(!stream.contains("Successfully built"), "{stream}");
    let (code, _, _) = b.code(&["image", "inspect", "api:strict"]);
    assert_ne!(code, 0, "a strict failure must tag nothing");
}
