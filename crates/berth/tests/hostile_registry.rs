//! Hostile registries and archives against the CLI: small HTTP servers on 127.0.0.1 (std
//! threads) that serve gzip bombs, images too deep to mount, blobs longer than their
//! descriptors, or nothing at all, and the same bombs through `load` and `import`. The limits
//! are made small through their environment variables so that each case takes seconds; after
//! every refusal the store must be exactly as it was, with nothing left in staging.

mod common;

use common::{sh, Berth};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the fake registry does with one request.
enum Reply {
    /// Status line and headers (without the blank line), then the body.
    Full(String, Vec<u8>),
    /// The head, then the body one byte every 100 ms, until the client hangs up.
    Trickle(String),
    /// The head (no length), then zeros as fast as the client takes them (at most 1 GiB).
    Flood(String),
    /// Nothing at all, until the client hangs up.
    Silent,
}

type Handler = dyn Fn(&str) -> Reply + Send + Sync;

struct Fake {
    addr: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for sock in l.incoming() {
                let Ok(sock) = sock else { return };
                let handler = handler.clone();
                let seen = seen.clone();
                std::thread::spawn(move || serve(sock, &*handler, &seen));
            }
        });
        Fake { addr, requests }
    }

    /// The request lines received (`GET /v2/x/blobs/sha256:… HTTP/1.1`).
    fn lines(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.lines().next().unwrap_or_default().to_string())
            .collect()
    }
}

fn serve(mut sock: TcpStream, handler: &Handler, seen: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.first() == Some(&0x16) {
            return; // TLS: plain HTTP only, the client falls back to http
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    seen.lock().unwrap().push(head.clone());
    match handler(&head) {
        Reply::Full(h, body) => {
            let _ = sock.write_all(
                format!(
                    "{h}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = sock.write_all(&body);
        }
        Reply::Trickle(h) => {
            let _ = sock.write_all(format!("{h}\r\nConnection: close\r\n\r\n").as_bytes());
            while sock.write_all(b" ").is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Reply::Flood(h) => {
            let _ = sock.write_all(format!("{h}\r\nConnection: close\r\n\r\n").as_bytes());
            let zeros = vec![0u8; 64 << 10];
            for _ in 0..(1 << 14) {
                if sock.write_all(&zeros).is_err() {
                    break;
                }
            }
        }
        Reply::Silent => {
            let _ = sock.set_read_timeout(Some(Duration::from_secs(60)));
            let _ = sock.read(&mut buf);
        }
    }
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// An image as a registry serves it: manifest bytes and blobs by digest.
struct Image {
    manifest: Vec<u8>,
    blobs: HashMap<String, Vec<u8>>,
}

impl Image {
    /// `layers`: (compressed bytes, diff ID, size the descriptor claims).
    fn new(layers: Vec<(Vec<u8>, String, u64)>) -> Image {
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": host_arch(),
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.1.clone()).collect::<Vec<_>>()},
        }))
        .unwrap();
        let mut blobs = HashMap::new();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(&config), "size": config.len()},
            "layers": layers.iter().map(|(bytes, _, size)| serde_json::json!({
                "mediaType": OCI_LAYER_GZIP, "digest": sha256(bytes), "size": size,
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        blobs.insert(sha256(&config), config);
        for (bytes, _, _) in layers {
            blobs.insert(sha256(&bytes), bytes);
        }
        Image { manifest, blobs }
    }

    /// A handler serving this image under any repository and tag; `blob` may answer a blob
    /// request itself (by digest) instead.
    fn handler(
        self,
        blob: impl Fn(&str) -> Option<Reply> + Send + Sync + 'static,
    ) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
        move |head: &str| {
            let line = head.lines().next().unwrap_or_default();
            let path = line.split_whitespace().nth(1).unwrap_or_default();
            if path == "/v2/" {
                return Reply::Full("HTTP/1.1 200 OK".into(), b"{}".to_vec());
            }
            if path.contains("/manifests/") {
                return Reply::Full(
                    format!("HTTP/1.1 200 OK\r\nContent-Type: {OCI_MANIFEST}"),
                    self.manifest.clone(),
                );
            }
            if let Some((_, digest)) = path.split_once("/blobs/") {
                if let Some(r) = blob(digest) {
                    return r;
                }
                if let Some(b) = self.blobs.get(digest) {
                    return Reply::Full("HTTP/1.1 200 OK".into(), b.clone());
                }
            }
            Reply::Full("HTTP/1.1 404 Not Found".into(), Vec::new())
        }
    }
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Runs berth with extra environment variables.
fn run_env(b: &Berth, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = b.command();
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args).output().unwrap()
}

/// Requires exit status 1; returns stderr.
fn fails_with(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

/// Nothing in the store: no images, blobs, layers or staging leftovers.
fn assert_untouched(b: &Berth) {
    assert_eq!(b.ok(&["images", "-q", "-a"]).trim(), "");
    assert!(b.blobs().is_empty(), "blobs: {:?}", b.blobs());
    assert!(b.layer_dirs().is_empty(), "layers: {:?}", b.layer_dirs());
    assert!(
        b.staged_leftovers().is_empty(),
        "staging: {:?}",
        b.staged_leftovers()
    );
}

/// A gzip bomb in miniature: a layer holding 16 MiB of zeros, compressed about a thousand
/// times. Returns (directory, compressed bytes, diff ID).
fn bomb(dir: &Path) -> (PathBuf, Vec<u8>, String) {
    let d = dir.join("bomb");
    std::fs::create_dir_all(d.join("rootfs")).unwrap();
    sh(&format!(
        "cd {} && head -c 16M /dev/zero > rootfs/zeros && tar -C rootfs -cf layer.tar zeros && gzip -9 -c layer.tar > layer.tar.gz",
        d.display()
    ));
    let tar = std::fs::read(d.join("layer.tar")).unwrap();
    let gz = std::fs::read(d.join("layer.tar.gz")).unwrap();
    assert!(gz.len() < 100 << 10, "{}", gz.len());
    (d, gz, sha256(&tar))
}

/// Small limits: a layer may unpack to max(10 × its compressed size, 1 MiB).
const SMALL_LIMITS: &[(&str, &str)] = &[
    ("BERTH_LAYER_MAX_RATIO", "10"),
    ("BERTH_LAYER_RATIO_FLOOR", "1m"),
];

#[test]
fn a_gzip_bomb_stops_early_in_pull_load_and_import() {
    let b = Berth::new();
    let (dir, gz, diff_id) = bomb(b.dir.path());
    let size = gz.len() as u64;
    let image = Image::new(vec![(gz.clone(), diff_id.clone(), size)]);
    let config = image_config(&image);
    let fake = Fake::start(image.handler(|_| None));
    let name = format!("{}/bomb:latest", fake.addr);

    // pull
    let t = Instant::now();
    let err = fails_with(&run_env(&b, SMALL_LIMITS, &["pull", &name]));
    assert!(
        err.contains(&format!(
            "layer {} unpacks to more than 1048576 bytes",
            sha256(&gz)
        )) && err.contains("decompression bomb")
            && err.contains("BERTH_LAYER_MAX_RATIO"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert_untouched(&b);

    // load, from a file and from stdin
    std::fs::write(dir.join("config.json"), &config).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        br#"[{"Config":"config.json","RepoTags":["bomb:latest"],"Layers":["layer.tar.gz"]}]"#,
    )
    .unwrap();
    sh(&format!(
        "cd {} && tar -cf archive.tar manifest.json config.json layer.tar.gz",
        dir.display()
    ));
    let archive = dir.join("archive.tar");
    let err = fails_with(&run_env(
        &b,
        SMALL_LIMITS,
        &["load", "-i", archive.to_str().unwrap()],
    ));
    assert!(
        err.contains("layer layer.tar.gz unpacks to more than 1048576 bytes")
            && err.contains("decompression bomb"),
        "{err}"
    );
    assert_untouched(&b);
    let mut c = b.command();
    for (k, v) in SMALL_LIMITS {
        c.env(k, v);
    }
    let out = c
        .arg("load")
        .stdin(std::fs::File::open(&archive).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = fails_with(&out);
    assert!(err.contains("decompression bomb"), "{err}");
    assert_untouched(&b);

    // import: the tarball's length is unknown, the bound follows what was read so far
    let gz_path = dir.join("layer.tar.gz");
    let err = fails_with(&run_env(
        &b,
        SMALL_LIMITS,
        &["import", gz_path.to_str().unwrap(), "bomb2"],
    ));
    assert!(
        err.contains("unpacks to more than 1048576 bytes") && err.contains("decompression bomb"),
        "{err}"
    );
    assert_untouched(&b);

    // With the default bounds the same image is only a 16 MiB layer: it pulls.
    let out = b.ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
}

fn image_config(image: &Image) -> Vec<u8> {
    let m: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    let d = m["config"]["digest"].as_str().unwrap();
    image.blobs[d].clone()
}

#[test]
fn images_deeper_than_125_layers_are_refused_before_any_download() {
    let b = Berth::new();
    let fake_layers = |n: usize| -> Vec<(Vec<u8>, String, u64)> {
        (0..n)
            .map(|i| {
                let bytes = format!("layer {i}").into_bytes();
                (bytes, format!("sha256:{i:064x}"), 7)
            })
            .collect()
    };
    let fake = Fake::start(Image::new(fake_layers(126)).handler(|_| None));
    let err = fails_with(&b.run(&["pull", &format!("{}/deep:latest", fake.addr)]));
    assert!(err.contains("max depth exceeded"), "{err}");
    assert!(err.contains("126 layers"), "{err}");
    let blobs: Vec<String> = fake
        .lines()
        .into_iter()
        .filter(|l| l.contains("/blobs/"))
        .collect();
    assert!(blobs.is_empty(), "fetched {blobs:?}");
    assert_untouched(&b);

    // 125 layers are within the limit: the pull goes on to fetch the configuration.
    let fake = Fake::start(Image::new(fake_layers(125)).handler(|_| None));
    let out = b.run(&["pull", &format!("{}/deep:latest", fake.addr)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("max depth exceeded"), "{err}");
    assert!(
        fake.lines().iter().any(|l| l.contains("/blobs/")),
        "{:?}",
        fake.lines()
    );

    // load: refused before a layer is unpacked.
    let b = Berth::new();
    let dir = b.dir.path().join("deep");
    std::fs::create_dir_all(&dir).unwrap();
    let image = Image::new(fake_layers(126));
    std::fs::write(dir.join("config.json"), image_config(&image)).unwrap();
    let layers: Vec<String> = (0..126).map(|i| format!("\"l{i}.tar\"")).collect();
    std::fs::write(
        dir.join("manifest.json"),
        format!(
            r#"[{{"Config":"config.json","RepoTags":["deep:latest"],"Layers":[{}]}}]"#,
            layers.join(",")
        ),
    )
    .unwrap();
    sh(&format!(
        "cd {} && tar -cf archive.tar manifest.json config.json",
        dir.display()
    ));
    let err = fails_with(&b.run(&["load", "-i", dir.join("archive.tar").to_str().unwrap()]));
    assert!(err.contains("max depth exceeded"), "{err}");
    assert_untouched(&b);
}

#[test]
fn a_slow_silent_or_flooding_registry_fails_pull_with_the_limit_named() {
    let b = Berth::new();
    let one_second = [("BERTH_REGISTRY_TIMEOUT", "1")];

    // The manifest trickles in, a byte every 100 ms.
    let fake = Fake::start(|head: &str| {
        if head.starts_with("GET /v2/ ") {
            Reply::Full("HTTP/1.1 200 OK".into(), b"{}".to_vec())
        } else {
            Reply::Trickle(format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {OCI_MANIFEST}\r\nContent-Length: 1000"
            ))
        }
    });
    let t = Instant::now();
    let err = fails_with(&run_env(
        &b,
        &one_second,
        &["pull", &format!("{}/slow:latest", fake.addr)],
    ));
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert!(
        err.contains(&fake.addr)
            && err.contains("stalled: less than 1024 bytes/s over 1s")
            && err.contains("BERTH_REGISTRY_TIMEOUT"),
        "{err}"
    );
    assert_untouched(&b);

    // Nothing is ever answered.
    let fake = Fake::start(|_: &str| Reply::Silent);
    let t = Instant::now();
    let err = fails_with(&run_env(
        &b,
        &one_second,
        &["pull", &format!("{}/silent:latest", fake.addr)],
    ));
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert!(
        err.contains(&format!("registry {} did not answer within 1s", fake.addr))
            && err.contains("BERTH_REGISTRY_TIMEOUT"),
        "{err}"
    );

    // A layer whose descriptor says 1 KiB streams without end.
    let layer = b"a one-kilobyte layer, allegedly".to_vec();
    let layer_digest = sha256(&layer);
    let image = Image::new(vec![(layer, format!("sha256:{:064x}", 1), 1024)]);
    let flooded = layer_digest.clone();
    let fake = Fake::start(
        image.handler(move |d| (d == flooded).then(|| Reply::Flood("HTTP/1.1 200 OK".into()))),
    );
    let err = fails_with(&b.run(&["pull", &format!("{}/flood:latest", fake.addr)]));
    assert!(
        err.contains(&format!(
            "blob {layer_digest} is longer than the 1024 bytes announced"
        )),
        "{err}"
    );
    assert_untouched(&b);

    // A limit that does not parse is named.
    let err = fails_with(&run_env(
        &b,
        &[("BERTH_REGISTRY_TIMEOUT", "soon")],
        &["pull", &format!("{}/flood:latest", fake.addr)],
    ));
    assert!(
        err.contains("invalid BERTH_REGISTRY_TIMEOUT=\"soon\""),
        "{err}"
    );
}

#[test]
fn import_from_a_url_that_trickles_or_never_answers_fails() {
    let b = Berth::new();
    let one_second = [("BERTH_REGISTRY_TIMEOUT", "1")];
    let fake = Fake::start(|head: &str| {
        if head.contains("/silent") {
            Reply::Silent
        } else {
            Reply::Trickle("HTTP/1.1 200 OK\r\nContent-Length: 100000".into())
        }
    });
    for (path, want) in [
        (
            "trickle.tar",
            "Error: download of URL stalled: less than 1024 bytes/s over 1s",
        ),
        ("silent.tar", "BERTH_REGISTRY_TIMEOUT"),
    ] {
        let url = format!("http://{}/{path}", fake.addr);
        let t = Instant::now();
        let err = fails_with(&run_env(&b, &one_second, &["import", &url, "x"]));
        assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
        let want = want.replace("URL", &url);
        assert!(err.contains(&want) && err.contains(&url), "{err}");
        assert_untouched(&b);
    }
}

#[test]
fn registry_serve_refuses_token_auth_without_htpasswd() {
    let b = Berth::new();
    let storage = b.dir.path().join("storage");
    let mut child = Command::new(common::bin())
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--token-auth"])
        .arg("--storage")
        .arg(&storage)
        .env("BERTH_ROOT", b.root())
        .env("BERTH_RUNROOT", b.runroot())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("registry serve --token-auth without --htpasswd started serving");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("--token-auth without --htpasswd") && err.contains("--read-only"),
        "{err}"
    );
}
