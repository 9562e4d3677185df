//! The Engine API server (`berth serve`) driven by the real docker CLI 28.2.2 and by raw HTTP
//! on its unix socket.

mod common;

use common::Berth;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DOCKER: &str = "/usr/local/bin/docker";

/// A `berth serve` on a socket in the test's directory, stopped (SIGTERM) when dropped.
struct Server {
    child: Option<Child>,
    sock: PathBuf,
    docker_config: tempfile::TempDir,
}

impl Server {
    fn start(b: &Berth) -> Server {
        common::is_root("api");
        let sock = b.dir.path().join("api.sock");
        let child = b
            .command()
            .args(["serve", "-H", &format!("unix://{}", sock.display())])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting berth serve");
        let s = Server {
            child: Some(child),
            sock,
            docker_config: tempfile::tempdir().unwrap(),
        };
        common::wait_for("the API socket", Duration::from_secs(10), || {
            UnixStream::connect(&s.sock).is_ok()
        });
        s
    }

    fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The docker CLI against this server: (exit code, stdout, stderr).
    fn docker(&self, args: &[&str]) -> (i32, String, String) {
        assert!(
            std::path::Path::new(DOCKER).exists(),
            "{DOCKER} (docker CLI 28.2.2) is needed by the API tests"
        );
        let out = Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.docker_config.path())
            .env_remove("DOCKER_API_VERSION")
            .stdin(Stdio::null())
            .output()
            .expect("running docker");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.docker(args);
        assert_eq!(code, 0, "docker {args:?}: {out}{err}");
        out
    }

    /// SIGTERM, then the exit status and what the server printed.
    fn stop(&mut self) -> (i32, String) {
        let child = self.child.take().unwrap();
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: as in `stop`.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
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
    let mut s = Server::start(&b);
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
    let s = Server::start(&b);
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
    let (_, err) = b.fails(&["serve", "--tlsverify", "-H", "tcp://127.0.0.1:0"]);
    assert!(err.contains("not supported yet"), "{err}");
    let (_, err) = b.fails(&["serve", "-H", "udp://x"]);
    assert!(err.contains("unix://PATH or tcp://ADDRESS:PORT"), "{err}");
    let (_, err) = b.fails(&["serve", "--group", "no-such-group-here"]);
    assert!(err.contains("no-such-group-here"), "{err}");

    // A live server's socket is refused; a stale one (a killed server's) is replaced.
    let s = Server::start(&b);
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
    let s2 = Server::start(&b);
    s2.docker_ok(&["version"]);
}
