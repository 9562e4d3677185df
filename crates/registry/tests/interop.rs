//! Interoperability with skopeo (containers/image), when it is installed:
//! copy an OCI layout into the server and back out, open and with auth.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::json;

fn skopeo() -> bool {
    Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A one-layer OCI image layout at `dir` tagged `v1`.
fn write_layout(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = digest(data);
        std::fs::write(blobs.join(d.hex()), data).unwrap();
        d
    };
    // An (uncompressed) tar with one file.
    let mut tar = vec![0u8; 512];
    tar[..5].copy_from_slice(b"hello");
    tar[100..107].copy_from_slice(b"0000644");
    tar[124..135].copy_from_slice(b"00000000006");
    tar[156] = b'0';
    tar[257..262].copy_from_slice(b"ustar");
    tar[263..265].copy_from_slice(b"00");
    tar[148..156].copy_from_slice(b"        ");
    let sum: u32 = tar.iter().map(|&b| b as u32).sum();
    tar[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut content = b"world\n".to_vec();
    content.resize(512, 0);
    tar.extend_from_slice(&content);
    tar.extend_from_slice(&[0u8; 1024]);
    let layer = put(&tar);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]},
        "config": {}
    }))
    .unwrap();
    let cd = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": tar.len()}]
    }))
    .unwrap();
    let md = put(&manifest);
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len(),
                           "annotations": {"org.opencontainers.image.ref.name": "v1"}}]
        }))
        .unwrap(),
    )
    .unwrap();
}

fn run(args: &[&str]) -> std::process::Output {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

async fn round_trip(s: &TestServer, creds: Option<&str>) {
    let src = s.dir.path().join("layout");
    write_layout(&src);
    let host = s.server.addr().to_string();
    let dst = format!("docker://{host}/interop/app:v1");
    let src_ref = format!("oci:{}:v1", src.display());
    let out_dir = s.dir.path().join("out");
    let out_ref = format!("oci:{}:v1", out_dir.display());
    let mut push = vec!["copy", "--dest-tls-verify=false"];
    let mut pull = vec!["copy", "--src-tls-verify=false"];
    let mut inspect = vec!["inspect", "--tls-verify=false"];
    if let Some(c) = creds {
        push.extend(["--dest-creds", c]);
        pull.extend(["--src-creds", c]);
        inspect.extend(["--creds", c]);
    }
    push.extend([src_ref.as_str(), dst.as_str()]);
    pull.extend([dst.as_str(), out_ref.as_str()]);
    inspect.push(dst.as_str());
    let (push, pull, inspect) = (
        push.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        pull.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        inspect.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    let out = tokio::task::spawn_blocking(move || {
        run(&args(&push));
        let out = run(&args(&inspect));
        run(&args(&pull));
        out
    })
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    assert!(out_dir.join("index.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copy_open_registry() {
    assert!(
        skopeo(),
        "skopeo is not installed (scripts/setup.sh installs it)"
    );
    let s = start().await;
    round_trip(&s, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copy_with_basic_auth() {
    assert!(
        skopeo(),
        "skopeo is not installed (scripts/setup.sh installs it)"
    );
    let s = start_with(|c, dir| c.htpasswd = Some(htpasswd(dir, "sk", "opeo"))).await;
    round_trip(&s, Some("sk:opeo")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copy_with_token_auth() {
    assert!(
        skopeo(),
        "skopeo is not installed (scripts/setup.sh installs it)"
    );
    let s = start_with(|c, dir| {
        c.htpasswd = Some(htpasswd(dir, "sk", "opeo"));
        c.token_auth = true;
    })
    .await;
    round_trip(&s, Some("sk:opeo")).await;
}
