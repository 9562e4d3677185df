//! The seed's workflow end to end, offline: a Python base image made from this host's Debian
//! python3 and pip, a Dockerfile in the seed's shape that pip-installs from a wheelhouse in the
//! build context (`--no-index --find-links`), `build`, `run`, and a cached rebuild.

mod common;

use common::{sh, Berth};
use std::path::Path;

/// A root filesystem with busybox, Debian's python3.11 with its standard library, and pip.
fn python_base(b: &Berth) {
    assert!(
        Path::new("/usr/bin/python3.11").exists()
            && Path::new("/usr/lib/python3/dist-packages/pip").exists(),
        "Debian's python3.11 and python3-pip are needed (scripts/setup.sh installs them)"
    );
    let root = b.dir.path().join("pyroot");
    let tar = b.dir.path().join("python.tar");
    sh(&format!(
        r#"set -e
R={root}
mkdir -p $R/bin $R/usr/bin $R/lib/x86_64-linux-gnu $R/lib64 $R/tmp $R/etc $R/root
cp /bin/busybox $R/bin/
for a in $($R/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox $R/bin/$a; done
cp /usr/bin/python3.11 $R/usr/bin/ && ln -s python3.11 $R/usr/bin/python3 && ln -s python3 $R/usr/bin/python
for l in $(ldd /usr/bin/python3.11 | awk '/=>/ {{print $3}}'); do cp -L $l $R/lib/x86_64-linux-gnu/; done
cp -L /lib64/ld-linux-x86-64.so.2 $R/lib64/
tar -C / --exclude=__pycache__ --exclude=usr/lib/python3.11/test --exclude=usr/lib/python3.11/EXTERNALLY-MANAGED -cf - usr/lib/python3.11 \
    usr/lib/python3/dist-packages/pip $(cd / && ls -d usr/lib/python3/dist-packages/pip-*.dist-info) \
    usr/share/python-wheels | tar -C $R -xf -
echo 'root:x:0:0:root:/root:/bin/sh' > $R/etc/passwd
printf '#!/bin/sh\nexec python3 -m pip "$@"\n' > $R/usr/bin/pip && chmod 755 $R/usr/bin/pip
tar -C $R --sort=name -cf {tar} ."#,
        root = root.display(),
        tar = tar.display()
    ));
    b.ok(&[
        "import",
        "-c",
        "CMD [\"python3\"]",
        "-c",
        "ENV PATH=/usr/local/bin:/usr/bin:/bin",
        tar.to_str().unwrap(),
        "python:3.11-slim",
    ]);
}

/// The seed's project: a wheel in a local wheelhouse, a training script that uses it.
fn project(dir: &Path) {
    std::fs::create_dir_all(dir.join("wheels")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM python:3.11-slim\n\
         WORKDIR /app\n\
         COPY requirements.txt .\n\
         COPY wheels/ wheels/\n\
         RUN pip install --no-cache-dir --no-index --find-links wheels -r requirements.txt\n\
         COPY . .\n\
         CMD [\"python\", \"train.py\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("requirements.txt"), "tinyfit==1.0\n").unwrap();
    std::fs::write(
        dir.join("train.py"),
        "import tinyfit\n\
         xs = [1.0, 2.0, 3.0, 4.0]\n\
         ys = [3.0, 5.0, 7.0, 9.0]\n\
         w, b = tinyfit.fit(xs, ys)\n\
         print(f\"trained: w={w:.2f} b={b:.2f}\")\n",
    )
    .unwrap();
    // A pure-Python wheel, written by hand (a zip with the package and its dist-info).
    let script = format!(
        r#"
import zipfile, hashlib, base64
files = {{
    "tinyfit/__init__.py": "def fit(xs, ys):\n    n = len(xs)\n    mx = sum(xs) / n\n    my = sum(ys) / n\n    w = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)\n    return w, my - w * mx\n",
    "tinyfit-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinyfit\nVersion: 1.0\n",
    "tinyfit-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}}
record = []
for name, text in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
    record.append(f"{{name}},sha256={{digest}},{{len(text.encode())}}")
record.append("tinyfit-1.0.dist-info/RECORD,,")
files["tinyfit-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
with zipfile.ZipFile("{whl}", "w") as z:
    for name, text in files.items():
        z.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), text)
"#,
        whl = dir.join("wheels/tinyfit-1.0-py3-none-any.whl").display()
    );
    let status = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn seed_python_project_builds_runs_and_rebuilds_from_cache() {
    let b = Berth::new();
    python_base(&b);
    let ctx = b.dir.path().join("project");
    project(&ctx);

    let first = b.run(&[
        "build",
        "-t",
        "python-train",
        "--progress",
        "plain",
        ctx.to_str().unwrap(),
    ]);
    let log = String::from_utf8_lossy(&first.stdout).to_string()
        + &String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{log}");
    assert!(
        log.contains("Successfully installed tinyfit-1.0"),
        "pip's output is streamed:\n{log}"
    );
    let run = b.ok(&["run", "--rm", "--network", "none", "python-train"]);
    assert_eq!(run.trim(), "trained: w=2.00 b=1.00");
    // The requirements hold: pinned, and what train.py imports is what pip installed (its
    // RECORD says tinyfit provides `tinyfit`).
    assert!(!log.contains("requirement warning"), "{log}");
    // `lock` pins what pip installed; Debian's pip is left out, and said so.
    let lock = b.ok(&["lock", "python-train"]);
    assert!(lock.lines().any(|l| l == "tinyfit==1.0"), "{lock}");
    assert!(lock.contains("#   pip=="), "{lock}");

    // Unchanged context: every step is a cache hit and the image is the same.
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "python-train"]);
    let again = b.run(&[
        "build",
        "-t",
        "python-train",
        "--progress",
        "plain",
        ctx.to_str().unwrap(),
    ]);
    assert!(again.status.success());
    let log = String::from_utf8_lossy(&again.stdout).to_string()
        + &String::from_utf8_lossy(&again.stderr);
    assert!(log.contains("CACHED"), "{log}");
    assert_eq!(b.ok(&["inspect", "-f", "{{.Id}}", "python-train"]), id);

    // Changing the script re-runs only what depends on it: pip stays cached.
    std::fs::write(ctx.join("train.py"), "print('changed')\n").unwrap();
    let changed = b.run(&[
        "build",
        "-t",
        "python-train",
        "--progress",
        "plain",
        ctx.to_str().unwrap(),
    ]);
    assert!(changed.status.success());
    let log = String::from_utf8_lossy(&changed.stdout).to_string()
        + &String::from_utf8_lossy(&changed.stderr);
    let pip_line = log
        .lines()
        .position(|l| l.contains("RUN pip install"))
        .expect("pip step listed");
    assert!(
        log.lines()
            .skip(pip_line)
            .take(3)
            .any(|l| l.contains("CACHED")),
        "pip re-ran:\n{log}"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "--network", "none", "python-train"])
            .trim(),
        "changed"
    );

    // An unpinned requirement is named with its file and line and the version pip chose.
    std::fs::write(ctx.join("requirements.txt"), "tinyfit>=0.9\n").unwrap();
    std::fs::write(ctx.join("train.py"), "import tinyfit\n").unwrap();
    let (code, _, err) = b.code(&["build", "-q", "-t", "python-train", ctx.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            " - requirements.txt:1: tinyfit>=0.9 has no exact version; the image has tinyfit 1.0: write tinyfit==1.0"
        ),
        "{err}"
    );
}

/// The header flags of the pyc pip wrote for tinyfit: 3 is a checked-hash pyc (PEP 552),
/// 0 a timestamp one.
fn pyc_flags(b: &Berth, image: &str) -> String {
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        "python3 -c 'import sys; d = open(sys.argv[1], \"rb\").read(8); print(int.from_bytes(d[4:8], \"little\"))' $(find / -path '*tinyfit/__pycache__/__init__*.pyc' | head -n 1)",
    ]);
    out.trim().to_string()
}

#[test]
fn seed_project_is_reproducible_by_default_with_checked_hash_pycs() {
    // One base image, saved once and loaded into two fresh roots.
    let maker = Berth::new();
    python_base(&maker);
    let base = maker.dir.path().join("base.tar");
    maker.ok(&["save", "-o", base.to_str().unwrap(), "python:3.11-slim"]);

    let mut ids = Vec::new();
    for _ in 0..2 {
        let b = Berth::new();
        b.ok(&["load", "-i", base.to_str().unwrap()]);
        let ctx = b.dir.path().join("project");
        project(&ctx);
        let out = b
            .command()
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("BERTH_BUILD_TIMESTAMP")
            .args(["build", "-q", "-t", "python-train", ctx.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
        // SOURCE_DATE_EPOCH reached pip: its pycs are checked-hash, valid whatever the mtimes.
        assert_eq!(pyc_flags(&b, &id), "3");
        if ids.is_empty() {
            // The opt-out builds with the clock: timestamp pycs, as Docker gives.
            let out = b
                .command()
                .args([
                    "build",
                    "-q",
                    "--timestamp",
                    "now",
                    "-t",
                    "clock",
                    ctx.to_str().unwrap(),
                ])
                .output()
                .unwrap();
            assert!(out.status.success());
            assert_eq!(pyc_flags(&b, "clock"), "0");
        }
        ids.push(id);
    }
    assert_eq!(ids[0], ids[1], "the same image ID on two fresh roots");
}
