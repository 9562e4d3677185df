//! The Engine API's image, build, volume and network endpoints driven by real clients against
//! `berth serve` on a socket in the test's directory: the docker CLI 28.2.2 (login, pull and
//! push against `berth registry serve` with htpasswd on 127.0.0.1, images, build, save/load,
//! volumes, networks, system prune), docker-py 7.2 and testcontainers-python (from the
//! checkout's `.venv`, which scripts/setup.sh makes) and Debian's docker-compose 1.29.2.
//! A missing client fails the test with the command that installs it.

mod common;

use common::{sh, Berth};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::serve::{Server, DOCKER};
const COMPOSE: &str = "/usr/bin/docker-compose";

fn start_server(b: &Berth) -> Server {
    Server::start_with(b, "api_clients", Stdio::inherit())
}

/// Docker clients with input.
trait WithInput {
    fn docker_in(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String);
}

impl WithInput for Server {
    /// The docker CLI: (exit code, stdout, stderr).
    fn docker_in(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        let mut c = self.client(DOCKER);
        c.args(args);
        let out = match stdin {
            None => c.output().expect("running docker"),
            Some(text) => {
                c.stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let mut child = c.spawn().expect("running docker");
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(text.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            }
        };
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

/// `berth registry serve` with htpasswd auth on 127.0.0.1, killed when dropped.
struct Registry {
    child: Child,
    addr: String,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

impl Registry {
    fn start() -> Registry {
        let auth = tempfile::tempdir_in(common::scratch_dir()).unwrap();
        let htpasswd = auth.path().join("htpasswd");
        std::fs::write(&htpasswd, sh(&format!("htpasswd -Bbn {USER} {PASSWORD}"))).unwrap();
        let r = common::registry::start(&["--htpasswd", htpasswd.to_str().unwrap()]);
        Registry {
            child: r.child,
            addr: r.addr,
            _dirs: (r.dir, auth),
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: scripts/setup.sh makes it (docker-py 7.2 and testcontainers)",
        p.display()
    );
    p
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn docker_cli_images_build_registry_volumes_networks() {
    let b = Berth::with_busybox();
    let s = start_server(&b);
    let reg = Registry::start();
    let r = &reg.addr;

    // images, inspect, tag, history, rmi
    let list = s.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(list.trim(), "busybox:latest");
    let id = s.docker_ok(&["image", "inspect", "busybox", "--format", "{{.Id}}"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    s.docker_ok(&["tag", "busybox", "other/name:2"]);
    let id2 = s.docker_ok(&["image", "inspect", "other/name:2", "--format", "{{.Id}}"]);
    assert_eq!(id, id2);
    let out = s.docker_ok(&["rmi", "other/name:2"]);
    assert_eq!(out.trim(), "Untagged: other/name:2");
    let (code, _, err) = s.docker(&["image", "inspect", "nosuch:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such image: nosuch:1"), "{err}");
    assert!(s.docker_ok(&["history", "busybox"]).contains("IMAGE"));

    // build -t (the classic builder: no buildx plugin here)
    let ctx = b.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo step-output && echo built > /built\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n",
    )
    .unwrap();
    std::fs::write(ctx.join("f"), "from-the-context\n").unwrap();
    let (code, out, err) = s.docker(&["build", "-t", "built:1", ctx.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Step 2/3 : RUN echo step-output"), "{out}");
    assert!(out.contains("step-output\n"), "{out}");
    assert!(out.contains("Successfully tagged built:1"), "{out}");
    assert_eq!(b.ok(&["run", "--rm", "built:1"]), "from-the-context\n");
    // The engine's default epoch: no .git was sent, so the base image's creation time.
    let created = |image: &str| {
        let c = s.docker_ok(&["image", "inspect", image, "--format", "{{.Created}}"]);
        chrono::DateTime::parse_from_rfc3339(c.trim())
            .unwrap_or_else(|e| panic!("{c:?}: {e}"))
            .timestamp()
    };
    assert_eq!(created("built:1"), created("busybox"));
    // A context sent with its .git gets HEAD's commit time; a SOURCE_DATE_EPOCH build arg wins.
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(&ctx)
            .env("GIT_AUTHOR_NAME", "a")
            .env("GIT_AUTHOR_EMAIL", "a@example.com")
            .env("GIT_COMMITTER_NAME", "c")
            .env("GIT_COMMITTER_EMAIL", "c@example.com")
            .env("GIT_AUTHOR_DATE", "@1600000000 +0000")
            .env("GIT_COMMITTER_DATE", "@1600000000 +0000")
            .env("HOME", &ctx)
            .output()
            .expect("running git (scripts/setup.sh installs it)");
        assert!(out.status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    s.docker_ok(&["build", "-q", "-t", "built:git", ctx.to_str().unwrap()]);
    assert_eq!(created("built:git"), 1600000000);
    s.docker_ok(&[
        "build",
        "-q",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1700000000",
        "-t",
        "built:sde",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(created("built:sde"), 1700000000);
    std::fs::remove_dir_all(ctx.join(".git")).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN exit 3\n").unwrap();
    let (code, out, err) = s.docker(&["build", "-t", "bad:1", ctx.to_str().unwrap()]);
    // The CLI exits with the failed step's code (errorDetail.code), as with dockerd.
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("returned a non-zero code: 3"), "{out}{err}");

    // save / load through the API
    let tar = b.dir.path().join("saved.tar");
    s.docker_ok(&["save", "-o", tar.to_str().unwrap(), "built:1"]);
    s.docker_ok(&["rmi", "built:1"]);
    let out = s.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("Loaded image: built:1"), "{out}");

    // login / push / pull against the registry
    let name = format!("{r}/t/busybox:1");
    s.docker_ok(&["tag", "busybox", &name]);
    let (code, out, err) = s.docker(&["push", &name]);
    assert_eq!(code, 1, "a push without credentials must fail: {out}{err}");
    assert!(err.contains("unauthorized"), "{out}{err}");
    let (code, out, err) = s.docker_in(
        &["login", "-u", USER, "--password-stdin", r],
        Some("wrong\n"),
    );
    assert_eq!(code, 1, "{out}{err}");
    let (code, out, err) = s.docker_in(
        &["login", "-u", USER, "--password-stdin", r],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Login Succeeded"), "{out}");
    let out = s.docker_ok(&["push", &name]);
    assert!(out.contains("1: digest: sha256:"), "{out}");
    s.docker_ok(&["rmi", &name]);
    let out = s.docker_ok(&["pull", &name]);
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
    assert_eq!(
        s.docker_ok(&["image", "inspect", &name, "--format", "{{.Id}}"]),
        id
    );
    let (code, _, err) = s.docker(&["pull", &format!("{r}/t/nope:1")]);
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");

    // volumes
    s.docker_ok(&["volume", "create", "--label", "k=v", "vol1"]);
    let ls = s.docker_ok(&[
        "volume",
        "ls",
        "--filter",
        "label=k=v",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(ls.trim(), "vol1");
    assert_eq!(s.docker_ok(&["volume", "rm", "vol1"]).trim(), "vol1");
    let (code, _, err) = s.docker(&["volume", "inspect", "vol1"]);
    assert_eq!(code, 1, "{err}");

    // networks
    let nid = s.docker_ok(&["network", "create", "--label", "k=v", "net1"]);
    assert_eq!(nid.trim().len(), 64, "{nid}");
    let ls = s.docker_ok(&[
        "network",
        "ls",
        "--filter",
        "label=k=v",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(ls.trim(), "net1");
    assert_eq!(s.docker_ok(&["network", "rm", "net1"]).trim(), "net1");
    let (code, _, err) = s.docker(&["network", "create", "-d", "overlay", "net2"]);
    assert_eq!(code, 1, "{err}");

    // system prune -a -f: every image no container uses goes
    let out = s.docker_ok(&["system", "prune", "-a", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(s.docker_ok(&["images", "-q"]).trim(), "");
}

#[test]
fn docker_py_smoke() {
    let b = Berth::with_busybox();
    let s = start_server(&b);
    let reg = Registry::start();
    let out = s
        .client(python().to_str().unwrap())
        .arg(clients_dir().join("dockerpy_smoke.py"))
        .env("REGISTRY", &reg.addr)
        .env("REGISTRY_USER", USER)
        .env("REGISTRY_PASSWORD", PASSWORD)
        .env("SECTIONS", "images,build,networks,volumes,containers")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.trim_end().ends_with("ok"), "{text}");
}

#[test]
fn compose_two_services_with_health_volume_and_port() {
    let b = Berth::with_busybox();
    let s = start_server(&b);
    let port = free_port().to_string();
    let project = clients_dir().join("compose");
    let compose = |args: &[&str]| {
        let out = s
            .client(COMPOSE)
            .arg("-p")
            .arg("bt")
            .arg("--project-directory")
            .arg(&project)
            .arg("-f")
            .arg(project.join("docker-compose.yml"))
            .args(args)
            .env("WEB_PORT", &port)
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, out) = compose(&["up", "-d"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = compose(&["ps"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("bt_web_1") && out.contains("bt_client_1"),
        "{out}"
    );
    common::wait_for("the client's fetch", Duration::from_secs(20), || {
        compose(&["logs", "client"]).1.contains("hello-from-web")
    });
    let (code, out) = compose(&["exec", "-T", "web", "cat", "/www/index.html"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "hello-from-web");
    let body = sh(&format!("curl -s http://127.0.0.1:{port}/index.html"));
    assert_eq!(body.trim(), "hello-from-web");
    let (code, out) = compose(&["down", "-v"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert!(!b.ok(&["volume", "ls", "-q"]).contains("bt_www"));
    assert!(!b.ok(&["network", "ls"]).contains("bt_default"));
}

#[test]
fn testcontainers_generic_container() {
    let b = Berth::with_busybox();
    let s = start_server(&b);
    let out = s
        .client(python().to_str().unwrap())
        .arg(clients_dir().join("testcontainers_smoke.py"))
        .env("TESTCONTAINERS_RYUK_DISABLED", "true")
        // This machine has /.dockerenv, which makes testcontainers believe it runs inside a
        // container and reach containers through their gateway; the published port on the
        // socket's host is what is under test.
        .env("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        "ok",
        "{text}"
    );
    assert_eq!(b.ok(&["ps", "-q"]), "", "the container was removed");
}
