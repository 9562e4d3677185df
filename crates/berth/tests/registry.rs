//! Registries end to end, with real processes on 127.0.0.1: `berth registry serve` as the
//! registry, `berth push/pull/login/logout` as the client, and, when installed, Debian's
//! `docker-registry` (distribution 2.8), skopeo and podman on the other side.

mod common;

use common::{sh, Berth};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A registry process, killed when dropped.
struct Registry {
    child: Child,
    addr: String,
    storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// `berth registry serve` on a free port, with `extra` flags.
    fn berth(extra: &[&str]) -> Registry {
        let r = common::registry::start(extra);
        Registry {
            child: r.child,
            addr: r.addr,
            storage: r.storage,
            _dir: r.dir,
        }
    }

    /// Debian's docker-registry (distribution 2.8) with htpasswd auth.
    fn distribution(htpasswd: &Path) -> Registry {
        assert!(
            Path::new("/usr/bin/docker-registry").exists(),
            "docker-registry is not installed (scripts/setup.sh installs it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("distribution-")
            .tempdir_in(common::scratch_dir())
            .unwrap();
        let storage = dir.path().join("storage");
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                storage.display(),
                htpasswd.display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Registry {
            child,
            addr,
            storage,
            _dir: dir,
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A berth store plus its own Docker config directory (credentials).
struct Client {
    b: Berth,
    docker_config: PathBuf,
}

impl Client {
    fn new() -> Client {
        let b = Berth::new();
        let docker_config = b.dir.path().join("docker-config");
        Client { b, docker_config }
    }

    /// A second store that shares this one's credentials.
    fn sibling(&self) -> Client {
        Client {
            b: Berth::new(),
            docker_config: self.docker_config.clone(),
        }
    }

    fn command(&self) -> Command {
        let mut c = self.b.command();
        c.env("DOCKER_CONFIG", &self.docker_config);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "berth {args:?} should fail with 1:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    fn login_stdin(&self, server: &str, user: &str, password: &str) -> Output {
        let mut child = self
            .command()
            .args(["login", "-u", user, "--password-stdin", server])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    fn config_json(&self) -> Value {
        match std::fs::read(self.docker_config.join("config.json")) {
            Ok(b) => serde_json::from_slice(&b).unwrap(),
            Err(_) => Value::Null,
        }
    }

    /// Nothing in the store: no images, blobs, layers or staging leftovers.
    fn assert_empty_store(&self) {
        assert_eq!(self.ok(&["images", "-q", "-a"]).trim(), "");
        assert!(self.b.blobs().is_empty(), "blobs: {:?}", self.b.blobs());
        assert!(self.b.layer_dirs().is_empty());
        assert!(self.b.staged_leftovers().is_empty());
    }
}

fn htpasswd_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let path = dir.join("htpasswd");
    let line = sh(&format!("htpasswd -Bbn {user} {password}"));
    std::fs::write(&path, line.trim()).unwrap();
    path
}

fn digest_line(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no Digest line in {out}"))
        .to_string()
}

#[test]
fn push_rmi_pull_round_trip_keeps_id_and_repo_digest() {
    let reg = Registry::berth(&[]);
    let c = Client::new();
    c.b.import_busybox("busybox");
    let name = format!("{}/test/busybox", reg.addr);
    c.ok(&["tag", "busybox", &name]);

    let out = c.ok(&["push", &name]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("The push refers to repository [{name}]")
    );
    assert!(out.contains(": Pushed"), "{out}");
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("latest: digest: sha256:"), "{last}");
    assert!(last.contains(" size: "), "{last}");
    let pushed_digest = last.split_whitespace().nth(2).unwrap().to_string();
    let before = c.inspect(&name);
    let repo_digest = format!("{name}@{pushed_digest}");
    assert_eq!(before["RepoDigests"][0], repo_digest.as_str());

    // Pushing again uploads nothing.
    let again = c.ok(&["push", &name]);
    assert!(again.contains(": Layer already exists"), "{again}");
    assert!(!again.contains(": Pushed"), "{again}");

    c.ok(&["rmi", &name, "busybox"]);
    c.assert_empty_store();

    let out = c.ok(&["pull", &name]);
    let expect_start = [
        "Using default tag: latest".to_string(),
        "latest: Pulling from test/busybox".to_string(),
    ];
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got[..2], expect_start, "{out}");
    assert!(out.contains(": Pull complete"), "{out}");
    assert_eq!(digest_line(&out), pushed_digest);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}:latest")),
        "{out}"
    );
    assert_eq!(got.last().unwrap(), &format!("{name}:latest"));
    let after = c.inspect(&name);
    assert_eq!(after["Id"], before["Id"]);
    assert_eq!(after["RepoDigests"], before["RepoDigests"]);
    assert_eq!(after["RootFS"], before["RootFS"]);
    assert!(c.b.staged_leftovers().is_empty());

    // Up to date: nothing downloaded.
    let out = c.ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}:latest")),
        "{out}"
    );
    assert!(!out.contains("Pull complete"), "{out}");

    // The pulled image pushes back to the same digest.
    let out = c.ok(&["push", &name]);
    assert!(
        out.contains(&format!("latest: digest: {pushed_digest} ")),
        "{out}"
    );

    // -q prints only the name.
    let other = c.sibling();
    assert_eq!(
        other.ok(&["pull", "-q", &name]).trim(),
        format!("{name}:latest")
    );
}

#[test]
fn layers_are_skipped_and_mounted_and_digests_pull() {
    let reg = Registry::berth(&[]);
    let c = Client::new();
    c.b.import_busybox("busybox");
    let a = format!("{}/team/a:v1", reg.addr);
    let b = format!("{}/team/b:v1", reg.addr);
    c.ok(&["tag", "busybox", &a]);
    c.ok(&["tag", "busybox", &b]);
    c.ok(&["push", &a]);
    // The layer came from team/a on the same registry: mounted, not uploaded.
    let out = c.ok(&["push", &b]);
    assert!(out.contains(": Mounted from team/a"), "{out}");

    // A second image over the same base layer: "Already exists" on pull.
    let d = Client::new();
    let pulled = d.ok(&["pull", &a]);
    let digest = digest_line(&pulled);
    let out = d.ok(&["pull", &b]);
    assert!(out.contains(": Already exists"), "{out}");
    assert!(!out.contains("Pull complete"), "{out}");

    // By digest: no tag, a repo digest.
    let e = Client::new();
    let by_digest = format!("{}/team/a@{digest}", reg.addr);
    let out = e.ok(&["pull", &by_digest]);
    assert!(
        out.contains(&format!("{digest}: Pulling from team/a")),
        "{out}"
    );
    assert_eq!(out.lines().last().unwrap(), by_digest);
    let img = e.inspect(&by_digest);
    assert_eq!(img["RepoTags"], serde_json::json!([]));
    assert_eq!(img["RepoDigests"][0], by_digest.as_str());
    assert_eq!(img["Id"], d.inspect(&a)["Id"]);
}

#[test]
fn all_tags_pull_every_tag() {
    let reg = Registry::berth(&[]);
    let c = Client::new();
    c.b.import_busybox("busybox");
    let repo = format!("{}/multi/app", reg.addr);
    c.ok(&["tag", "busybox", &format!("{repo}:1.0")]);
    let tar = common::busybox_tar();
    c.ok(&[
        "import",
        "-c",
        "ENV V=2",
        tar.to_str().unwrap(),
        &format!("{repo}:2.0"),
    ]);
    let out = c.ok(&["push", "-a", &repo]);
    assert!(out.contains("1.0: digest: sha256:"), "{out}");
    assert!(out.contains("2.0: digest: sha256:"), "{out}");
    assert_eq!(
        c.fails(&["pull", "-a", &format!("{repo}:1.0")]).trim(),
        "Error: tag can't be used with --all-tags/-a"
    );

    let d = Client::new();
    let out = d.ok(&["pull", "-a", &repo]);
    assert!(out.contains("1.0: Pulling from multi/app"), "{out}");
    assert!(out.contains("2.0: Pulling from multi/app"), "{out}");
    // Same layer in both: the second tag finds it.
    assert!(out.contains(": Already exists"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {repo}")),
        "{out}"
    );
    let tags = d.ok(&["images", "--format", "{{.Tag}}", &repo]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["1.0", "2.0"]);
    assert_eq!(d.inspect(&format!("{repo}:2.0"))["Config"]["Env"][0], "V=2");
}

#[test]
fn login_push_pull_logout_with_htpasswd() {
    let c = Client::new();
    let htpasswd = htpasswd_file(c.b.dir.path(), "alice", "s3cret");
    let reg = Registry::berth(&["--htpasswd", htpasswd.to_str().unwrap()]);
    c.b.import_busybox("busybox");
    let name = format!("{}/private/app:v1", reg.addr);
    c.ok(&["tag", "busybox", &name]);

    // Not logged in: refused, and told to log in.
    let err = c.fails(&["push", &name]);
    assert!(
        err.contains("unauthorized: authentication required"),
        "{err}"
    );

    // Wrong password: refused, nothing stored.
    let out = c.login_stdin(&reg.addr, "alice", "wrong");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("Error: unauthorized"), "{err}");
    assert!(c.config_json()["auths"][&reg.addr].is_null());

    // -p warns.
    let out = c.run(&["login", "-u", "alice", "-p", "s3cret", &reg.addr]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("WARNING! Using --password via the CLI is insecure. Use --password-stdin."));

    let out = c.login_stdin(&reg.addr, "alice", "s3cret");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Login Succeeded"
    );
    let auth = c.config_json()["auths"][&reg.addr]["auth"].clone();
    assert_eq!(
        auth.as_str().unwrap(),
        sh("printf %s alice:s3cret | base64").trim()
    );

    let out = c.ok(&["push", &name]);
    assert!(out.contains(": Pushed"), "{out}");
    let d = c.sibling();
    let out = d.ok(&["pull", &name]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");

    assert_eq!(
        c.ok(&["logout", &reg.addr]).trim(),
        format!("Removing login credentials for {}", reg.addr)
    );
    assert!(c.config_json()["auths"][&reg.addr].is_null());
    assert_eq!(
        c.ok(&["logout", &reg.addr]).trim(),
        format!("Not logged in to {}", reg.addr)
    );
    let e = c.sibling();
    let err = e.fails(&["pull", &name]);
    assert!(err.contains("pull access denied"), "{err}");
    e.assert_empty_store();
}

#[test]
fn token_auth_registry() {
    let c = Client::new();
    let htpasswd = htpasswd_file(c.b.dir.path(), "bob", "pw");
    let reg = Registry::berth(&["--htpasswd", htpasswd.to_str().unwrap(), "--token-auth"]);
    c.b.import_busybox("busybox");
    let name = format!("{}/tok/app:v1", reg.addr);
    c.ok(&["tag", "busybox", &name]);
    // An anonymous token grants nothing: a push says to log in.
    let err = c.fails(&["push", &name]);
    assert!(
        err.contains("unauthorized: authentication required"),
        "{err}"
    );
    let out = c.login_stdin(&reg.addr, "bob", "nope");
    assert_eq!(out.status.code(), Some(1));
    let out = c.login_stdin(&reg.addr, "bob", "pw");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.ok(&["push", &name]);
    c.sibling().ok(&["pull", &name]);
}

#[test]
fn unknown_names_and_unreachable_registries_fail_cleanly() {
    let reg = Registry::berth(&[]);
    let c = Client::new();
    c.b.import_busybox("busybox");
    let name = format!("{}/known/app:v1", reg.addr);
    c.ok(&["tag", "busybox", &name]);
    c.ok(&["push", &name]);

    let d = Client::new();
    let err = d.fails(&["pull", &format!("{}/known/app:nope", reg.addr)]);
    assert!(err.contains("manifest unknown"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = d.fails(&["pull", &format!("{}/unknown/repo", reg.addr)]);
    assert!(
        err.contains("manifest unknown") || err.contains("pull access denied"),
        "{err}"
    );
    let port = free_port();
    let err = d.fails(&["pull", &format!("127.0.0.1:{port}/x/y")]);
    assert!(err.contains("unreachable"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = d.fails(&["push", &format!("{}/known/app:absent", reg.addr)]);
    assert!(
        err.contains("An image does not exist locally with the tag"),
        "{err}"
    );
    d.assert_empty_store();
}

#[test]
fn tampered_blob_is_rejected_and_store_unchanged() {
    let reg = Registry::berth(&[]);
    let c = Client::new();
    c.b.import_busybox("busybox");
    let name = format!("{}/tamper/app:v1", reg.addr);
    c.ok(&["tag", "busybox", &name]);
    c.ok(&["push", &name]);
    // The layer is the largest blob the registry holds: flip one byte in its middle.
    let blobs = common::list(&reg.storage.join("blobs/sha256"));
    let layer = blobs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(layer).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(layer, &bytes).unwrap();

    let d = Client::new();
    let err = d.fails(&["pull", &name]);
    assert!(
        err.contains("verification failed") || err.contains("digest"),
        "{err}"
    );
    d.assert_empty_store();
}

#[test]
fn registry_gc_reports_unreferenced_blobs() {
    let reg = Registry::berth(&["--delete-enabled"]);
    let c = Client::new();
    c.b.import_busybox("busybox");
    let name = format!("{}/gc/app:v1", reg.addr);
    c.ok(&["tag", "busybox", &name]);
    c.ok(&["push", &name]);
    let storage = reg.storage.to_str().unwrap().to_string();
    let out = c.ok(&["registry", "gc", "--dry-run", "--storage", &storage]);
    assert!(out.contains("0 blobs eligible for deletion"), "{out}");
}

#[test]
fn distribution_registry_with_htpasswd() {
    let c = Client::new();
    let htpasswd = htpasswd_file(c.b.dir.path(), "carol", "pa55");
    let reg = Registry::distribution(&htpasswd);
    c.b.import_busybox("busybox");
    let name = format!("{}/dist/app:v1", reg.addr);
    c.ok(&["tag", "busybox", &name]);
    let out = c.login_stdin(&reg.addr, "carol", "bad");
    assert_eq!(out.status.code(), Some(1));
    assert!(c.config_json()["auths"][&reg.addr].is_null());
    let out = c.login_stdin(&reg.addr, "carol", "pa55");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = c.ok(&["push", &name]);
    assert!(out.contains(": Pushed"), "{out}");
    let pushed = out
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    let again = c.ok(&["push", &name]);
    assert!(again.contains(": Layer already exists"), "{again}");
    let id = c.inspect(&name)["Id"].clone();
    let d = c.sibling();
    let out = d.ok(&["pull", &name]);
    assert_eq!(digest_line(&out), pushed);
    assert_eq!(d.inspect(&name)["Id"], id);
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn skopeo_copies_from_and_to_our_registry() {
    assert!(
        have("skopeo"),
        "skopeo is not installed (scripts/setup.sh installs it)"
    );
    let reg = Registry::berth(&[]);
    let c = Client::new();
    c.b.import_busybox("busybox");
    let name = format!("{}/sk/app:v1", reg.addr);
    c.ok(&["tag", "busybox", &name]);
    c.ok(&["push", &name]);
    let id = c.inspect(&name)["Id"].as_str().unwrap().to_string();

    // Registry → registry (another repository) and registry → OCI layout.
    let copy = format!("{}/sk/copy:v1", reg.addr);
    let layout = c.b.dir.path().join("layout");
    sh(&format!(
        "skopeo copy --src-tls-verify=false --dest-tls-verify=false docker://{name} docker://{copy} && \
         skopeo copy --src-tls-verify=false docker://{name} oci:{}:v1",
        layout.display()
    ));
    let inspect: Value = serde_json::from_str(&sh(&format!(
        "skopeo inspect --tls-verify=false docker://{copy}"
    )))
    .unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);
    // What skopeo wrote, we pull.
    let d = Client::new();
    d.ok(&["pull", &copy]);
    assert_eq!(d.inspect(&copy)["Id"], id.as_str());

    // An image skopeo pushed from a layout (OCI media types) pulls too.
    let from_layout = format!("{}/sk/layout:v1", reg.addr);
    sh(&format!(
        "skopeo copy --dest-tls-verify=false oci:{}:v1 docker://{from_layout}",
        layout.display()
    ));
    d.ok(&["pull", &from_layout]);
    assert_eq!(d.inspect(&from_layout)["Id"], id.as_str());
}

#[test]
fn podman_pulls_from_our_registry() {
    assert!(
        have("podman"),
        "podman is not installed (scripts/setup.sh installs it)"
    );
    let reg = Registry::berth(&[]);
    let c = Client::new();
    c.b.import_busybox("busybox");
    let name = format!("{}/pod/app:v1", reg.addr);
    c.ok(&["tag", "busybox", &name]);
    c.ok(&["push", &name]);
    let id = c.inspect(&name)["Id"].as_str().unwrap().to_string();
    // Podman limits the runroot's path to 50 characters.
    let run = tempfile::Builder::new().prefix("pm").tempdir().unwrap();
    let podman = format!(
        "podman --root {}/podman-root --runroot {} --storage-driver vfs",
        c.b.dir.path().display(),
        run.path().display()
    );
    let out = sh(&format!("{podman} pull --tls-verify=false {name}"));
    assert_eq!(out.trim(), &id[7..]);
    let images = sh(&format!(
        "{podman} images --no-trunc --format '{{{{.ID}}}}'"
    ));
    assert!(images.contains(&id[7..]), "{images}");
}

/// Runs `berth ARGS` with a terminal as stdout (progress bars are drawn only there) and returns
/// everything it drew.
fn on_terminal(c: &Client, args: &[&str]) -> String {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    let ws = libc::winsize {
        ws_row: 40,
        ws_col: 160,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills two descriptors that we then own.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &ws,
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: both descriptors were just opened and are owned here only.
    let (mut master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let mut child = c
        .command()
        .args(args)
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once every writer is gone.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let status = child.wait().unwrap();
    let seen = reader.join().unwrap();
    assert!(status.success(), "{args:?}: {seen}");
    seen
}

#[test]
fn push_shows_bytes_and_ends_in_dockers_order() {
    let reg = Registry::berth(&[]);
    let c = Client::new();
    // One layer of 4 MiB of incompressible bytes: several byte-progress updates.
    let dir = tempfile::tempdir().unwrap();
    let mut noise = vec![0u8; 4 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(dir.path().join("weights.bin"), &noise).unwrap();
    let tar = dir.path().join("layer.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["-cf"])
        .arg(&tar)
        .arg("weights.bin")
        .status()
        .unwrap();
    assert!(st.success());
    let name = format!("{}/progress/model:v1", reg.addr);
    c.ok(&["import", tar.to_str().unwrap(), &name]);
    let shown = on_terminal(&c, &["push", &name]);
    // Byte counts while pushing, as a bar with done/total.
    assert!(shown.contains("Pushing ["), "{shown}");
    assert!(shown.contains("/4.00 MiB"), "{shown}");
    // The final screen: layer lines first, then the digest line.
    let pushed = shown.rfind("Pushed").expect("a Pushed line");
    let digest = shown.rfind("v1: digest: sha256:").expect("the digest line");
    assert!(pushed < digest, "{shown}");
}
