//! Requirements that can't lie: `berth build`'s checks of a Python project against what the
//! built image installed, `--strict`, `berth lock`, the provenance `image inspect` shows, and
//! the provenance + SBOM referrers `push` attaches, read back through `berth registry serve`'s
//! referrers API and skopeo.
//!
//! The image is busybox with real dist-info directories (METADATA, RECORD, top_level.txt,
//! direct_url.json as pip writes them) copied into its site-packages; the Dockerfile's
//! `pip install -r requirements.txt` is a stand-in `pip` that installs nothing, so the test
//! needs no Python and no index.

mod common;

use common::{sh, Berth};
use serde_json::Value;

use std::path::Path;
use std::process::{Child, Command, Stdio};

const SP: &str = "site/usr/local/lib/python3.11/site-packages";

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A dist-info directory as pip writes it.
fn dist_info(ctx: &Path, name: &str, version: &str, files: &[(&str, &str)]) {
    let dir = format!("{SP}/{}-{version}.dist-info", name.replace('-', "_"));
    write(
        ctx,
        &format!("{dir}/METADATA"),
        &format!(
            "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{}\n",
            files
                .iter()
                .find(|f| f.0 == "requires")
                .map(|f| f.1)
                .unwrap_or("")
        ),
    );
    write(ctx, &format!("{dir}/INSTALLER"), "pip\n");
    for (f, text) in files {
        if *f != "requires" {
            write(ctx, &format!("{dir}/{f}"), text);
        }
    }
}

/// The project: requirements with each kind of mistake, code that imports what it uses.
fn project(ctx: &Path) {
    // numpy: only RECORD says which top-level module it has.
    dist_info(
        ctx,
        "numpy",
        "1.26.4",
        &[(
            "RECORD",
            "numpy/__init__.py,sha256=x,10\nnumpy/linalg/__init__.py,,\nnumpy-1.26.4.dist-info/METADATA,,\n../../../bin/f2py,,\n",
        )],
    );
    dist_info(
        ctx,
        "scikit-learn",
        "1.4.0",
        &[
            ("top_level.txt", "sklearn\n"),
            (
                "requires",
                "Requires-Dist: numpy>=1.19.5\nRequires-Dist: scipy>=1.6.0\n",
            ),
        ],
    );
    dist_info(ctx, "scipy", "1.12.0", &[("top_level.txt", "scipy\n")]);
    dist_info(
        ctx,
        "opencv-python",
        "4.9.0.80",
        &[
            ("top_level.txt", "cv2\n"),
            (
                "direct_url.json",
                r#"{"url": "file:///wheels/opencv_python-4.9.0.80-cp37-abi3-manylinux_2_17_x86_64.whl", "archive_info": {"hashes": {"sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}}"#,
            ),
        ],
    );
    write(ctx, "pip", "#!/bin/sh\necho \"pip $*\"\n");
    write(
        ctx,
        "requirements.txt",
        "# the project's requirements\nnumpy>=1.2\nscikit-learn==1.3.0  # pinned, but pip resolved 1.4.0\nopencv-python==4.9.0.80 \\\n    --hash=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
    );
    write(
        ctx,
        "train.py",
        "\"\"\"Trains.\n\nimport not_code\n\"\"\"\nimport os, sys\nimport numpy as np\nfrom sklearn.linear_model import LinearRegression\nimport cv2\nimport scipy.stats\nimport yaml\nfrom helpers import load\nfrom . import sibling\ntry:\n    import ujson as json\nexcept ImportError:\n    import json\n",
    );
    write(ctx, "helpers.py", "import numpy\ndef load():\n    pass\n");
    // A virtual environment and an ignored directory: not the project's code.
    write(ctx, "venv/pyvenv.cfg", "home = /usr/bin\n");
    write(
        ctx,
        "venv/lib/python3.11/site-packages/x/y.py",
        "import venvonly\n",
    );
    write(ctx, "scratch/notes.py", "import ignoredmodule\n");
    write(ctx, ".dockerignore", "scratch\nvenv\n");
    write(
        ctx,
        "Dockerfile",
        "FROM busybox\n\
         COPY site/ /\n\
         COPY pip /usr/local/bin/pip\n\
         WORKDIR /app\n\
         COPY requirements.txt .\n\
         RUN chmod 755 /usr/local/bin/pip && /usr/local/bin/pip install --no-cache-dir -r requirements.txt\n\
         COPY . .\n\
         CMD [\"python\", \"train.py\"]\n",
    );
}

fn setup() -> (Berth, std::path::PathBuf) {
    let b = Berth::with_busybox();
    let ctx = b.dir.path().join("ctx");
    project(&ctx);
    (b, ctx)
}

#[test]
fn build_warns_naming_file_and_line() {
    let (b, ctx) = setup();
    let (code, _, err) = b.code(&["build", "-q", "-t", "app", ctx.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with(" - ")).collect();
    assert!(
        err.contains("4 requirement warnings (--strict makes them errors):"),
        "{err}"
    );
    assert_eq!(
        warnings,
        vec![
            " - requirements.txt:2: numpy>=1.2 has no exact version; the image has numpy 1.26.4: write numpy==1.26.4",
            " - requirements.txt:3: scikit-learn==1.3.0 is pinned, but pip installed scikit-learn 1.4.0 (in /usr/local/lib/python3.11/site-packages)",
            " - train.py:9: import scipy: provided by scipy 1.12.0, which no requirement names (installed only as a dependency of scikit-learn); add scipy==1.12.0",
            " - train.py:10: import yaml: no requirement provides it and no installed distribution has a top-level module \"yaml\"; add the distribution that provides it to the requirements",
        ],
        "{err}"
    );
    // The image was written and tagged.
    b.ok(&["image", "inspect", "app"]);

    // Fixed requirements: no warnings at all.
    write(
        &ctx,
        "requirements.txt",
        "numpy==1.26.4\nscikit-learn==1.4.0\nscipy==1.12.0\nopencv-python==4.9.0.80\n",
    );
    write(&ctx, "train.py", "import numpy, sklearn, scipy, cv2\n");
    let (code, _, err) = b.code(&["build", "-q", "-t", "app", ctx.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn strict_fails_the_build_and_tags_nothing() {
    let (b, ctx) = setup();
    let (code, out, err) = b.code(&[
        "build",
        "--strict",
        "-t",
        "strict:v1",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("--strict: 4 requirement problems found, so the image was not written"),
        "{err}"
    );
    assert!(
        err.contains("requirements.txt:2: numpy>=1.2 has no exact version"),
        "{err}"
    );
    let (code, _, _) = b.code(&["image", "inspect", "strict:v1"]);
    assert_ne!(code, 0, "a --strict failure must not tag the image");
    // The steps are cached: the same build without --strict reuses them and succeeds.
    let (code, _, err) = b.code(&["build", "-t", "strict:v1", ctx.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("CACHED"), "{err}");
}

#[test]
fn lock_pins_what_the_image_installed() {
    let (b, ctx) = setup();
    b.ok(&["build", "-q", "-t", "app", ctx.to_str().unwrap()]);
    let out = b.dir.path().join("requirements.lock");
    b.ok(&["lock", "app", "-o", out.to_str().unwrap()]);
    let text = std::fs::read_to_string(&out).unwrap();
    let pins: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        pins,
        vec![
            "numpy==1.26.4",
            "opencv-python==4.9.0.80  # sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "scikit-learn==1.4.0",
            "scipy==1.12.0",
        ],
        "{text}"
    );
    assert!(
        text.contains("# No --hash lines: the image records the archive hash of only 1 of 4"),
        "{text}"
    );
    // stdout without -o; an image without Python packages is an error that says why.
    assert_eq!(b.ok(&["lock", "app"]), text);
    let (code, err) = b.fails(&["lock", "busybox"]);
    assert_eq!(code, 1);
    assert!(err.contains("no installed Python distributions"), "{err}");
}

#[test]
fn inspect_shows_the_provenance() {
    let (b, ctx) = setup();
    b.ok(&[
        "build",
        "-q",
        "--build-arg",
        "MODEL=small",
        "-t",
        "app",
        ctx.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_str(&b.ok(&["image", "inspect", "app"])).unwrap();
    let p = &v[0]["BerthProvenance"];
    assert_eq!(
        p["predicateType"], "https://slsa.dev/provenance/v1",
        "{p:#}"
    );
    assert_eq!(p["subject"][0]["name"], v[0]["Id"]);
    let params = &p["predicate"]["buildDefinition"]["externalParameters"];
    let busybox: Value = serde_json::from_str(&b.ok(&["image", "inspect", "busybox"])).unwrap();
    assert_eq!(params["base"]["imageID"], busybox[0]["Id"]);
    assert_eq!(params["base"]["name"], "docker.io/library/busybox:latest");
    assert_eq!(params["buildArgs"]["MODEL"], "small");
    assert_eq!(
        params["dockerfile"]["digest"]["sha256"],
        sh(&format!(
            "sha256sum {} | cut -d' ' -f1",
            ctx.join("Dockerfile").display()
        ))
        .trim()
    );
    let context = params["context"]["digest"]["sha256"].as_str().unwrap();
    assert_eq!(context.len(), 64);
    let deps = p["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let purls: Vec<&str> = deps.iter().filter_map(|d| d["uri"].as_str()).collect();
    for want in [
        "pkg:pypi/numpy@1.26.4",
        "pkg:pypi/scikit-learn@1.4.0",
        "pkg:pypi/scipy@1.12.0",
        "pkg:pypi/opencv-python@4.9.0.80",
    ] {
        assert!(purls.contains(&want), "{purls:?}");
    }
    // Images not built here look exactly like Docker's: no extra key.
    assert!(busybox[0].get("BerthProvenance").is_none());
}

/// `berth registry serve` on a free port, killed when dropped.
struct Registry(Child, String, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn registry() -> Registry {
    let r = common::registry::start(&[]);
    Registry(r.child, r.addr, r.dir)
}

fn curl_json(url: &str) -> Value {
    serde_json::from_str(&sh(&format!("curl -sf '{url}'"))).unwrap()
}

#[test]
fn push_attaches_provenance_and_sbom_as_referrers() {
    assert!(
        Command::new("skopeo")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "skopeo is not installed (scripts/setup.sh installs it)"
    );
    let (b, ctx) = setup();
    let reg = registry();
    let name = format!("{}/ml/app:v1", reg.1);
    b.ok(&["build", "-q", "-t", &name, ctx.to_str().unwrap()]);
    let mut push = b.command();
    push.env("DOCKER_CONFIG", b.dir.path().join("docker-config"));
    let out = push.args(["push", &name]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&b.ok(&["image", "inspect", &name])).unwrap();
    let subject = v[0]["RepoDigests"][0]
        .as_str()
        .unwrap()
        .split('@')
        .nth(1)
        .unwrap()
        .to_string();

    // The referrers API lists both records, and filters by artifactType.
    let base = format!("http://{}/v2/ml/app/referrers/{subject}", reg.1);
    let index = curl_json(&base);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let mut types: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        vec!["application/spdx+json", "application/vnd.in-toto+json"]
    );
    let sbom_only = curl_json(&format!("{base}?artifactType=application/spdx%2Bjson"));
    let list = sbom_only["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{sbom_only}");
    let sbom_manifest = list[0]["digest"].as_str().unwrap().to_string();
    let headers = sh(&format!(
        "curl -sf -D - -o /dev/null '{base}?artifactType=application/spdx%2Bjson'"
    ));
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("oci-filters-applied: artifacttype"),
        "{headers}"
    );

    // skopeo reads the referrer's manifest and copies it (with its SBOM layer) elsewhere.
    let m: Value = serde_json::from_str(&sh(&format!(
        "skopeo inspect --raw --tls-verify=false docker://{}/ml/app@{sbom_manifest}",
        reg.1
    )))
    .unwrap();
    assert_eq!(m["subject"]["digest"], subject.as_str());
    assert_eq!(m["artifactType"], "application/spdx+json");
    let layout = b.dir.path().join("sbom-layout");
    sh(&format!(
        "skopeo copy --quiet --src-tls-verify=false docker://{}/ml/app@{sbom_manifest} oci:{}:sbom",
        reg.1,
        layout.display()
    ));
    let layer = m["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .replace("sha256:", "");
    let spdx: Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(&layer)).unwrap())
            .unwrap();
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    let names: Vec<&str> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["versionInfo"].as_str().and(p["name"].as_str()))
        .collect();
    assert_eq!(
        names,
        vec!["numpy", "opencv-python", "scikit-learn", "scipy"]
    );
}

/// A registry that predates the referrers API (Debian's docker-registry, distribution 2.8):
/// its manifest PUT has no `OCI-Subject` header, so `push` keeps the referrers in the tag
/// schema's index, `sha256-<hex of the subject>`.
#[test]
fn push_to_an_older_registry_uses_the_referrers_tag_schema() {
    assert!(
        Path::new("/usr/bin/docker-registry").exists(),
        "docker-registry is not installed (scripts/setup.sh installs it)"
    );
    let (b, ctx) = setup();
    let dir = b.dir.path().join("distribution");
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("storage").display()
        ),
    )
    .unwrap();
    let mut child = Command::new("/usr/bin/docker-registry")
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    common::wait_for(
        "docker-registry to listen",
        std::time::Duration::from_secs(30),
        || std::net::TcpStream::connect(&addr).is_ok(),
    );
    let result = std::panic::catch_unwind(|| {
        let name = format!("{addr}/ml/app:v1");
        b.ok(&["build", "-q", "-t", &name, ctx.to_str().unwrap()]);
        let mut push = b.command();
        push.env("DOCKER_CONFIG", b.dir.path().join("docker-config"));
        let out = push.args(["push", &name]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_str(&b.ok(&["image", "inspect", &name])).unwrap();
        let subject = v[0]["RepoDigests"][0]
            .as_str()
            .unwrap()
            .split('@')
            .nth(1)
            .unwrap()
            .to_string();
        let index: Value = serde_json::from_str(&sh(&format!(
            "curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' http://{addr}/v2/ml/app/manifests/{}",
            subject.replace(':', "-")
        )))
        .unwrap();
        let mut types: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["artifactType"].as_str().unwrap())
            .collect();
        types.sort();
        assert_eq!(
            types,
            vec!["application/spdx+json", "application/vnd.in-toto+json"]
        );
        // Each listed manifest is there and names the image as its subject.
        for m in index["manifests"].as_array().unwrap() {
            let raw: Value = serde_json::from_str(&sh(&format!(
                "skopeo inspect --raw --tls-verify=false docker://{addr}/ml/app@{}",
                m["digest"].as_str().unwrap()
            )))
            .unwrap();
            assert_eq!(raw["subject"]["digest"], subject.as_str());
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Through `berth serve`, `docker build` (the classic builder's API) shows the findings as the
/// classic builder's warnings.
#[test]
fn docker_build_through_the_api_shows_the_findings() {
    let (b, ctx) = setup();
    let s = common::serve::Server::start_with(&b, "python_checks", Stdio::null());
    let (code, out, err) = s.docker(&["build", "-t", "app:api", ctx.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("[Warning] requirements.txt:2: numpy>=1.2 has no exact version"),
        "{out}"
    );
    assert!(out.contains("Successfully tagged app:api"), "{out}");
}
