//! Image commands against a real store: import, images, inspect, tag, rmi, prune, history,
//! save/load round trips and what other tools make of our archives.

mod common;

use common::{busybox_tar, scratch_dir, sh, Berth};
use serde_json::Value;
use std::path::Path;

#[test]
fn import_lists_with_docker_columns() {
    let b = Berth::new();
    let id = b.import_busybox("busybox");
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import prints the full ID: {id}"
    );
    let out = b.ok(&["images"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{header}"
    );
    assert!(header.ends_with("SIZE"));
    let row = lines.next().unwrap();
    assert!(row.starts_with("busybox      latest    "), "{row}");
    assert!(row.contains(&id[7..19]));
    assert!(row.contains("MB"), "size column: {row}");
    assert_eq!(lines.next(), None);
    assert_eq!(b.ok(&["images", "-q"]).trim(), &id[7..19]);
    assert_eq!(b.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    assert!(b.staged_leftovers().is_empty());
}

#[test]
fn import_applies_changes_and_message() {
    let b = Berth::new();
    let tar = busybox_tar();
    b.ok(&[
        "import",
        "-c",
        "ENV A=1",
        "--change",
        "WORKDIR /app",
        "-c",
        "ENTRYPOINT [\"/bin/sh\", \"-c\"]",
        "-c",
        "EXPOSE 8080",
        "-c",
        "LABEL team=ml",
        "-m",
        "first import",
        tar.to_str().unwrap(),
        "ml/base:1.0",
    ]);
    let config: Value =
        serde_json::from_str(&b.ok(&["image", "inspect", "-f", "{{json .Config}}", "ml/base:1.0"]))
            .unwrap();
    assert_eq!(config["Env"][0], "A=1");
    assert_eq!(config["WorkingDir"], "/app");
    assert_eq!(config["Entrypoint"][1], "-c");
    assert!(config["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(config["Labels"]["team"], "ml");
    let history = b.ok(&["history", "ml/base:1.0"]);
    assert!(history.contains("first import"), "{history}");
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.Config.WorkingDir}} {{index .Config.Labels \"team\"}}",
            "ml/base:1.0"
        ])
        .trim(),
        "/app ml"
    );

    let (code, err) = b.fails(&["import", "-c", "FROM busybox", tar.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("FROM is not a valid change command"), "{err}");
}

#[test]
fn import_from_stdin_gzip_and_url() {
    let b = Berth::new();
    let tar = busybox_tar();
    let gz = scratch_dir().join(format!("bb-{}.tar.gz", std::process::id()));
    sh(&format!("gzip -1 -c {} > {}", tar.display(), gz.display()));
    let mut child = b
        .command()
        .args(["import", "-", "from-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::copy(
        &mut std::fs::File::open(&gz).unwrap(),
        child.stdin.as_mut().unwrap(),
    )
    .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let plain = b.import_busybox("plain");
    // Same content, so the same layer (diff ID) whatever the compression.
    let layers = |name: &str| b.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", name]);
    assert_eq!(layers("from-stdin"), layers("plain"));
    assert_eq!(b.layer_dirs().len(), 1, "identical layers are stored once");
    assert!(!plain.is_empty());

    // A URL: served by a one-shot HTTP server on 127.0.0.1.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = std::fs::read(&gz).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).unwrap();
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
    });
    let url = format!("http://127.0.0.1:{port}/busybox.tar.gz");
    b.ok(&["import", &url, "from-url"]);
    server.join().unwrap();
    assert!(b
        .ok(&["history", "from-url"])
        .contains("Imported from http://127.0.0.1"));
}

#[test]
fn tag_and_rmi_follow_docker() {
    let b = Berth::new();
    let id = b.import_busybox("busybox");
    b.ok(&["tag", "busybox", "busybox:v2"]);
    b.ok(&["tag", &id[7..19], "localhost:5000/team/busybox:v3"]);
    let tags = b.ok(&["inspect", "-f", "{{json .RepoTags}}", "busybox"]);
    assert_eq!(
        tags.trim(),
        r#"["busybox:latest","busybox:v2","localhost:5000/team/busybox:v3"]"#
    );

    // Removing one of several tags only untags.
    assert_eq!(b.ok(&["rmi", "busybox:v2"]).trim(), "Untagged: busybox:v2");
    // By ID with tags in two repositories: refused without -f.
    let (code, err) = b.fails(&["rmi", &id[7..19]]);
    assert_eq!(code, 1);
    assert!(
        err.contains("image is referenced in multiple repositories"),
        "{err}"
    );
    let out = b.ok(&["rmi", "-f", &id[7..19]]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(
        out.contains("Untagged: localhost:5000/team/busybox:v3"),
        "{out}"
    );
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert_eq!(b.ok(&["images", "-q"]), "");
    assert!(
        b.layer_dirs().is_empty(),
        "layers of a deleted image are removed"
    );
    assert!(b.blobs().is_empty(), "blobs of a deleted image are removed");

    let (code, err) = b.fails(&["rmi", "nothere"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such image: nothere"), "{err}");
    let (_, err) = b.fails(&["tag", "busybox", "x"]);
    assert!(err.contains("No such image"), "{err}");
    b.import_busybox("busybox");
    let (code, err) = b.fails(&["tag", "busybox", "Bad:Name"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid reference format"), "{err}");
}

#[test]
fn filters_formats_and_prune() {
    let b = Berth::new();
    let tar = busybox_tar();
    b.ok(&[
        "import",
        "-c",
        "LABEL stage=one",
        tar.to_str().unwrap(),
        "app:1",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    b.ok(&[
        "import",
        "-c",
        "LABEL stage=two",
        tar.to_str().unwrap(),
        "app:2",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    b.ok(&[
        "import",
        "-c",
        "LABEL stage=three",
        tar.to_str().unwrap(),
        "tool:1",
    ]);

    let names = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        full.extend_from_slice(args);
        b.ok(&full).lines().map(str::to_string).collect()
    };
    assert_eq!(names(&[]), vec!["tool:1", "app:2", "app:1"], "newest first");
    assert_eq!(
        names(&["--filter", "reference=app"]),
        vec!["app:2", "app:1"]
    );
    assert_eq!(names(&["app"]), vec!["app:2", "app:1"]);
    assert_eq!(names(&["--filter", "label=stage=two"]), vec!["app:2"]);
    assert_eq!(names(&["--filter", "label=stage"]).len(), 3);
    assert_eq!(names(&["--filter", "before=app:2"]), vec!["app:1"]);
    assert_eq!(names(&["--filter", "since=app:1"]), vec!["tool:1", "app:2"]);
    assert_eq!(names(&["--filter", "dangling=true"]), Vec::<String>::new());

    let json_line = b.ok(&["images", "--format", "{{json .}}", "tool"]);
    let v: Value = serde_json::from_str(json_line.trim()).unwrap();
    assert_eq!(v["Repository"], "tool");
    assert_eq!(v["Tag"], "1");
    assert!(v["CreatedSince"].as_str().unwrap().ends_with("ago"));
    let table = b.ok(&[
        "images",
        "--format",
        "table {{.Repository}}\t{{.ID}}",
        "tool",
    ]);
    assert!(
        table.starts_with("REPOSITORY   IMAGE ID\ntool         "),
        "{table}"
    );

    let (code, err) = b.fails(&["images", "--filter", "colour=red"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid filter 'colour'"), "{err}");
    let (code, _) = b.fails(&["images", "--format", "{{.Repository"]);
    assert_eq!(code, 1);

    // Moving a tag leaves the old image dangling; prune removes exactly that one.
    b.ok(&["tag", "tool:1", "app:1"]);
    let dangling = b.ok(&["images", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling.lines().count(), 1);
    let out = b.ok(&["image", "prune", "-f"]);
    assert!(
        out.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space: "), "{out}");
    // Like Docker, -q prints one line per tag: tool:1 and app:1 now share an image.
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 3);
    assert_eq!(b.ok(&["images", "-q", "--filter", "dangling=true"]), "");
    // Without -f the question is asked; anything but "y" keeps everything.
    let out = b.command().args(["image", "prune", "-a"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Are you sure you want to continue? [y/N]")
    );
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 3);
    let out = b.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: app:1"), "{out}");
    assert_eq!(b.ok(&["images", "-q"]), "");
    assert!(b.layer_dirs().is_empty() && b.blobs().is_empty());
}

#[test]
fn save_load_round_trip_and_peers_accept_the_archive() {
    let a = Berth::new();
    let id = a.import_busybox("busybox");
    a.ok(&["tag", "busybox", "registry.local:5000/ml/busybox:2"]);
    let archive = a.dir.path().join("images.tar");
    a.ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "busybox",
        "registry.local:5000/ml/busybox:2",
    ]);

    let b = Berth::new();
    let out = b.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert!(
        out.contains("Loaded image: registry.local:5000/ml/busybox:2"),
        "{out}"
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Id}}", "busybox"]).trim(),
        id,
        "the image ID survives the round trip"
    );
    // Loading again changes nothing and is fine.
    b.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 2);

    // Other tools read it: skopeo as a docker-archive and as an OCI layout.
    let inspect = sh(&format!(
        "skopeo inspect docker-archive:{}:busybox:latest",
        archive.display()
    ));
    let v: Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(v["Architecture"], "amd64");
    let oci = a.dir.path().join("oci.tar");
    sh(&format!(
        "skopeo copy --quiet docker-archive:{}:busybox:latest oci-archive:{}:busybox:latest",
        archive.display(),
        oci.display()
    ));
    // And we read what skopeo wrote (an OCI image layout).
    let c = Berth::new();
    let out = c.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert!(out.contains("Loaded image"), "{out}");
    // skopeo rewrites the configuration as OCI (a new image ID) but the layer is the same.
    let loaded = c.ok(&["images", "-q"]).trim().to_string();
    assert_eq!(
        c.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", &loaded]),
        a.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", "busybox"])
    );

    // save to a terminal-less stdout streams the archive.
    let out = a.command().args(["save", "busybox"]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout.len() > 1_000_000);
}

#[test]
fn load_from_stdin_streams_the_same_archive() {
    let a = Berth::new();
    let id = a.import_busybox("busybox");
    let archive = a.dir.path().join("images.tar");
    a.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    let b = Berth::new();
    let out = b
        .command()
        .arg("load")
        .stdin(std::fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Loaded image: busybox:latest"
    );
    assert_eq!(b.ok(&["inspect", "-f", "{{.Id}}", "busybox"]).trim(), id);
    assert!(b.staged_leftovers().is_empty());
    // A truncated stream is an error and leaves nothing behind.
    let bytes = std::fs::read(&archive).unwrap();
    let cut = a.dir.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let c = Berth::new();
    let out = c
        .command()
        .arg("load")
        .stdin(std::fs::File::open(&cut).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(c.ok(&["images", "-q"]), "");
    assert!(c.staged_leftovers().is_empty());
}

#[test]
fn podman_loads_what_we_save() {
    let a = Berth::new();
    let id = a.import_busybox("busybox");
    let archive = a.dir.path().join("images.tar");
    a.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    // A private podman store (vfs: no overlay mounts, nothing shared with the host's podman).
    // podman wants a short runroot path.
    let store = tempfile::Builder::new()
        .prefix("pod")
        .tempdir_in("/tmp")
        .unwrap();
    let podman = format!(
        "podman --root {0}/root --runroot {0}/run --storage-driver vfs",
        store.path().display()
    );
    let out = sh(&format!("{podman} load -i {}", archive.display()));
    assert!(
        out.contains("Loaded image: docker.io/library/busybox:latest"),
        "{out}"
    );
    let config = sh(&format!(
        "{podman} image inspect --format '{{{{.Id}}}}' busybox"
    ));
    assert_eq!(
        format!("sha256:{}", config.trim()),
        id,
        "podman sees the same image ID"
    );
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{podman} rmi -a -f >/dev/null 2>&1"))
        .status();
}

#[test]
fn the_write_ahead_log_stays_bounded() {
    // Every command is its own process; the log must still be folded back into the database
    // (a growing log slowed every later open: 1,000 imports made `image inspect` 10× slower).
    let b = Berth::new();
    let dir = b.dir.path().join("tiny");
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/hostname"), "tiny").unwrap();
    let tar = b.dir.path().join("tiny.tar");
    sh(&format!("tar -C {} -cf {} .", dir.display(), tar.display()));
    for i in 0..250 {
        b.ok(&[
            "import",
            "-c",
            &format!("LABEL n={i}"),
            tar.to_str().unwrap(),
            &format!("tiny:{i}"),
        ]);
    }
    let wal = std::fs::metadata(b.root().join("berth.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(wal < 8 << 20, "write-ahead log grew to {wal} bytes");
}

/// Runs `berth args` as `nobody` (uid/gid 65534, no supplementary groups).
fn as_nobody(b: &Berth, args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    b.command()
        .uid(65534)
        .gid(65534)
        .args(args)
        .output()
        .expect("running berth as nobody")
}

/// The store is root's alone (Docker keeps /var/lib/docker 0710): another user can neither
/// reach a layer or a container's root file system, nor read berth.db or a blob, nor run a
/// setuid binary an image carries; `berth` tells such a user that it needs root. Modes are
/// explicit (every command here runs under umask 000), and an older, open root is tightened by
/// the next command.
#[test]
fn store_is_unreachable_by_other_users() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    assert_eq!(
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() },
        0,
        "this test drops to nobody: run it as root"
    );
    let b = Berth::new();
    // A world-traversable parent: only the store's own modes may keep `nobody` out.
    std::fs::set_permissions(b.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let umask0 = |args: &[&str]| {
        let out = b.command().args(args).output_with_umask0();
        assert!(
            out.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    // An image whose /bin/id is a setuid-root busybox.
    let tar_path = scratch_dir().join(format!("suid-{}.tar", std::process::id()));
    {
        let mut t = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        t.append_data(&mut h, "bin/", std::io::empty()).unwrap();
        let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o4755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(busybox.len() as u64);
        t.append_data(&mut h, "bin/id", &busybox[..]).unwrap();
        t.finish().unwrap();
    }
    umask0(&["import", tar_path.to_str().unwrap(), "suid"]);
    let _ = std::fs::remove_file(&tar_path);
    let ctr = umask0(&["create", "suid", "/bin/id"]).trim().to_string();

    let root = b.root();
    let layer = b.layer_dirs().pop().expect("the image's layer");
    let suid = layer.join("bin/id");
    assert_ne!(
        std::fs::metadata(&suid).unwrap().mode() & 0o4000,
        0,
        "the layer keeps the setuid bit"
    );
    let private = |p: &Path, want: u32| {
        let mode = std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode, want, "{} is {mode:o}", p.display());
    };
    private(&root, 0o700);
    private(&b.runroot(), 0o700);
    private(&root.join("layers"), 0o700);
    private(&root.join("blobs"), 0o700);
    private(&root.join("tmp"), 0o700);
    private(&root.join("containers"), 0o700);
    private(&root.join("containers").join(&ctr), 0o700);
    for f in ["berth.db", "berth.db-wal", "berth.db-shm"] {
        if root.join(f).exists() {
            private(&root.join(f), 0o600);
        }
    }
    for blob in b.blobs() {
        private(&blob, 0o600);
    }

    // What nobody can do with it.
    let denied = |path: &Path| {
        let err = std::process::Command::new(path)
            .uid(65534)
            .gid(65534)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .expect_err(&format!("nobody ran {}", path.display()));
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    };
    denied(&suid);
    denied(&root.join("containers").join(&ctr).join("rootfs/bin/id"));
    let cat = std::process::Command::new("/bin/busybox")
        .arg("cat")
        .arg(root.join("berth.db"))
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!cat.status.success(), "nobody read berth.db");
    for args in [&["images"][..], &["ps", "-a"][..]] {
        let out = as_nobody(&b, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "berth {args:?} as nobody: {err}"
        );
        assert!(
            err.starts_with("Error: ") && err.contains("needs root") && !err.contains("os error"),
            "berth {args:?} as nobody: {err}"
        );
    }

    // A root an older berth left open is tightened by the next command.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        root.join("berth.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(root.join("layers"), std::fs::Permissions::from_mode(0o755)).unwrap();
    umask0(&["images"]);
    private(&root, 0o700);
    private(&root.join("berth.db"), 0o600);
    private(&root.join("layers"), 0o700);
    umask0(&["rm", &ctr]);
}

/// `Command::output` with the child's umask set to 000.
trait OutputWithUmask0 {
    fn output_with_umask0(&mut self) -> std::process::Output;
}

impl OutputWithUmask0 for std::process::Command {
    fn output_with_umask0(&mut self) -> std::process::Output {
        use std::os::unix::process::CommandExt;
        // SAFETY: umask is async-signal-safe and touches nothing but the child's own mask.
        unsafe {
            self.pre_exec(|| {
                libc::umask(0);
                Ok(())
            })
        };
        self.output().expect("running berth")
    }
}
