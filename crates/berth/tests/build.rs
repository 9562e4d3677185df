//! `berth build` end to end on the busybox fixture: every instruction, the cache, reproducible
//! image IDs on fresh roots, and the error messages.

mod common;

use common::Berth;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn ctx(b: &Berth, files: &[(&str, &str)]) -> PathBuf {
    let dir = b.dir.path().join(format!("ctx-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, content) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst).to_string()
}

fn build(b: &Berth, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["build", "--progress=plain"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    b.run(&args)
}

fn build_ok(b: &Berth, dir: &Path, extra: &[&str]) -> String {
    let out = build(b, dir, extra);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "build failed:\n{err}");
    err
}

fn inspect(b: &Berth, name: &str, fmt: &str) -> String {
    b.ok(&["image", "inspect", "-f", fmt, name])
        .trim()
        .to_string()
}

/// Runs `sh -c cmd` in `image` and returns stdout.
fn run_in(b: &Berth, image: &str, cmd: &str) -> String {
    b.ok(&["run", "--rm", image, "sh", "-c", cmd])
}

const SMALL: &str = "FROM busybox\nWORKDIR /app\nCOPY a.txt b.txt run.sh ./\nRUN sh run.sh > out.txt && wc -c out.txt\nCMD [\"cat\", \"/app/out.txt\"]\n";

fn small_ctx(b: &Berth) -> PathBuf {
    ctx(
        b,
        &[
            ("Dockerfile", SMALL),
            ("a.txt", "alpha\n"),
            ("b.txt", "1\n2\n3\n"),
            ("run.sh", "#!/bin/sh\ncat a.txt\nmd5sum b.txt\n"),
        ],
    )
}

#[test]
fn builds_runs_and_caches() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let dir = small_ctx(&b);
    let log = build_ok(&b, &dir, &["-t", "small"]);
    assert!(
        log.contains("[4/4] RUN sh run.sh > out.txt && wc -c out.txt"),
        "{log}"
    );
    assert!(log.contains(" out.txt"), "RUN output is streamed:\n{log}");
    assert!(
        log.contains("naming to docker.io/library/small:latest done"),
        "{log}"
    );
    let out = b.ok(&["run", "--rm", "small"]);
    assert!(out.starts_with("alpha\n"), "{out}");
    assert_eq!(
        inspect(&b, "small", "{{json .Config.Cmd}}"),
        r#"["cat","/app/out.txt"]"#
    );
    assert_eq!(inspect(&b, "small", "{{.Config.WorkingDir}}"), "/app");
    let id = inspect(&b, "small", "{{.Id}}");

    // Unchanged context: every step cached, same image.
    let log = build_ok(&b, &dir, &["-t", "small"]);
    assert_eq!(log.matches("CACHED").count(), 3, "{log}");
    assert_eq!(inspect(&b, "small", "{{.Id}}"), id);

    // A new mtime with the same content is still a hit.
    let now = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(dir.join("b.txt"))
        .unwrap()
        .set_modified(now)
        .unwrap();
    let log = build_ok(&b, &dir, &["-t", "small"]);
    assert_eq!(log.matches("CACHED").count(), 3, "{log}");

    // Changing one file re-runs COPY and RUN only.
    std::fs::write(dir.join("b.txt"), "changed\n").unwrap();
    let log = build_ok(&b, &dir, &["-t", "small"]);
    assert_eq!(log.matches("CACHED").count(), 1, "{log}");
    assert!(
        log.contains("WORKDIR /app\n#") && log.contains("CACHED"),
        "{log}"
    );
    assert_ne!(inspect(&b, "small", "{{.Id}}"), id);

    // -q prints the ID only; --no-cache re-runs everything.
    let iid = b.dir.path().join("iid");
    let out = b.ok(&[
        "build",
        "-q",
        "--no-cache",
        "--iidfile",
        iid.to_str().unwrap(),
        "-t",
        "small",
        dir.to_str().unwrap(),
    ]);
    let printed = out.trim();
    assert!(
        printed.starts_with("sha256:") && printed.len() == 71,
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), printed);
    assert!(
        b.staged_leftovers().is_empty(),
        "{:?}",
        b.staged_leftovers()
    );
}

#[test]
fn reproducible_on_fresh_roots() {
    // The same base image in both roots (an import's ID depends on its time).
    let first = Berth::new();
    first.import_busybox("busybox");
    let base = first.dir.path().join("busybox-image.tar");
    first.ok(&["save", "-o", base.to_str().unwrap(), "busybox"]);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let b = Berth::new();
        b.ok(&["load", "-i", base.to_str().unwrap()]);
        let dir = ctx(
            &b,
            &[
                (
                    "Dockerfile",
                    "FROM busybox\nWORKDIR /app\nCOPY . .\nRUN echo $SOURCE_DATE_EPOCH > epoch && mkdir -p d && echo x > d/f\nENV A=1\nCMD [\"sh\"]\n",
                ),
                ("x.txt", "x\n"),
                ("sub/y.txt", "y\n"),
            ],
        );
        let out = b
            .command()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "-q", dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert_eq!(inspect(&b, &id, "{{.Created}}"), "2023-11-14T22:13:20Z");
        assert_eq!(run_in(&b, &id, "cat /app/epoch"), "1700000000\n");
        ids.push(id);
    }
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn metadata_instructions() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let dir = ctx(
        &b,
        &[(
            "Dockerfile",
            r#"ARG BASE=busybox
FROM $BASE
ARG WHO=nobody
ENV GREETING="hello world" WHO2=$WHO
LABEL org.example.a=1 "b c"=d
EXPOSE 80 53/udp
USER 65534:65534
VOLUME /data
STOPSIGNAL SIGINT
SHELL ["/bin/sh", "-ec"]
HEALTHCHECK --interval=5s --retries=2 CMD true
ONBUILD USER root
ONBUILD RUN echo triggered > /onbuild
ENTRYPOINT ["/bin/echo"]
CMD ["hi"]
MAINTAINER someone
"#,
        )],
    );
    build_ok(
        &b,
        &dir,
        &[
            "-t",
            "meta",
            "--build-arg",
            "WHO=me",
            "--label",
            "extra=yes",
        ],
    );
    let f = |fmt| inspect(&b, "meta", fmt);
    assert!(f("{{json .Config.Env}}").contains("\"GREETING=hello world\""));
    assert!(f("{{json .Config.Env}}").contains("\"WHO2=me\""));
    assert_eq!(f("{{index .Config.Labels \"org.example.a\"}}"), "1");
    assert_eq!(f("{{index .Config.Labels \"b c\"}}"), "d");
    assert_eq!(f("{{index .Config.Labels \"extra\"}}"), "yes");
    assert_eq!(
        f("{{json .Config.ExposedPorts}}"),
        r#"{"53/udp":{},"80/tcp":{}}"#
    );
    assert_eq!(f("{{.Config.User}}"), "65534:65534");
    assert_eq!(f("{{json .Config.Volumes}}"), r#"{"/data":{}}"#);
    assert_eq!(f("{{.Config.StopSignal}}"), "SIGINT");
    assert_eq!(f("{{json .Config.Entrypoint}}"), r#"["/bin/echo"]"#);
    assert_eq!(f("{{json .Config.Cmd}}"), r#"["hi"]"#);
    assert_eq!(f("{{json .Config.Shell}}"), r#"["/bin/sh","-ec"]"#);
    assert!(f("{{json .Config.Healthcheck}}").contains("CMD-SHELL"));
    assert!(f("{{json .Config.OnBuild}}").contains("triggered"));
    assert_eq!(f("{{.Author}}"), "someone");
    assert_eq!(b.ok(&["run", "--rm", "meta"]), "hi\n");

    // ONBUILD triggers run in the child build.
    let child = ctx(&b, &[("Dockerfile", "FROM meta\nRUN cat /onbuild\n")]);
    build_ok(&b, &child, &["-t", "child"]);
    assert_eq!(
        b.ok(&["run", "--rm", "--entrypoint", "cat", "child", "/onbuild"]),
        "triggered\n"
    );
}

#[test]
fn copy_and_add_semantics() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let dir = ctx(
        &b,
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY src /dst/\nCOPY *.txt /txt/\nCOPY --chown=65534:65534 --chmod=0600 one.txt /owned\nCOPY one.txt /renamed.txt\nADD arch.tar /unpacked/\nCOPY <<EOF /inline.txt\nhello $HOSTNAME\nEOF\nCOPY link /link-target\nRUN ls /dst /txt /unpacked && stat -c '%u:%g %a' /owned\n",
            ),
            ("src/a", "a"),
            ("src/deep/b", "b"),
            ("one.txt", "1"),
            ("two.txt", "2"),
            ("ignored.txt", "nope"),
            (".dockerignore", "ignored.txt\n"),
        ],
    );
    // A tar to extract, and a symlink that points outside the context.
    let t = dir.join("arch");
    std::fs::create_dir_all(t.join("inner")).unwrap();
    std::fs::write(t.join("inner/f"), "from tar").unwrap();
    common::sh(&format!(
        "tar -C {} -cf {} inner",
        t.display(),
        dir.join("arch.tar").display()
    ));
    std::fs::remove_dir_all(&t).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("link")).unwrap();
    let log = build(&b, &dir, &["-t", "cp"]);
    let err = String::from_utf8_lossy(&log.stderr);
    // The link resolves inside the context (to /etc/hostname there), which does not exist.
    assert!(!log.status.success());
    assert!(err.contains("link"), "{err}");
    std::fs::remove_file(dir.join("link")).unwrap();
    std::fs::write(dir.join("real"), "inside").unwrap();
    std::os::unix::fs::symlink("real", dir.join("link")).unwrap();
    let log = build_ok(&b, &dir, &["-t", "cp"]);
    assert!(log.contains("65534:65534 600"), "{log}");
    let ls = run_in(
        &b,
        "cp",
        "cat /dst/a /dst/deep/b; echo; ls /txt; cat /renamed.txt /unpacked/inner/f /link-target; cat /inline.txt",
    );
    assert_eq!(ls, "ab\none.txt\ntwo.txt\n1from tarinsidehello \n");
}

#[test]
fn multi_stage_target_and_skipped_stages() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let dir = ctx(
        &b,
        &[(
            "Dockerfile",
            "FROM busybox AS builder\nRUN echo built > /artifact\n\nFROM busybox AS broken\nRUN exit 3\n\nFROM scratch AS final\nCOPY --from=builder /artifact /artifact\nCOPY --from=0 /bin/busybox /bin/busybox\nCOPY --from=busybox /etc/passwd /etc/passwd\nCMD [\"/bin/busybox\", \"cat\", \"/artifact\"]\n\nFROM builder AS other\nRUN echo other\n",
        )],
    );
    let log = build_ok(&b, &dir, &["--target", "final", "-t", "final"]);
    assert!(!log.contains("exit 3"), "unneeded stage built:\n{log}");
    assert!(!log.contains("echo other"), "{log}");
    assert!(
        log.contains("[builder 2/2] RUN echo built > /artifact"),
        "{log}"
    );
    assert_eq!(b.ok(&["run", "--rm", "final"]), "built\n");
    let (code, err) = b.fails(&["build", "--target", "nope", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("target stage \"nope\" could not be found"),
        "{err}"
    );
}

#[test]
fn errors_name_the_problem() {
    let b = Berth::new();
    b.import_busybox("busybox");
    // Parse error with the line.
    let dir = ctx(
        &b,
        &[(
            "Dockerfile",
            "FROM busybox\nWORKDIR /app\nCOPY requirements.txt.\n",
        )],
    );
    let (code, err) = b.fails(&["build", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("COPY requirements.txt ."), "{err}");

    // Missing source, and one that .dockerignore excludes.
    let dir = ctx(
        &b,
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY secret.txt missing.txt /\n",
            ),
            ("secret.txt", "s"),
            (".dockerignore", "secret.txt\n"),
        ],
    );
    let (code, err) = b.fails(&["build", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("secret.txt") && err.contains(".dockerignore"),
        "{err}"
    );
    let canon = dir.canonicalize().unwrap();
    assert!(err.contains(canon.to_str().unwrap()), "{err}");
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nCOPY missing.txt /\n").unwrap();
    let (_, err) = b.fails(&["build", dir.to_str().unwrap()]);
    assert!(
        err.contains("missing.txt") && err.contains("not found"),
        "{err}"
    );

    // A failing RUN: Docker's message and exit code, the output's last lines.
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN echo about to fail && exit 7\n",
    )
    .unwrap();
    let (code, err) = b.fails(&["build", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "The command '/bin/sh -c echo about to fail && exit 7' returned a non-zero code: 7"
        ),
        "{err}"
    );
    assert!(err.contains("about to fail"), "{err}");
    // Unknown image.
    std::fs::write(dir.join("Dockerfile"), "FROM localhost:1/nothing-here\n").unwrap();
    let (code, err) = b.fails(&["build", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("nothing-here"), "{err}");
    assert!(b.staged_leftovers().is_empty());
}

#[test]
fn network_none_and_secrets_and_cache_mounts() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let secret = b.dir.path().join("token");
    std::fs::write(&secret, "s3cr3t").unwrap();
    let dir = ctx(
        &b,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --network=none ip link | grep -c ': ' > /links\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /copied\nRUN --mount=type=cache,target=/cache echo x >> /cache/n && wc -l < /cache/n > /count\nRUN --mount=type=tmpfs,target=/scratch touch /scratch/x\n",
        )],
    );
    build_ok(
        &b,
        &dir,
        &[
            "-t",
            "m",
            "--secret",
            &format!("id=tok,src={}", secret.display()),
        ],
    );
    assert_eq!(run_in(&b, "m", "cat /links"), "1\n");
    assert_eq!(run_in(&b, "m", "cat /copied"), "s3cr3t");
    assert_eq!(run_in(&b, "m", "cat /count"), "1\n");
    assert_eq!(
        run_in(&b, "m", "ls /scratch /cache 2>/dev/null | wc -l"),
        "0\n"
    );
    // The cache mount persists across builds.
    build_ok(
        &b,
        &dir,
        &[
            "--no-cache",
            "-t",
            "m",
            "--secret",
            &format!("id=tok,src={}", secret.display()),
        ],
    );
    assert_eq!(run_in(&b, "m", "cat /count"), "2\n");
}

#[test]
fn prune_and_gc_keep_the_cache_consistent() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let dir = small_ctx(&b);
    build_ok(&b, &dir, &["-t", "small"]);
    let layers = b.layer_dirs().len();
    // Removing the image keeps the layers the cache names; a rebuild is all cached.
    b.ok(&["rmi", "small"]);
    assert_eq!(b.layer_dirs().len(), layers);
    let log = build_ok(&b, &dir, &["-t", "small"]);
    assert_eq!(log.matches("CACHED").count(), 3, "{log}");
    // Without --all only dangling entries go: these hold the image's layers.
    let out = b.ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Deleted build cache objects: 0"), "{out}");
    b.ok(&["rmi", "small"]);
    let out = b.ok(&["builder", "prune", "-af"]);
    assert!(out.contains("Deleted build cache objects: 3"), "{out}");
    assert_eq!(b.layer_dirs().len(), 1, "only busybox's layer is left");
    let log = build_ok(&b, &dir, &["-t", "small"]);
    assert_eq!(log.matches("CACHED").count(), 0, "{log}");
}

#[test]
fn dockerfile_from_stdin_and_f_flag() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let mut child = b
        .command()
        .args(["build", "-q", "-t", "stdin", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM busybox\nRUN echo from-stdin > /f\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(run_in(&b, "stdin", "cat /f"), "from-stdin\n");
    let dir = ctx(
        &b,
        &[
            ("other.Dockerfile", "FROM busybox\nCOPY x /x\n"),
            ("other.Dockerfile.dockerignore", "x\n"),
            ("x", "x"),
        ],
    );
    let f = dir.join("other.Dockerfile");
    let (_, err) = b.fails(&["build", "-f", f.to_str().unwrap(), dir.to_str().unwrap()]);
    assert!(err.contains("other.Dockerfile.dockerignore"), "{err}");
}

#[test]
fn run_heredocs_run_as_buildkit_runs_them() {
    let b = Berth::with_busybox();
    // A bare heredoc is the shell's script; one with a shebang is executed as a file; a command
    // reading a heredoc gets it on stdin; several heredocs on one line; `<<-` strips tabs.
    let df = "FROM busybox\n\
RUN <<EOF\n\
echo bare > /bare\n\
echo \"$0\" > /bare-shell\n\
mkdir -p /made/by/heredoc\n\
EOF\n\
RUN <<EOF\n\
#!/bin/sh -e\n\
echo \"shebang $0\" > /shebang\n\
EOF\n\
RUN sh <<'EOF'\n\
x=interp; echo \"$x\" > /interp\n\
EOF\n\
RUN <<FILE1 cat > /file1 && <<FILE2 cat > /file2\n\
first\n\
FILE1\n\
second\n\
FILE2\n\
RUN <<-EOF\n\
\techo chomped > /chomped\n\
\tEOF\n";
    let dir = ctx(&b, &[("Dockerfile", df)]);
    let log = build_ok(&b, &dir, &["-t", "hd"]);
    assert!(log.contains("RUN <<EOF (echo bare > /bare...)"), "{log}");
    assert_eq!(run_in(&b, "hd", "cat /bare /bare-shell"), "bare\n/bin/sh\n");
    assert_eq!(
        run_in(&b, "hd", "test -d /made/by/heredoc && echo ok"),
        "ok\n"
    );
    assert_eq!(run_in(&b, "hd", "cat /shebang"), "shebang /dev/pipes/EOF\n");
    // The script file was a mount: nothing of it is left in the image.
    assert_eq!(
        run_in(&b, "hd", "ls -A /dev/pipes 2>/dev/null | wc -l"),
        "0\n"
    );
    assert_eq!(run_in(&b, "hd", "cat /interp"), "interp\n");
    assert_eq!(run_in(&b, "hd", "cat /file1 /file2"), "first\nsecond\n");
    assert_eq!(run_in(&b, "hd", "cat /chomped"), "chomped\n");
    let hist = b.ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", "hd"]);
    assert!(
        hist.contains("RUN /bin/sh -c echo bare > /bare"),
        "history records the script:\n{hist}"
    );

    // The body is part of the cache key: a changed shebang script is run again.
    let df2 = df.replace("echo \"shebang $0\"", "echo \"changed $0\"");
    std::fs::write(dir.join("Dockerfile"), df2).unwrap();
    build_ok(&b, &dir, &["-t", "hd"]);
    assert_eq!(run_in(&b, "hd", "cat /shebang"), "changed /dev/pipes/EOF\n");
}

/// splitmix64: a small seeded generator, so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn set_mtime(p: &Path, secs: u64) {
    std::fs::File::open(p)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap();
}

/// Over a random (seeded: `BERTH_TEST_SEED` replays one) sequence of builds in one root —
/// with and without `SOURCE_DATE_EPOCH`, with build args, `--no-cache`, edits of the context's
/// contents, modes and mtimes, git commits — every build gives exactly the image a `--no-cache` build of the
/// same inputs gives: the cache never hands back a layer other inputs made.
#[test]
fn cached_builds_equal_uncached_builds() {
    let seed: u64 = std::env::var("BERTH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261203);
    let mut rng = Rng(seed);
    let b = Berth::with_busybox();
    // The reference root builds everything without cache, from the same base image (an
    // import's ID depends on its time, so it is saved and loaded).
    let reference = Berth::new();
    let base = b.dir.path().join("busybox-image.tar");
    b.ok(&["save", "-o", base.to_str().unwrap(), "busybox"]);
    reference.ok(&["load", "-i", base.to_str().unwrap()]);
    let df = "FROM busybox\nARG X\nWORKDIR /app\nCOPY requirements.txt .\nRUN wc -l requirements.txt > /app/count && echo \"x=$X\" >> /app/count\nCOPY . .\nCMD [\"cat\", \"/app/count\"]\n";
    let dir = ctx(
        &b,
        &[
            ("Dockerfile", df),
            ("requirements.txt", "numpy==1.26.4\n"),
            ("train.py", "print('train')\n"),
            ("data/a.csv", "1,2\n"),
            (".dockerignore", ".git\n"),
        ],
    );
    // A git work tree: a commit moves the default epoch's stamp (HEAD's time), not its layers.
    let git = |args: &[&str], date: &str| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(&dir)
            .env("GIT_AUTHOR_NAME", "a")
            .env("GIT_AUTHOR_EMAIL", "a@example.com")
            .env("GIT_COMMITTER_NAME", "c")
            .env("GIT_COMMITTER_EMAIL", "c@example.com")
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &dir)
            .output()
            .expect("running git (scripts/setup.sh installs it)");
        assert!(out.status.success(), "git {args:?}");
    };
    git(&["init", "-q"], "@1600000000 +0000");
    git(&["add", "."], "@1600000000 +0000");
    git(&["commit", "-q", "-m", "0"], "@1600000000 +0000");
    // Start with mtimes before every epoch used, so they are part of the layers.
    for f in [
        ".dockerignore",
        "Dockerfile",
        "requirements.txt",
        "train.py",
        "data/a.csv",
        "data",
        "",
    ] {
        set_mtime(&dir.join(f), 1_600_000_000);
    }
    let mut log = Vec::new();
    // Reference image IDs by the inputs that made them (the context's listing with contents,
    // modes and mtimes, the epoch, the build arg).
    let mut known: std::collections::HashMap<String, String> = Default::default();
    for step in 0..16 {
        match rng.below(7) {
            0 => {
                let n = rng.below(3);
                let mut text = std::fs::read_to_string(dir.join("requirements.txt")).unwrap();
                text.push_str(&format!("pkg{n}==1.0\n"));
                std::fs::write(dir.join("requirements.txt"), text).unwrap();
                log.push(format!("{step}: requirements.txt += pkg{n}"));
            }
            1 => {
                let t = 1_600_000_000 + rng.below(3) * 1000;
                set_mtime(&dir.join("train.py"), t);
                log.push(format!("{step}: train.py mtime {t}"));
            }
            2 => {
                let t = 1_600_000_000 + rng.below(3) * 1000;
                set_mtime(&dir.join("requirements.txt"), t);
                log.push(format!("{step}: requirements.txt mtime {t}"));
            }
            3 => {
                use std::os::unix::fs::PermissionsExt;
                let mode = [0o644, 0o755, 0o600][rng.below(3) as usize];
                std::fs::set_permissions(
                    dir.join("train.py"),
                    std::fs::Permissions::from_mode(mode),
                )
                .unwrap();
                log.push(format!("{step}: train.py mode {mode:o}"));
            }
            4 => {
                let n = rng.below(2);
                std::fs::write(dir.join("data/a.csv"), format!("{n},{n}\n")).unwrap();
                set_mtime(&dir.join("data/a.csv"), 1_600_000_000);
                log.push(format!("{step}: data/a.csv = {n}"));
            }
            5 => {
                let date = format!("@{} +0000", 1_600_000_000 + step * 100);
                git(&["commit", "-q", "--allow-empty", "-am", "c"], &date);
                log.push(format!("{step}: git commit {date}"));
            }
            _ => log.push(format!("{step}: no edit")),
        }
        let epoch = [None, Some(1_700_000_000u64), Some(1_700_000_500)][rng.below(3) as usize];
        let arg = [None, Some("1"), Some("2")][rng.below(3) as usize];
        let no_cache = rng.below(4) == 0;
        let mut args: Vec<String> = vec!["build".into(), "-q".into()];
        if no_cache {
            args.push("--no-cache".into());
        }
        if let Some(a) = arg {
            args.push("--build-arg".into());
            args.push(format!("X={a}"));
        }
        args.extend(["-t".into(), "x".into(), dir.to_str().unwrap().into()]);
        let run = |who: &Berth, args: &[String]| -> String {
            let mut c = who.command();
            c.args(args);
            if let Some(e) = epoch {
                c.env("SOURCE_DATE_EPOCH", e.to_string());
            }
            let out = c.output().unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let id = run(&b, &args);
        log.push(format!(
            "{step}: build epoch={epoch:?} X={arg:?} no_cache={no_cache} -> {id}"
        ));
        // No epoch is the default one (the base image's `created`, the same in both roots).
        let e = epoch.map_or("default".to_string(), |e| e.to_string());
        let listing = common::sh(&format!(
            "cd {} && find . -printf '%p %y %m %T@\\n' | sort && find . -type f | sort | xargs md5sum",
            dir.display()
        ));
        let inputs = format!("{e} {arg:?}\n{listing}");
        let want = match known.get(&inputs) {
            Some(w) => w.clone(),
            None => {
                let mut ref_args = args.clone();
                if !no_cache {
                    ref_args.insert(2, "--no-cache".into());
                }
                let w = run(&reference, &ref_args);
                known.insert(inputs, w.clone());
                w
            }
        };
        assert_eq!(
            id,
            want,
            "seed {seed}: a cached build differs from the --no-cache build of the same inputs:\n{}",
            log.join("\n")
        );
    }
}

#[test]
fn copy_from_cycles_forward_stages_and_image_names() {
    let b = Berth::with_busybox();
    let build_err = |df: &str| -> String {
        let dir = ctx(&b, &[("Dockerfile", df)]);
        let (code, err) = b.fails(&["build", "-q", dir.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        err
    };
    // a <- b <- a, and a stage copying from itself: BuildKit's words, no image lookup.
    for (df, stage) in [
        (
            "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n",
            "a",
        ),
        (
            "FROM busybox AS app\nCOPY --from=app /bin/busybox /x\n",
            "app",
        ),
        (
            "FROM busybox AS app\nRUN --mount=type=bind,from=app,target=/m true\n",
            "app",
        ),
    ] {
        let err = build_err(df);
        assert!(
            err.contains(&format!("circular dependency detected on stage: {stage}")),
            "{df}: {err}"
        );
        assert!(
            !err.contains("pull") && !err.contains("registry"),
            "{df}: {err}"
        );
    }
    // A stage index that is no stage.
    let err = build_err("FROM busybox\nCOPY --from=7 /x /x\n");
    assert!(err.contains("invalid stage index 7"), "{err}");

    // A stage may copy from a later one, as in BuildKit.
    let dir = ctx(
        &b,
        &[(
            "Dockerfile",
            "FROM busybox AS final\nCOPY --from=later /made /made\nFROM busybox AS later\nRUN echo later > /made\n",
        )],
    );
    build_ok(&b, &dir, &["--target", "final", "-t", "fwd"]);
    assert_eq!(run_in(&b, "fwd", "cat /made"), "later\n");

    // A name that is no stage is an image reference, never an ID prefix of a local image.
    let tar = common::busybox_tar();
    let id = b
        .ok(&[
            "import",
            "-c",
            "ENV MARK=1",
            tar.to_str().unwrap(),
            "unrelated",
        ])
        .trim()
        .to_string();
    let prefix = &id["sha256:".len().."sha256:".len() + 12];
    let err = build_err(&format!(
        "FROM busybox\nCOPY --from={prefix} /bin/busybox /x\n"
    ));
    assert!(err.contains(prefix), "{err}");
    assert!(
        !err.contains("circular") && !err.contains("invalid stage index"),
        "{err}"
    );
    // An image by name works, and so does its full ID.
    let dir = ctx(
        &b,
        &[(
            "Dockerfile",
            &format!("FROM busybox\nCOPY --from=unrelated /etc/passwd /p1\nCOPY --from={id} /etc/group /p2\n"),
        )],
    );
    build_ok(&b, &dir, &["-t", "byname"]);
    assert_eq!(run_in(&b, "byname", "ls /p1 /p2"), "/p1\n/p2\n");
}

/// A one-shot HTTP server answering `body` to every request; returns its port.
fn http_server(addr: &str, body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind(format!("{addr}:0")).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn run_steps_get_their_own_network() {
    let b = Berth::with_busybox();
    // A service only the host's loopback offers, and one on the host's own address.
    let local = http_server("127.0.0.1", "host-loopback");
    let addrs = common::sh("ip -4 -o addr show scope global");
    let host_ip = addrs
        .lines()
        .filter(|l| {
            !l.split_whitespace()
                .nth(1)
                .unwrap_or("")
                .starts_with("berth")
        })
        .find_map(|l| l.split_whitespace().nth(3))
        .map(|a| a.split('/').next().unwrap().to_string())
        .expect("this test needs a non-loopback IPv4 address on the host");
    let outside = http_server(&host_ip, "via-nat");
    let dir = ctx(
        &b,
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\n\
RUN (timeout 5 wget -q -O - http://127.0.0.1:{local}/ || echo unreachable) > /loopback\n\
RUN timeout 5 wget -q -O /outside http://{host_ip}:{outside}/\n\
RUN ip -o link | grep -c ': ' > /links && hostname > /hostname && cat /etc/hosts > /hosts\n"
            ),
        )],
    );
    build_ok(&b, &dir, &["-t", "isolated"]);
    // Nothing of the steps' networks is left (checked before any container runs).
    let netns = common::list(&b.runroot().join("netns"));
    assert!(netns.is_empty(), "{netns:?}");
    assert_eq!(run_in(&b, "isolated", "cat /loopback"), "unreachable\n");
    assert_eq!(run_in(&b, "isolated", "cat /outside"), "via-nat");
    // lo and its own eth0, never the host's interfaces.
    assert_eq!(run_in(&b, "isolated", "cat /links"), "2\n");
    assert_eq!(run_in(&b, "isolated", "cat /hostname"), "buildkitsandbox\n");
    assert!(run_in(&b, "isolated", "cat /hosts").contains("buildkitsandbox"));

    // The host's network only when the command line grants it.
    let dir = ctx(
        &b,
        &[(
            "Dockerfile",
            &format!("FROM busybox\nRUN --network=host timeout 5 wget -q -O /got http://127.0.0.1:{local}/\n"),
        )],
    );
    let (code, err) = b.fails(&["build", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("network.host is not allowed") && err.contains("--network host"),
        "{err}"
    );
    build_ok(&b, &dir, &["--network", "host", "-t", "hostnet"]);
    assert_eq!(run_in(&b, "hostnet", "cat /got"), "host-loopback");
}

#[test]
fn run_bind_mounts_of_the_context_are_filtered_and_copy_on_write() {
    let b = Berth::with_busybox();
    let dir = ctx(
        &b,
        &[
            (
                "Dockerfile",
                "FROM busybox\n\
RUN --mount=type=bind,target=/ctx ls -A /ctx /ctx/data > /listing\n\
RUN --mount=type=bind,target=/ctx (touch /ctx/x 2>/dev/null && echo rw || echo ro) > /default\n\
RUN --mount=type=bind,target=/ctx,rw echo changed > /ctx/data/keep.txt && echo new > /ctx/new.txt && rm /ctx/data/other.txt && cat /ctx/data/keep.txt > /seen\n\
RUN --mount=type=bind,source=data,target=/d,rw ls /d > /dlisting && echo more >> /d/keep.txt\n\
RUN --mount=type=bind,source=data/keep.txt,target=/k,rw echo x >> /k && cat /k > /seen2\n",
            ),
            ("data/keep.txt", "keep\n"),
            ("data/other.txt", "other\n"),
            ("data/secret.txt", "secret\n"),
            ("private.key", "key\n"),
            (".dockerignore", "data/secret.txt\nprivate.key\n"),
        ],
    );
    build_ok(&b, &dir, &["-t", "binds"]);
    // The context a RUN sees is the filtered one.
    assert_eq!(
        run_in(&b, "binds", "cat /listing"),
        "/ctx:\n.dockerignore\nDockerfile\ndata\n\n/ctx/data:\nkeep.txt\nother.txt\n"
    );
    assert_eq!(
        run_in(&b, "binds", "cat /dlisting"),
        "keep.txt\nother.txt\n"
    );
    assert_eq!(run_in(&b, "binds", "cat /default"), "ro\n");
    // rw is a copy-on-write view: the step saw its writes, the context is untouched.
    assert_eq!(run_in(&b, "binds", "cat /seen"), "changed\n");
    assert_eq!(run_in(&b, "binds", "cat /seen2"), "keep\nx\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("data/keep.txt")).unwrap(),
        "keep\n"
    );
    assert!(dir.join("data/other.txt").exists());
    assert!(!dir.join("new.txt").exists());
    assert!(!dir.join("x").exists());
}

#[test]
fn buildkit_config_and_history_details() {
    let b = Berth::with_busybox();
    // The imported busybox has no PATH: the build gets Docker's default one first.
    let dir = ctx(
        &b,
        &[(
            "Dockerfile",
            "FROM busybox\nARG V=1\nARG W\nENV PATH=$PATH:/opt/bin\nWORKDIR /app/\nRUN echo $V > v\nWORKDIR sub\n",
        )],
    );
    build_ok(&b, &dir, &["-t", "details", "--build-arg", "V=2"]);
    let env = inspect(&b, "details", "{{json .Config.Env}}");
    assert_eq!(
        env,
        r#"["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/bin"]"#
    );
    let hist = b.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "details",
    ]);
    let lines: Vec<&str> = hist.lines().collect();
    assert!(lines.contains(&"ARG V=2"), "{hist}");
    assert!(lines.contains(&"ARG W"), "{hist}");
    assert!(
        lines.contains(&"RUN |2 V=2 W= /bin/sh -c echo $V > v # buildkit"),
        "{hist}"
    );
    // WORKDIR keeps an absolute path as written; a relative one is joined and cleaned.
    assert!(lines.contains(&"WORKDIR /app/"), "{hist}");
    assert_eq!(inspect(&b, "details", "{{.Config.WorkingDir}}"), "/app/sub");
    assert_eq!(run_in(&b, "details", "cat /app/v"), "2\n");

    // A scratch image gets the default PATH too.
    let dir = ctx(
        &b,
        &[("Dockerfile", "FROM scratch\nWORKDIR /w/\n"), ("f", "f")],
    );
    build_ok(&b, &dir, &["-t", "scratchy"]);
    assert_eq!(
        inspect(&b, "scratchy", "{{json .Config.Env}}"),
        r#"["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]"#
    );
    assert_eq!(inspect(&b, "scratchy", "{{.Config.WorkingDir}}"), "/w/");

    // A failed COPY names its step, as a failed RUN does.
    let dir = ctx(
        &b,
        &[(
            "Dockerfile",
            "FROM busybox\nWORKDIR /app\nCOPY nothere.txt .\nRUN true\n",
        )],
    );
    let out = build(&b, &dir, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let at = err.find("[3/4] COPY nothere.txt .").expect(&err);
    assert!(err[at..].contains("ERROR: COPY failed"), "{err}");
}

#[test]
fn check_reproducible_names_what_differs() {
    let b = Berth::with_busybox();
    // Deterministic steps and a fixed epoch: the second, uncached build is the same image.
    let dir = ctx(
        &b,
        &[
            (
                "Dockerfile",
                "FROM busybox\nWORKDIR /app\nCOPY a.txt .\nRUN echo same > /app/made\n",
            ),
            ("a.txt", "a\n"),
        ],
    );
    let out = b
        .command()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args([
            "build",
            "--check-reproducible",
            "-t",
            "good",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("Reproducible: the build without the cache gave the same image sha256:"),
        "{err}"
    );
    let images = b.ok(&["images", "-q"]);
    assert_eq!(
        images.lines().count(),
        2,
        "busybox and good only:\n{images}"
    );

    // A step whose output changes on every run: the report names the layer, the step, the
    // file and the field, and the status says it failed.
    let dir = ctx(
        &b,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo stable > /stable && cat /proc/sys/kernel/random/uuid > /id\n",
        )],
    );
    let out = b
        .command()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args([
            "build",
            "--check-reproducible",
            "-t",
            "bad",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("NOT reproducible"), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("/id:"))
        .unwrap_or_else(|| panic!("no line for /id:\n{err}"));
    assert!(
        line.contains("layer 2 (RUN /bin/sh -c echo stable"),
        "{line}"
    );
    assert!(line.contains("content sha256:"), "{line}");
    assert!(
        !err.contains("/stable:"),
        "an unchanged file is not reported:\n{err}"
    );
    // The first build is kept and tagged; the comparison image is gone.
    assert!(!inspect(&b, "bad", "{{.Id}}").is_empty());
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 3);

    // With the clock instead of an epoch, the timestamps differ and the hint says why.
    let out = b
        .command()
        .env_remove("SOURCE_DATE_EPOCH")
        .args([
            "build",
            "--check-reproducible",
            "--timestamp",
            "now",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("config.created"), "{err}");
    assert!(
        err.contains("Hint: timestamps differ; --timestamp now"),
        "{err}"
    );
}

/// `--check-reproducible`'s second build starts with empty cache mounts, as on a fresh root:
/// what an earlier build left in a `RUN --mount=type=cache` directory must not make the two
/// builds differ (or look alike), and the check leaves the user's cache mounts as they were.
#[test]
fn check_reproducible_starts_cache_mounts_empty() {
    let b = Berth::with_busybox();
    let dir = ctx(
        &b,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,id=check,target=/c ls /c | wc -l > /n && touch /c/$(cat /proc/sys/kernel/random/uuid)\n",
        )],
    );
    let build = |args: &[&str]| {
        b.command()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .arg("build")
            .args(args)
            .arg(&dir)
            .output()
            .unwrap()
    };
    // The first build finds the cache mount empty, and so does the check's.
    let out = build(&["--check-reproducible", "-t", "cm"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Reproducible:"), "{err}");
    assert_eq!(b.ok(&["run", "--rm", "cm", "cat", "/n"]).trim(), "0");
    // The user's cache mount holds the first build's file only: the check wrote elsewhere.
    let out = build(&["--no-cache", "-q", "-t", "again"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(b.ok(&["run", "--rm", "again", "cat", "/n"]).trim(), "1");
}
