//! `cp`, `commit`, `diff`, `export`, `stats`, `system prune`/`df`, `rmi` against containers,
//! and restart policies: real containers (root, namespaces, cgroups), busybox fixture.

mod common;

use common::Berth;
use std::path::Path;
use std::time::Duration;

fn tmp(b: &Berth, name: &str) -> std::path::PathBuf {
    let p = b.dir.path().join(name);
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn cp_both_ways_stopped_and_running() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    b.ok(&["create", "--name", "cc", "busybox", "sleep", "60"]);
    let host = tmp(&b, "host");
    // host -> stopped container: a file, a directory, into an existing dir and as a new name.
    std::fs::write(host.join("f.txt"), "hello").unwrap();
    std::fs::create_dir_all(host.join("d/sub")).unwrap();
    std::fs::write(host.join("d/sub/x"), "x").unwrap();
    b.ok(&["cp", host.join("f.txt").to_str().unwrap(), "cc:/tmp/"]);
    b.ok(&[
        "cp",
        host.join("f.txt").to_str().unwrap(),
        "cc:/tmp/renamed",
    ]);
    b.ok(&["cp", host.join("d").to_str().unwrap(), "cc:/tmp"]);
    b.ok(&["cp", host.join("d").to_str().unwrap(), "cc:/newdir"]);
    // ... and back out, stopped.
    let out = tmp(&b, "out");
    b.ok(&["cp", "cc:/tmp/f.txt", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("f.txt")).unwrap(), "hello");
    b.ok(&["cp", "cc:/tmp/renamed", out.join("r2").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("r2")).unwrap(), "hello");
    b.ok(&["cp", "cc:/newdir", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("newdir/sub/x")).unwrap(),
        "x"
    );
    b.ok(&["cp", "cc:/tmp/d/.", out.join("contents").to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("contents/sub/x")).unwrap(),
        "x"
    );
    // The stopped container's rootfs is not left mounted.
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "cc"]).trim().to_string();
    let merged = b.root().join("containers").join(&id).join("rootfs");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(merged.to_str().unwrap()),
        "rootfs left mounted"
    );
    // Running: what we copied in is there; what the container writes comes out.
    b.ok(&["start", "cc"]);
    assert_eq!(
        b.ok(&["exec", "cc", "cat", "/tmp/f.txt", "/tmp/d/sub/x"]),
        "hellox"
    );
    b.ok(&["exec", "cc", "sh", "-c", "echo made-inside > /tmp/in.txt"]);
    b.ok(&["cp", "cc:/tmp/in.txt", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("in.txt")).unwrap(),
        "made-inside\n"
    );
    std::fs::write(host.join("live"), "live").unwrap();
    b.ok(&["cp", host.join("live").to_str().unwrap(), "cc:/live"]);
    assert_eq!(b.ok(&["exec", "cc", "cat", "/live"]), "live");
    // Owners: root in the container without -a.
    assert_eq!(
        b.ok(&["exec", "cc", "stat", "-c", "%u:%g", "/live"]).trim(),
        "0:0"
    );
    // tar streams both ways.
    let t = b.command().args(["cp", "cc:/tmp/d", "-"]).output().unwrap();
    assert!(t.status.success());
    let mut ar = tar::Archive::new(&t.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"d/sub/x".to_string()), "{names:?}");
    let mut tarball = Vec::new();
    {
        let mut bld = tar::Builder::new(&mut tarball);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        bld.append_data(&mut h, "fromtar.txt", &b"tar"[..]).unwrap();
        bld.finish().unwrap();
    }
    let mut child = b
        .command()
        .args(["cp", "-", "cc:/tmp"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&tarball).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(b.ok(&["exec", "cc", "cat", "/tmp/fromtar.txt"]), "tar");
    // Errors.
    let (c, _, err) = b.code(&["cp", "cc:/nope", out.to_str().unwrap()]);
    assert_eq!(c, 1);
    assert!(
        err.contains("Could not find the file /nope in container cc"),
        "{err}"
    );
    let (c, _, err) = b.code(&["cp", "nosuch:/x", out.to_str().unwrap()]);
    assert_eq!(c, 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    b.ok(&["rm", "-f", "cc"]);
}

#[test]
fn cp_hostile_symlinks_stay_inside() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    b.ok(&["run", "--name", "hh", "busybox", "sh", "-c",
        "ln -s / /escape && ln -s ../../../etc /x && mkdir -p /deep/a && ln -s ../../../../../.. /deep/a/up && echo container-passwd > /etc/passwd-marker"]);
    let out = tmp(&b, "out");
    // Reads through the links see the container's files, never the host's.
    b.ok(&[
        "cp",
        "hh:/escape/etc/passwd",
        out.join("p1").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("p1")).unwrap(),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    );
    b.ok(&[
        "cp",
        "hh:/x/passwd-marker",
        out.join("p2").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("p2")).unwrap(),
        "container-passwd\n"
    );
    b.ok(&[
        "cp",
        "hh:/deep/a/up/etc/passwd-marker",
        out.join("p3").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("p3")).unwrap(),
        "container-passwd\n"
    );
    b.ok(&[
        "cp",
        "hh:/../../../../etc/passwd-marker",
        out.join("p4").to_str().unwrap(),
    ]);
    // Without -L the link itself is copied; with -L its target, inside the container.
    b.ok(&["cp", "hh:/x", out.join("link").to_str().unwrap()]);
    assert_eq!(
        std::fs::read_link(out.join("link")).unwrap(),
        Path::new("../../../etc")
    );
    b.ok(&["cp", "-L", "hh:/x", out.join("followed").to_str().unwrap()]);
    assert!(out.join("followed/passwd-marker").exists());
    // Writes through the links land inside the container's root.
    let marker = format!("berth-cp-escape-{}", std::process::id());
    let host = tmp(&b, "host");
    std::fs::write(host.join(&marker), "pwned").unwrap();
    for dst in [
        "hh:/escape/tmp/",
        "hh:/x/",
        "hh:/deep/a/up/tmp/",
        "hh:/../../tmp/",
    ] {
        b.ok(&["cp", host.join(&marker).to_str().unwrap(), dst]);
    }
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "escaped to the host's /tmp"
    );
    assert!(
        !Path::new("/etc").join(&marker).exists(),
        "escaped to the host's /etc"
    );
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "hh"]).trim().to_string();
    let upper = b.root().join("containers").join(&id).join("upper");
    assert!(upper.join("tmp").join(&marker).exists());
    assert!(upper.join("etc").join(&marker).exists());
    // A tar stream with hostile names cannot climb out either.
    let mut tarball = Vec::new();
    {
        let mut bld = tar::Builder::new(&mut tarball);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        bld.append_link(&mut h, "evil", "/").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        bld.append_data(&mut h, format!("evil/tmp/{marker}-tar"), &b"pwned"[..])
            .unwrap();
        bld.finish().unwrap();
    }
    let mut child = b
        .command()
        .args(["cp", "-", "hh:/tmp"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&tarball).unwrap();
    let _ = child.wait().unwrap();
    assert!(!Path::new("/tmp").join(format!("{marker}-tar")).exists());
    b.ok(&["rm", "hh"]);
}

#[test]
fn commit_diff_export() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    b.ok(&[
        "run",
        "--name",
        "ww",
        "busybox",
        "sh",
        "-c",
        "echo new > /added && rm /bin/vi && mkdir /tmp/t && echo c > /etc/passwd",
    ]);
    let diff = b.ok(&["diff", "ww"]);
    for line in [
        "A /added",
        "D /bin/vi",
        "C /bin",
        "C /etc",
        "C /etc/passwd",
        "C /tmp",
        "A /tmp/t",
    ] {
        assert!(
            diff.lines().any(|l| l == line),
            "missing {line:?} in\n{diff}"
        );
    }
    assert!(
        !diff.contains("/etc/hosts") && !diff.contains("/proc"),
        "{diff}"
    );
    let id = b.ok(&[
        "commit",
        "-m",
        "a message",
        "-a",
        "someone",
        "-c",
        "ENV FOO=bar",
        "ww",
        "committed:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "committed:v1",
            "sh",
            "-c",
            "cat /added; echo $FOO; test -e /bin/vi || echo gone"
        ]),
        "new\nbar\ngone\n"
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Author}} {{.Comment}}", "committed:v1"])
            .trim(),
        "someone a message"
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{len .RootFS.Layers}}", "committed:v1"])
            .trim(),
        "2"
    );
    // A running container, paused while committing.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "rr",
        "busybox",
        "sh",
        "-c",
        "echo live > /live; sleep 60",
    ]);
    common::wait_for("the container's file", Duration::from_secs(20), || {
        b.code(&["exec", "rr", "test", "-e", "/live"]).0 == 0
    });
    b.ok(&["commit", "rr", "committed:live"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Status}}", "rr"]).trim(),
        "running"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "committed:live", "cat", "/live"]),
        "live\n"
    );
    b.ok(&["commit", "--pause=false", "rr"]);
    // export: the merged filesystem of a stopped and of a running container.
    let out = tmp(&b, "exp");
    let f = out.join("w.tar");
    b.ok(&["export", "-o", f.to_str().unwrap(), "ww"]);
    let mut ar = tar::Archive::new(std::fs::File::open(&f).unwrap());
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"added".to_string()));
    assert!(names.contains(&"bin/busybox".to_string()));
    assert!(!names.contains(&"bin/vi".to_string()));
    let t = b.command().args(["export", "rr"]).output().unwrap();
    assert!(t.status.success());
    let mut ar = tar::Archive::new(&t.stdout[..]);
    assert!(ar
        .entries()
        .unwrap()
        .any(|e| e.unwrap().path().unwrap().display().to_string() == "live"));
    b.ok(&["rm", "-f", "rr", "ww"]);
}

#[test]
fn system_df_and_prune() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    b.import_busybox("other");
    b.ok(&["tag", "other", "third"]);
    b.ok(&[
        "run", "--name", "s1", "--label", "keep=yes", "busybox", "true",
    ]);
    b.ok(&["run", "--name", "s2", "busybox", "sh", "-c", "echo x > /x"]);
    b.ok(&["run", "-d", "--name", "up", "busybox", "sleep", "60"]);
    let df = b.ok(&["system", "df"]);
    let lines: Vec<&str> = df.lines().collect();
    assert!(
        lines[0].starts_with("TYPE")
            && lines[0].contains("TOTAL")
            && lines[0].contains("RECLAIMABLE"),
        "{df}"
    );
    assert!(
        lines[2].starts_with("Containers") && lines[2].split_whitespace().nth(1) == Some("3"),
        "{df}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Local Volumes"))
            && lines.iter().any(|l| l.starts_with("Build Cache"))
    );
    assert!(b
        .ok(&["system", "df", "-v"])
        .contains("Containers space usage:"));
    // container prune with a label filter keeps the others.
    let out = b.ok(&["container", "prune", "-f", "--filter", "label=keep=yes"]);
    assert!(
        out.contains("Deleted Containers:") && out.contains("Total reclaimed space:"),
        "{out}"
    );
    assert_eq!(b.code(&["inspect", "s1"]).0, 1);
    assert_eq!(b.code(&["inspect", "s2"]).0, 0);
    // Without -f, "no" keeps everything.
    let mut child = b
        .command()
        .args(["system", "prune"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("WARNING! This will remove:"));
    assert_eq!(b.code(&["inspect", "s2"]).0, 0);
    let out = b.ok(&["system", "prune", "-a", "-f"]);
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(b.code(&["inspect", "s2"]).0, 1);
    assert_eq!(b.code(&["inspect", "up"]).0, 0, "a running container stays");
    assert_eq!(
        b.code(&["image", "inspect", "busybox"]).0,
        0,
        "an image in use stays"
    );
    assert_eq!(
        b.code(&["image", "inspect", "third"]).0,
        1,
        "an unused image goes with -a"
    );
    b.ok(&["rm", "-f", "up"]);
}

#[test]
fn rmi_running_vs_stopped() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    let id = b.import_busybox("img2");
    b.ok(&["run", "-d", "--name", "ru", "img2", "sleep", "60"]);
    for args in [vec!["rmi", id.as_str()], vec!["rmi", "-f", id.as_str()]] {
        let (c, _, err) = b.code(&args);
        assert_eq!(c, 1);
        assert!(
            err.contains("(cannot be forced) - image is being used by running container"),
            "{err}"
        );
    }
    b.ok(&["rm", "-f", "ru"]);
    b.ok(&["run", "--name", "st", "img2", "true"]);
    let (c, _, err) = b.code(&["rmi", &id]);
    assert_eq!(c, 1);
    assert!(
        err.contains("(must be forced) - image is being used by stopped container"),
        "{err}"
    );
    b.ok(&["rmi", "-f", &id]);
    b.ok(&["rm", "st"]);
}

/// Runs berth with `runroot` instead of the test's own run root.
fn with_runroot(b: &Berth, runroot: &Path, args: &[&str]) -> std::process::Output {
    b.command()
        .env("BERTH_RUNROOT", runroot)
        .args(args)
        .output()
        .unwrap()
}

fn ok_with_runroot(b: &Berth, runroot: &Path, args: &[&str]) -> String {
    let out = with_runroot(b, runroot, args);
    assert!(
        out.status.success(),
        "berth {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Cgroup directories of container `id` (`/berth/<id>` in any hierarchy).
fn cgroups_of(id: &str) -> Vec<std::path::PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut found = Vec::new();
    let mut dirs = vec![base.to_path_buf()];
    dirs.extend(common::list(base));
    for d in dirs {
        let p = d.join("berth").join(id);
        if p.exists() {
            found.push(p);
        }
    }
    found
}

#[test]
fn long_runroot_keeps_runtime_state_inside() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    // Far longer than a unix socket path may be (108 bytes).
    let runroot = b.dir.path().join("r".repeat(90)).join("s".repeat(90));
    std::fs::create_dir_all(&runroot).unwrap();
    let outside = || common::list(Path::new("/run/berth-rt"));
    let before = outside();
    let mut ids = Vec::new();
    let runc = std::process::Command::new("runc")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let mut cases: Vec<Vec<&str>> = vec![vec!["run", "-d", "--name", "lb"]];
    if runc {
        // An external runtime with a pty: its console socket lives in the state root too.
        cases.push(vec!["run", "-d", "-t", "--runtime", "runc", "--name", "lr"]);
    }
    for case in &cases {
        let name = case[case.len() - 1];
        let mut args = case.clone();
        args.extend(["busybox", "sleep", "60"]);
        let id = ok_with_runroot(&b, &runroot, &args).trim().to_string();
        assert_eq!(
            ok_with_runroot(&b, &runroot, &["exec", name, "echo", "in"]),
            "in\n"
        );
        let t = ok_with_runroot(&b, &runroot, &["exec", "-t", name, "echo", "tty"]);
        assert_eq!(t, "tty\r\n");
        assert!(
            runroot.join("runtime").join(&id).is_dir(),
            "the runtime's state is under the run root"
        );
        ids.push(id);
    }
    for case in &cases {
        ok_with_runroot(&b, &runroot, &["rm", "-f", case[case.len() - 1]]);
    }
    assert_eq!(outside(), before, "nothing new under /run/berth-rt");
    for id in &ids {
        assert!(!runroot.join("runtime").join(id).exists());
        assert_eq!(cgroups_of(id), Vec::<std::path::PathBuf>::new());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let here = b.dir.path().display().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&here)),
        "a mount of the test root is left:\n{mounts}"
    );
}

/// Imports an image holding nothing but busybox as `/bin/sh` (no `/etc`, `/proc`, `/dev`...).
fn import_bare(b: &Berth, name: &str) {
    let dir = tmp(b, "bare");
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for applet in ["sh", "cat", "sleep", "test"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let tar = dir.join("bare.tar");
    let st = std::process::Command::new("tar")
        .args(["--owner=0", "--group=0", "-C"])
        .arg(dir.join("rootfs"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    b.ok(&["import", "-c", "CMD [\"sh\"]", tar.to_str().unwrap(), name]);
}

/// The entries of the top layer of `image`, read from `save`.
fn top_layer_entries(b: &Berth, image: &str) -> Vec<String> {
    let layers = b.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", image]);
    let top = layers
        .rsplit("sha256:")
        .next()
        .unwrap()
        .trim_end_matches(|c: char| !c.is_ascii_hexdigit())
        .to_string();
    let saved = b.command().args(["save", image]).output().unwrap();
    assert!(saved.status.success());
    let mut ar = tar::Archive::new(&saved.stdout[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap() == Path::new("blobs/sha256").join(&top) {
            let mut layer = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut layer).unwrap();
            let mut l = tar::Archive::new(&layer[..]);
            return l
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect();
        }
    }
    panic!("layer {top} is not in the saved image");
}

fn tar_names(data: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(data);
    ar.entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .display()
                .to_string()
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

#[test]
fn diff_and_commit_leave_out_mount_points() {
    assert!(common::is_root("container"));
    let b = Berth::new();
    import_bare(&b, "bare");
    let data = tmp(&b, "data");
    let bind = format!("{}:/data", data.display());
    b.ok(&[
        "run",
        "--name",
        "mp",
        "-v",
        &bind,
        "bare",
        "sh",
        "-c",
        "echo hi > /f",
    ]);
    assert_eq!(b.ok(&["diff", "mp"]), "A /f\n");
    b.ok(&["commit", "mp", "bare:2"]);
    assert_eq!(top_layer_entries(&b, "bare:2"), vec!["f".to_string()]);
    assert_eq!(b.ok(&["run", "--rm", "bare:2", "cat", "/f"]), "hi\n");
    // export is the whole filesystem, the runtime's mount points included (as Docker's).
    let t = b.command().args(["export", "mp"]).output().unwrap();
    assert!(t.status.success());
    let names = tar_names(&t.stdout);
    for n in [
        "f",
        "bin/busybox",
        "data",
        "proc",
        "sys",
        "dev",
        "etc/hosts",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} not exported: {names:?}");
    }
    // A running container: its mount points are in use while diff and commit look.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "mr",
        "-v",
        &bind,
        "bare",
        "sh",
        "-c",
        "echo live > /g; sleep 60",
    ]);
    common::wait_for("the container's file", Duration::from_secs(20), || {
        b.code(&["exec", "mr", "test", "-e", "/g"]).0 == 0
    });
    assert_eq!(b.ok(&["diff", "mr"]), "A /g\n");
    b.ok(&["commit", "mr", "bare:3"]);
    assert_eq!(top_layer_entries(&b, "bare:3"), vec!["g".to_string()]);
    b.ok(&["rm", "-f", "mp", "mr"]);
}

/// Waits until no process of container `id` is left: its monitor (`<dir>/<id>` in its
/// arguments) and its exit hook (`__container-exited <id>`), which, still cleaning up after a
/// run, would also tear down the next start's network.
fn wait_exit_hooks(id: &str) {
    let running = || {
        common::list(Path::new("/proc")).iter().any(|p| {
            std::fs::read(p.join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(id))
                .unwrap_or(false)
        })
    };
    common::wait_for(
        "the container's monitor and exit hook",
        Duration::from_secs(20),
        || !running(),
    );
}

#[test]
fn start_attach_and_attach_stopped() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    let id = b
        .ok(&[
            "create",
            "--name",
            "sa",
            "busybox",
            "sh",
            "-c",
            "echo one; echo two >&2; exit 4",
        ])
        .trim()
        .to_string();
    // Twice: the second run shows its own output only (attached, not the log replayed).
    for _ in 0..2 {
        assert_eq!(
            b.code(&["start", "-a", "sa"]),
            (4, "one\n".to_string(), "two\n".to_string())
        );
        wait_exit_hooks(&id);
    }
    let (c, out, err) = b.code(&["attach", "sa"]);
    assert_eq!((c, out.as_str()), (1, ""));
    assert!(
        err.contains("You cannot attach to a stopped container, start it first"),
        "{err}"
    );
    b.ok(&["create", "--name", "sc", "busybox", "true"]);
    let (c, _, err) = b.code(&["attach", "sc"]);
    assert_eq!(c, 1);
    assert!(
        err.contains("You cannot attach to a stopped container"),
        "{err}"
    );
    // -i: stdin goes in, and nothing printed before it was read is lost.
    b.ok(&[
        "create",
        "-i",
        "--name",
        "si",
        "busybox",
        "sh",
        "-c",
        "echo first; cat; echo done >&2; exit 5",
    ]);
    let mut child = b
        .command()
        .args(["start", "-a", "-i", "si"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"input\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "first\ninput\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "done\n");
    // run -i of a command that prints and exits at once.
    for _ in 0..3 {
        assert_eq!(
            b.code(&[
                "run",
                "-i",
                "--rm",
                "busybox",
                "sh",
                "-c",
                "echo one; echo two >&2; exit 4"
            ]),
            (4, "one\n".to_string(), "two\n".to_string())
        );
    }
    // A paused container cannot be attached to either (Docker's wording).
    b.ok(&["run", "-d", "--name", "sp", "busybox", "sleep", "60"]);
    b.ok(&["pause", "sp"]);
    let (c, _, err) = b.code(&["attach", "sp"]);
    assert_eq!(c, 1);
    assert!(
        err.contains("You cannot attach to a paused container, unpause it first"),
        "{err}"
    );
    b.ok(&["rm", "-f", "sa", "sc", "si", "sp"]);
}

/// A running container that swaps every directory under /w for a symlink to a host path while
/// `cp` writes into it or reads from it cannot make berth change, read or write that host path:
/// ten rounds each way, the host file keeps its mode and content and the host directory stays
/// empty.
#[test]
fn cp_with_a_racing_container_leaves_the_host_alone() {
    use std::os::unix::fs::PermissionsExt;
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    let host = tmp(&b, "host");
    let secret = host.join("secret");
    std::fs::write(&secret, "secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
    let hdir = tmp(&b, "hostdir");
    std::fs::set_permissions(&hdir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let src = tmp(&b, "src");
    // Each file takes a while to write, so the container moves a directory away (berth keeps
    // writing into it through its descriptor) and plants the symlink while berth is busy below
    // it; the next entry's parent is then looked up again, through the symlink.
    for i in 0..8 {
        let d = src.join(format!("d{i}"));
        std::fs::create_dir_all(d.join("s")).unwrap();
        std::fs::write(d.join("f"), vec![b'f'; 1 << 20]).unwrap();
        std::fs::write(d.join("s/g"), "g").unwrap();
    }
    let script = format!(
        "mkdir -p /w /old; n=0; while :; do \
         for d in /w/*; do [ -d \"$d\" ] && [ ! -L \"$d\" ] && n=$((n+1)) && mv \"$d\" /old/$n && ln -s {s} \"$d\"; done; \
         for d in /w/*/*; do [ -d \"$d\" ] && [ ! -L \"$d\" ] && n=$((n+1)) && mv \"$d\" /old/$n && ln -s {h} \"$d\"; done; \
         done",
        s = secret.display(),
        h = hdir.display()
    );
    b.ok(&[
        "run", "-d", "--name", "racer", "busybox", "sh", "-c", &script,
    ]);
    let out = tmp(&b, "out");
    for round in 0..10 {
        // Either outcome is fine (the container may win the race): only the host matters.
        let _ = b.code(&["cp", src.to_str().unwrap(), &format!("racer:/w/r{round}")]);
        let _ = b.code(&[
            "cp",
            &format!("racer:/w/r{round}"),
            out.join(format!("r{round}")).to_str().unwrap(),
        ]);
    }
    b.ok(&["rm", "-f", "racer"]);
    let meta = std::fs::metadata(&secret).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o640,
        "host file chmodded"
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret\n");
    let meta = std::fs::metadata(&hdir).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o750,
        "host dir chmodded"
    );
    assert_eq!(
        std::fs::read_dir(&hdir).unwrap().count(),
        0,
        "written into the host directory"
    );
    assert_eq!(
        std::fs::read_dir(&host).unwrap().count(),
        1,
        "written beside the host file"
    );
}

/// A container holding a directory nested deeper than berth archives (1,024 levels; 2,000
/// here, as 30,000 would behave, which take minutes to remove): `export`, `cp` out of it and
/// `commit` fail with a clear error instead of overflowing the stack.
#[test]
fn a_very_deep_directory_is_refused_not_a_crash() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    let id = b
        .ok(&["create", "--name", "deep", "busybox", "true"])
        .trim()
        .to_string();
    // What `mkdir a; cd a` 2,000 times inside the container leaves in its upper dir.
    let upper = b.root().join("containers").join(&id).join("upper");
    let name = c"a";
    let open = |dir: i32, path: &std::ffi::CStr| {
        // SAFETY: a valid descriptor and NUL-terminated name; the result is checked.
        let fd = unsafe { libc::openat(dir, path.as_ptr(), libc::O_DIRECTORY | libc::O_CLOEXEC) };
        assert!(fd >= 0, "{}", std::io::Error::last_os_error());
        // SAFETY: fd was just opened and is owned here only.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let top = std::fs::File::open(&upper).unwrap();
    let mut fd = open(top.as_raw_fd(), c".");
    for _ in 0..2_000 {
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::mkdirat(fd.as_raw_fd(), name.as_ptr(), 0o755) },
            0
        );
        fd = open(fd.as_raw_fd(), name);
    }
    drop(fd);
    let out = tmp(&b, "out");
    for args in [
        vec!["export", "-o", "/dev/null", "deep"],
        vec!["cp", "deep:/a", out.to_str().unwrap()],
        vec!["commit", "deep", "deep-image"],
    ] {
        let (code, _, err) = b.code(&args);
        assert_eq!(code, 1, "berth {args:?}: {err}");
        assert!(
            err.contains("more than 1024 levels deep"),
            "berth {args:?}: {err}"
        );
    }
    b.ok(&["rm", "deep"]);
}

/// `commit` of a container holding a 1 GiB sparse file keeps its holes: the layer blob stays
/// small, and so does the file in the new image's unpacked layer.
#[test]
fn commit_keeps_sparse_files_sparse() {
    use std::os::unix::fs::{FileExt, MetadataExt};
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    let id = b
        .ok(&["create", "--name", "holes", "busybox", "true"])
        .trim()
        .to_string();
    // What `truncate -s 1G /big` and a write in the middle leave in the upper dir.
    let upper = b.root().join("containers").join(&id).join("upper");
    let size: u64 = 1 << 30;
    let f = std::fs::File::create(upper.join("big")).unwrap();
    f.set_len(size).unwrap();
    f.write_all_at(b"data", 300 << 20).unwrap();
    drop(f);
    let before = b.blobs();
    b.ok(&["commit", "holes", "holes-image"]);
    for blob in b.blobs().into_iter().filter(|p| !before.contains(p)) {
        let len = std::fs::metadata(&blob).unwrap().len();
        assert!(len < 1 << 20, "{} is {len} bytes", blob.display());
    }
    let mut found = false;
    for layer in b.layer_dirs() {
        if let Ok(m) = std::fs::metadata(layer.join("big")) {
            assert_eq!(m.len(), size);
            assert!(m.blocks() * 512 < 1 << 20, "holes filled in the layer");
            let mut buf = [0u8; 4];
            std::fs::File::open(layer.join("big"))
                .unwrap()
                .read_exact_at(&mut buf, 300 << 20)
                .unwrap();
            assert_eq!(&buf, b"data");
            found = true;
        }
    }
    assert!(found, "the committed layer holds /big");
    b.ok(&["rm", "holes"]);
}

/// `top` is dockerd's: the host's `ps` with the caller's arguments, the container's rows only;
/// `volume create` without a name gets Docker's 64 random hex digits from the engine.
#[test]
fn top_with_ps_arguments_and_anonymous_volume_names() {
    let b = Berth::with_busybox();
    let v1 = b.ok(&["volume", "create"]).trim().to_string();
    let v2 = b.ok(&["volume", "create"]).trim().to_string();
    for v in [&v1, &v2] {
        assert!(
            v.len() == 64 && v.bytes().all(|c| c.is_ascii_hexdigit()),
            "{v}"
        );
    }
    assert_ne!(v1, v2);
    b.ok(&["run", "-d", "--name", "tp", "busybox", "sleep", "1000"]);
    let out = b.ok(&["top", "tp", "-eo", "pid,comm"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("PID") && lines[0].contains("COMMAND"),
        "{out}"
    );
    assert_eq!(lines.len(), 2, "only the container's process: {out}");
    assert!(lines[1].contains("sleep"), "{out}");
    let (c, _, err) = b.code(&["top", "tp", "-eo", "comm"]);
    assert_eq!(c, 1);
    assert!(
        err.contains("Couldn't find PID field in ps output"),
        "{err}"
    );
    b.ok(&["kill", "tp"]);
    let (c, _, err) = b.code(&["top", "tp"]);
    assert_eq!(c, 1);
    assert!(err.contains("is not running"), "{err}");
    b.ok(&["rm", "-f", "tp"]);
}
