#![allow(dead_code)]

use std::path::{Path, PathBuf};

use berth_registry::{spawn, Digest, RunningServer, ServerConfig};
use serde_json::{json, Value};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub struct TestServer {
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub http: reqwest::Client,
}

impl TestServer {
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    pub fn u(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }
}

pub fn config(dir: &Path) -> ServerConfig {
    ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.join("root"))
}

pub async fn start_with(f: impl FnOnce(&mut ServerConfig, &Path)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    f(&mut cfg, dir.path());
    let tls = cfg.tls_cert.is_some();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = spawn(listener, cfg).await.unwrap();
    let url = server.url(tls);
    let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if tls {
        let pem = std::fs::read(fixture("cert.pem")).unwrap();
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    TestServer {
        server,
        dir,
        url,
        http: b.build().unwrap(),
    }
}

pub async fn start() -> TestServer {
    start_with(|_, _| {}).await
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn digest(data: &[u8]) -> Digest {
    Digest::sha256(data)
}

/// Write an htpasswd file with one bcrypt entry.
pub fn htpasswd(dir: &Path, user: &str, pass: &str) -> PathBuf {
    let p = dir.join("htpasswd");
    let h = bcrypt::hash(pass, 4).unwrap().replacen("$2b$", "$2y$", 1);
    std::fs::write(&p, format!("{user}:{h}\n")).unwrap();
    p
}

/// First error code of a JSON error body.
pub async fn error_code(r: reqwest::Response) -> String {
    let v: Value = r.json().await.unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

/// Push a blob with a single POST.
pub async fn push_blob(c: &reqwest::Client, url: &str, name: &str, data: &[u8]) -> Digest {
    let d = digest(data);
    let r = c
        .post(format!("{url}/v2/{name}/blobs/uploads/?digest={d}"))
        .header("Content-Type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    d
}

pub fn image_manifest(config: &Digest, config_len: usize, layers: &[(&Digest, usize)]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": config_len},
        "layers": layers.iter().map(|(d, n)| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": n
        })).collect::<Vec<_>>(),
    })
}

/// Push a small image (config + one layer + manifest) under `tag`;
/// returns the manifest's digest and bytes.
pub async fn push_image(
    c: &reqwest::Client,
    url: &str,
    name: &str,
    tag: &str,
    seed: &str,
) -> (Digest, Vec<u8>) {
    let config = format!("{{\"seed\":\"{seed}\"}}").into_bytes();
    let layer = format!("layer-{seed}").into_bytes();
    let cd = push_blob(c, url, name, &config).await;
    let ld = push_blob(c, url, name, &layer).await;
    let m = serde_json::to_vec(&image_manifest(&cd, config.len(), &[(&ld, layer.len())])).unwrap();
    let r = c
        .put(format!("{url}/v2/{name}/manifests/{tag}"))
        .header("Content-Type", OCI_MANIFEST)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    (digest(&m), m)
}
