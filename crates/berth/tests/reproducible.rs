//! Reproducible images by default: the epoch a build picks when it is given none (the base
//! image's `created`, 0 for FROM scratch, for the layers; the context's git HEAD commit time,
//! else the base's, for `created` and the history), a new commit that keeps the cache, the
//! same image ID on fresh roots and from a warm or cold cache, the opt-outs and overrides,
//! and `commit` with `SOURCE_DATE_EPOCH`.

mod common;

use common::Berth;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The seed project's shape on busybox: requirements first, a RUN on them, then the rest.
const SEED_SHAPE: &str = "FROM busybox\nWORKDIR /app\nCOPY requirements.txt .\nRUN wc -l requirements.txt > /app/count && echo $SOURCE_DATE_EPOCH > /app/epoch\nCOPY . .\nCMD [\"cat\", \"/app/count\"]\n";

fn write_ctx(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    for (name, content) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir.to_path_buf()
}

fn seed_ctx(b: &Berth) -> PathBuf {
    write_ctx(
        &b.dir.path().join("ctx"),
        &[
            ("Dockerfile", SEED_SHAPE),
            ("requirements.txt", "numpy==1.26.4\n"),
            ("train.py", "print('trained')\n"),
            ("data/x.csv", "1,2\n"),
        ],
    )
}

/// `berth build -q` with no epoch from the environment, plus `args` and `env`.
fn build(b: &Berth, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut c = b.command();
    c.env_remove("SOURCE_DATE_EPOCH")
        .env_remove("BERTH_BUILD_TIMESTAMP")
        .args(["build", "-q"])
        .args(args)
        .arg(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "build {args:?} {env:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn created(b: &Berth, image: &str) -> String {
    b.ok(&["image", "inspect", "-f", "{{.Created}}", image])
        .trim()
        .to_string()
}

fn run_in(b: &Berth, image: &str, cmd: &str) -> String {
    b.ok(&["run", "--rm", "--network", "none", image, "sh", "-c", cmd])
        .trim()
        .to_string()
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn secs(rfc: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc)
        .unwrap_or_else(|e| panic!("{rfc:?}: {e}"))
        .timestamp()
}

fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

#[test]
fn no_flags_same_image_on_fresh_roots_warm_or_cold() {
    assert!(common::is_root("reproducible"));
    // One base image, saved once: an import's ID depends on its time.
    let first = Berth::new();
    first.import_busybox("busybox");
    let base = first.dir.path().join("busybox.tar");
    first.ok(&["save", "-o", base.to_str().unwrap(), "busybox"]);
    let base_created = secs(&created(&first, "busybox"));

    let mut ids = Vec::new();
    let mut saves = Vec::new();
    for n in 0..2 {
        let b = Berth::new();
        b.ok(&["load", "-i", base.to_str().unwrap()]);
        let dir = seed_ctx(&b);
        let id = build(&b, &dir, &["-t", "app"], &[]);
        // Not in a git work tree: the base image's creation time, in seconds.
        assert_eq!(created(&b, &id), rfc3339(base_created));
        assert_eq!(run_in(&b, &id, "cat /app/epoch"), base_created.to_string());
        // Files the RUN made and files COPY brought are clamped to the epoch.
        assert_eq!(
            run_in(
                &b,
                &id,
                "stat -c %Y /app/count /app/train.py /app/data/x.csv"
            ),
            format!("{base_created}\n{base_created}\n{base_created}")
        );
        if n == 1 {
            // Warm cache, then cold: the same image.
            assert_eq!(build(&b, &dir, &[], &[]), id);
            assert_eq!(build(&b, &dir, &["--no-cache"], &[]), id);
        }
        let saved = b.dir.path().join("app.tar");
        b.ok(&["save", "-o", saved.to_str().unwrap(), "app"]);
        saves.push(sha256_file(&saved));
        ids.push(id);
    }
    assert_eq!(ids[0], ids[1], "the same image ID on two fresh roots");
    assert_eq!(saves[0], saves[1], "`save` writes the same archive on both");
}

/// `git` in `dir` with a fixed identity and committer date.
fn git(dir: &Path, args: &[&str], date: &str) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "a")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "c")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("running git (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn git_head_time_overrides_and_timestamp_now() {
    assert!(common::is_root("reproducible"));
    let b = Berth::with_busybox();
    let dir = write_ctx(
        &b.dir.path().join("repo"),
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY . /src\nRUN echo $SOURCE_DATE_EPOCH > /epoch\n",
            ),
            ("a.txt", "a\n"),
            (
                "sub/Dockerfile",
                "FROM busybox\nRUN echo $SOURCE_DATE_EPOCH > /epoch\n",
            ),
        ],
    );
    git(&dir, &["init", "-q"], "@1600000000 +0200");
    git(&dir, &["add", "."], "@1600000000 +0200");
    git(&dir, &["commit", "-q", "-m", "one"], "@1600000000 +0200");
    let head = rfc3339(1600000000);
    let base = secs(&created(&b, "busybox")).to_string();

    // HEAD's time stamps the config and history; the layers (and RUN's SOURCE_DATE_EPOCH)
    // get the base image's time, which does not change from commit to commit.
    let id = build(&b, &dir, &[], &[]);
    assert_eq!(created(&b, &id), head);
    assert_eq!(run_in(&b, &id, "cat /epoch"), base);
    assert_eq!(run_in(&b, &id, "stat -c %Y /src/a.txt"), base);
    let history = b.ok(&[
        "history",
        "--human=false",
        "--format",
        "{{.CreatedAt}}",
        &id,
    ]);
    assert!(
        history.lines().take(2).all(|l| l.contains("2020-09-13")),
        "the build's history entries carry HEAD's time:\n{history}"
    );

    // A dirty tree (an edit and a new file, not committed) still gets HEAD's time.
    std::fs::write(dir.join("a.txt"), "edited\n").unwrap();
    std::fs::write(dir.join("new.txt"), "new\n").unwrap();
    let dirty = build(&b, &dir, &[], &[]);
    assert_ne!(dirty, id);
    assert_eq!(created(&b, &dirty), head);

    // A context below the work tree's top finds HEAD above it.
    let sub = build(&b, &dir.join("sub"), &[], &[]);
    assert_eq!(created(&b, &sub), head);
    // A new commit moves the epoch.
    git(&dir, &["commit", "-q", "-am", "two"], "@1600000500 +0000");
    assert_eq!(
        created(&b, &build(&b, &dir.join("sub"), &[], &[])),
        rfc3339(1600000500)
    );

    // SOURCE_DATE_EPOCH (the environment or a build arg, as BuildKit) wins over git.
    let sde = build(&b, &dir, &[], &[("SOURCE_DATE_EPOCH", "1700000000")]);
    assert_eq!(created(&b, &sde), rfc3339(1700000000));
    assert_eq!(run_in(&b, &sde, "cat /epoch"), "1700000000");
    let arg = build(
        &b,
        &dir,
        &["--build-arg", "SOURCE_DATE_EPOCH=1650000000"],
        &[],
    );
    assert_eq!(created(&b, &arg), rfc3339(1650000000));
    assert_eq!(run_in(&b, &arg, "stat -c %Y /src/a.txt"), "1650000000");
    // --timestamp SECONDS wins over SOURCE_DATE_EPOCH.
    let fixed = build(
        &b,
        &dir,
        &["--timestamp", "1234"],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    assert_eq!(created(&b, &fixed), rfc3339(1234));

    // --timestamp now and BERTH_BUILD_TIMESTAMP=now: the clock, not the epoch, and no
    // SOURCE_DATE_EPOCH in RUN.
    let before = chrono::Utc::now().timestamp() - 1;
    for (args, env) in [
        (
            &["--timestamp", "now"][..],
            &[("SOURCE_DATE_EPOCH", "1700000000")][..],
        ),
        (&[][..], &[("BERTH_BUILD_TIMESTAMP", "now")][..]),
    ] {
        let now = build(&b, &dir, args, env);
        let t = secs(&created(&b, &now));
        assert!(t >= before, "created {t} is before the build ({before})");
        assert_eq!(run_in(&b, &now, "cat /epoch"), "");
    }

    // A value that is neither: a clear error.
    let (code, err) = b.fails(&["build", "--timestamp", "yesterday", dir.to_str().unwrap()]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("invalid --timestamp \"yesterday\""), "{err}");
    let (code, err) = b.fails(&[
        "build",
        "--build-arg",
        "SOURCE_DATE_EPOCH=soon",
        dir.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("SOURCE_DATE_EPOCH=\"soon\""), "{err}");
}

#[test]
fn from_scratch_and_stage_chains_take_their_base() {
    assert!(common::is_root("reproducible"));
    let b = Berth::with_busybox();
    let base_created = secs(&created(&b, "busybox"));
    let dir = write_ctx(
        &b.dir.path().join("scratch"),
        &[("Dockerfile", "FROM scratch\nCOPY f /f\n"), ("f", "f\n")],
    );
    let id = build(&b, &dir, &[], &[]);
    assert_eq!(created(&b, &id), "1970-01-01T00:00:00Z");

    // The target's chain of stages leads to busybox; the other stage's base does not count.
    let dir = write_ctx(
        &b.dir.path().join("stages"),
        &[(
            "Dockerfile",
            "FROM scratch AS files\nCOPY Dockerfile /d\nFROM busybox AS base\nRUN echo $SOURCE_DATE_EPOCH > /epoch\nFROM base\nCOPY --from=files /d /d\n",
        )],
    );
    let id = build(&b, &dir, &[], &[]);
    assert_eq!(created(&b, &id), rfc3339(base_created));
    assert_eq!(run_in(&b, &id, "cat /epoch"), base_created.to_string());
}

#[test]
fn commit_and_import_are_now_unless_source_date_epoch() {
    assert!(common::is_root("reproducible"));
    let b = Berth::with_busybox();
    b.ok(&[
        "run",
        "--name",
        "ctr",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo x > /x && mkdir /d && echo y > /d/y",
    ]);
    let commit = |env: Option<&str>| {
        let mut c = b.command();
        c.env_remove("SOURCE_DATE_EPOCH").args(["commit", "ctr"]);
        if let Some(e) = env {
            c.env("SOURCE_DATE_EPOCH", e);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let before = chrono::Utc::now().timestamp() - 1;
    let now = commit(None);
    assert!(secs(&created(&b, &now)) >= before);
    let a = commit(Some("1700000000"));
    let again = commit(Some("1700000000"));
    assert_eq!(a, again, "the same container and epoch: the same image");
    assert_eq!(created(&b, &a), rfc3339(1700000000));
    assert_eq!(
        run_in(&b, &a, "stat -c %Y /x /d /d/y"),
        "1700000000\n1700000000\n1700000000"
    );
    // import too: the archive is stored as given, `created` is the epoch.
    let tar = common::busybox_tar();
    let import = || {
        let out = b
            .command()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["import", tar.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let imported = import();
    assert_eq!(import(), imported);
    assert_eq!(created(&b, &imported), rfc3339(1700000000));

    let (code, err) = {
        let out = b
            .command()
            .env("SOURCE_DATE_EPOCH", "later")
            .args(["commit", "ctr"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("SOURCE_DATE_EPOCH=\"later\""), "{err}");
}

fn layers(b: &Berth, image: &str) -> String {
    b.ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image])
}

fn container_config(b: &Berth, image: &str) -> String {
    b.ok(&["image", "inspect", "-f", "{{json .Config}}", image])
}

/// The ML user's loop: commit, build, commit, build. HEAD's commit time only stamps the
/// config, so a commit that touches no file a step reads reruns nothing (the expensive RUN —
/// here one that writes a random value — stays cached), and the images differ only in their
/// dates; a commit that edits a copied file reruns only the steps from that COPY on.
#[test]
fn new_commits_keep_the_layer_cache() {
    assert!(common::is_root("reproducible"));
    let b = Berth::with_busybox();
    let base = secs(&created(&b, "busybox")).to_string();
    let dir = write_ctx(
        &b.dir.path().join("repo"),
        &[
            (
                "Dockerfile",
                "FROM busybox\nWORKDIR /app\nCOPY requirements.txt .\nRUN cat /proc/sys/kernel/random/uuid > installed && echo $SOURCE_DATE_EPOCH > epoch\nCOPY src/ src/\n",
            ),
            (
                "Dockerfile.same",
                "FROM busybox\nWORKDIR /app\nCOPY requirements.txt .\nRUN wc -l requirements.txt > count\nCOPY src/ src/\n",
            ),
            ("requirements.txt", "numpy==1.26.4\n"),
            ("src/train.py", "print('trained')\n"),
            ("notes.md", "one\n"),
        ],
    );
    git(&dir, &["init", "-q"], "@1600000000 +0000");
    git(&dir, &["add", "."], "@1600000000 +0000");
    git(&dir, &["commit", "-q", "-m", "one"], "@1600000000 +0000");
    let first = build(&b, &dir, &[], &[]);
    let installed = run_in(&b, &first, "cat /app/installed");
    assert_eq!(created(&b, &first), rfc3339(1600000000));
    assert_eq!(run_in(&b, &first, "cat /app/epoch"), base);
    let same_first = build(&b, &dir, &["-f", "Dockerfile.same"], &[]);

    // A commit of a file no step reads: every step is a cache hit; only the dates differ.
    std::fs::write(dir.join("notes.md"), "two\n").unwrap();
    git(&dir, &["commit", "-q", "-am", "two"], "@1600000500 +0000");
    let second = build(&b, &dir, &[], &[]);
    assert_ne!(second, first, "the new commit's time is in the config");
    assert_eq!(created(&b, &second), rfc3339(1600000500));
    assert_eq!(
        run_in(&b, &second, "cat /app/installed"),
        installed,
        "the RUN step ran again although nothing it reads changed"
    );
    assert_eq!(layers(&b, &second), layers(&b, &first));
    assert_eq!(container_config(&b, &second), container_config(&b, &first));
    let history = b.ok(&[
        "history",
        "--human=false",
        "--no-trunc",
        "--format",
        "{{.CreatedAt}} {{.CreatedBy}}",
        &second,
    ]);
    assert!(
        history.lines().take(4).all(|l| l.contains("2020-09-13")),
        "the history carries the new HEAD's time:\n{history}"
    );
    // The cache still never lies: a cached build is the --no-cache build.
    let same_second = build(&b, &dir, &["-f", "Dockerfile.same"], &[]);
    assert_ne!(same_second, same_first);
    assert_eq!(layers(&b, &same_second), layers(&b, &same_first));
    assert_eq!(
        build(&b, &dir, &["-f", "Dockerfile.same", "--no-cache"], &[]),
        same_second
    );

    // A commit that edits a copied file: the steps before that COPY stay cached.
    std::fs::write(dir.join("src/train.py"), "print('trained twice')\n").unwrap();
    git(&dir, &["commit", "-q", "-am", "three"], "@1600001000 +0000");
    let third = build(&b, &dir, &[], &[]);
    assert_eq!(run_in(&b, &third, "cat /app/installed"), installed);
    assert_eq!(
        run_in(&b, &third, "cat /app/src/train.py"),
        "print('trained twice')"
    );
    let (l2, l3) = (layers(&b, &second), layers(&b, &third));
    let (l2, l3): (Vec<&str>, Vec<&str>) = (l2.split(',').collect(), l3.split(',').collect());
    assert_eq!(l2.len(), l3.len());
    assert_eq!(
        l2[..l2.len() - 1],
        l3[..l3.len() - 1],
        "only the last layer differs"
    );
    assert_ne!(l2.last(), l3.last());

    // An explicit SOURCE_DATE_EPOCH still clamps everything with it (BuildKit's semantics):
    // the layers change with it, so the RUN step runs again.
    let sde = build(&b, &dir, &[], &[("SOURCE_DATE_EPOCH", "1700000000")]);
    assert_eq!(created(&b, &sde), rfc3339(1700000000));
    assert_eq!(run_in(&b, &sde, "cat /app/epoch"), "1700000000");
    assert_ne!(run_in(&b, &sde, "cat /app/installed"), installed);
}

/// The context files' digests are kept between builds (`$ROOT/build-hashes/`), so a rebuild
/// reads only the files that changed: the next build takes a file's digest from there while
/// the file is unchanged (a planted digest shows it was not read again), and `builder prune
/// -a` drops them.
#[test]
fn context_digests_are_kept_between_builds() {
    assert!(common::is_root("reproducible"));
    let b = Berth::with_busybox();
    let dir = write_ctx(
        &b.dir.path().join("ctx"),
        &[
            ("Dockerfile", "FROM busybox\nCOPY a.txt /a\n"),
            ("a.txt", "a\n"),
        ],
    );
    // A file changed in the last two seconds is not recorded (it could change again within
    // the same clock tick unseen): wait until these are older.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let plain = |b: &Berth| {
        let out = b
            .command()
            .args(["build", "--progress", "plain", "-t", "x"])
            .arg(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{err}");
        err
    };
    plain(&b);
    let hashes = b.root().join("build-hashes");
    let files: Vec<_> = std::fs::read_dir(&hashes).unwrap().collect();
    assert_eq!(files.len(), 1, "one file per context directory");
    let file = files[0].as_ref().unwrap().path();
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["a.txt"]["sha256"], sha256_file(&dir.join("a.txt")));
    assert!(v.get("Dockerfile").is_some(), "{v}");
    let err = plain(&b);
    assert!(err.contains("CACHED"), "{err}");

    // A planted digest for the unchanged file is believed: the COPY's key changes.
    v["a.txt"]["sha256"] = "0".repeat(64).into();
    std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = plain(&b);
    assert!(
        !err.contains("CACHED"),
        "the planted digest was not used:\n{err}"
    );

    // A changed file is read again (its ctime moved, whatever its mtime says).
    std::fs::write(dir.join("a.txt"), "b\n").unwrap();
    plain(&b);
    assert_eq!(b.ok(&["run", "--rm", "x", "cat", "/a"]), "b\n");

    b.ok(&["builder", "prune", "-a", "-f"]);
    assert!(
        !hashes.exists(),
        "builder prune -a removes the kept digests"
    );
}
