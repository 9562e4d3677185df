//! The registry client against berth's own server (open, Basic auth,
//! bearer tokens, TLS) and against small misbehaving fake servers.

mod common;

use berth_registry::client::{
    select_platform, store_credentials, Client, ClientConfig, ClientError, Credential, Platform,
};
use berth_registry::Digest;
use common::*;
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn host(s: &TestServer) -> String {
    s.server.addr().to_string()
}

fn client_with_config_dir(dir: &std::path::Path) -> Client {
    Client::new(ClientConfig {
        docker_config_dir: Some(dir.to_path_buf()),
        ..Default::default()
    })
    .unwrap()
}

async fn read_all(c: &Client, reg: &str, repo: &str, d: &Digest) -> Result<Vec<u8>, ClientError> {
    let (_, mut s) = c.get_blob(reg, repo, d, None).await?;
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Push a config, a layer and a manifest through the client; returns the manifest digest.
async fn push_image_with(c: &Client, reg: &str, repo: &str, tag: &str) -> (Digest, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let cd = Digest::sha256(&config);
    let ld = Digest::sha256(&layer);
    if c.blob_exists(reg, repo, &cd).await.unwrap().is_none() {
        c.push_blob(
            reg,
            repo,
            &cd,
            Some(config.len() as u64),
            std::io::Cursor::new(config.clone()),
        )
        .await
        .unwrap();
    }
    c.push_blob_chunked(
        reg,
        repo,
        &ld,
        std::io::Cursor::new(layer.clone()),
        64 * 1024,
    )
    .await
    .unwrap();
    let m = serde_json::to_vec(&image_manifest(&cd, config.len(), &[(&ld, layer.len())])).unwrap();
    let d = c
        .put_manifest(reg, repo, tag, OCI_MANIFEST, &m)
        .await
        .unwrap();
    assert_eq!(d, Digest::sha256(&m));
    (d, layer)
}

#[tokio::test]
async fn open_registry_round_trip() {
    let s = start().await;
    let reg = host(&s);
    let c = client_with_config_dir(s.dir.path());
    c.ping(&reg).await.unwrap();
    let (md, layer) = push_image_with(&c, &reg, "app/web", "v1").await;
    let m = c.get_manifest(&reg, "app/web", "v1").await.unwrap();
    assert_eq!(m.digest, md);
    assert_eq!(m.media_type, OCI_MANIFEST);
    let by_digest = c
        .get_manifest(&reg, "app/web", &md.to_string())
        .await
        .unwrap();
    assert_eq!(by_digest, m);
    let (hd, mt, size) = c
        .head_manifest(&reg, "app/web", "v1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (hd, mt.as_str(), size),
        (md.clone(), OCI_MANIFEST, m.bytes.len() as u64)
    );
    assert!(c
        .head_manifest(&reg, "app/web", "nope")
        .await
        .unwrap()
        .is_none());
    let ld = Digest::sha256(&layer);
    assert_eq!(
        c.blob_exists(&reg, "app/web", &ld).await.unwrap(),
        Some(layer.len() as u64)
    );
    assert_eq!(read_all(&c, &reg, "app/web", &ld).await.unwrap(), layer);
    let (size, mut r) = c.get_blob_reader(&reg, "app/web", &ld, None).await.unwrap();
    assert_eq!(size, Some(layer.len() as u64));
    let mut buf = Vec::new();
    r.read_to_end(&mut buf).await.unwrap();
    assert_eq!(buf, layer);
    // Cross-repository mount, and a refused one.
    assert!(c
        .mount_blob(&reg, "app/other", "app/web", &ld)
        .await
        .unwrap());
    assert_eq!(
        c.blob_exists(&reg, "app/other", &ld).await.unwrap(),
        Some(layer.len() as u64)
    );
    assert!(!c
        .mount_blob(&reg, "app/third", "app/web", &Digest::sha256(b"absent"))
        .await
        .unwrap());
    // Tags.
    c.put_manifest(&reg, "app/web", "v2", OCI_MANIFEST, &m.bytes)
        .await
        .unwrap();
    assert_eq!(
        c.list_tags(&reg, "app/web").await.unwrap(),
        vec!["v1", "v2"]
    );
    // Empty blob, chunked.
    let e = Digest::sha256(b"");
    c.push_blob_chunked(&reg, "app/web", &e, std::io::Cursor::new(Vec::new()), 10)
        .await
        .unwrap();
    assert_eq!(c.blob_exists(&reg, "app/web", &e).await.unwrap(), Some(0));
}

#[tokio::test]
async fn errors_have_docker_wording() {
    let s = start().await;
    let reg = host(&s);
    let c = client_with_config_dir(s.dir.path());
    push_image_with(&c, &reg, "exists", "latest").await;
    let e = c.get_manifest(&reg, "exists", "missing").await.unwrap_err();
    assert!(matches!(e, ClientError::ManifestUnknown { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("manifest for {reg}/exists:missing not found: manifest unknown: manifest unknown")
    );
    let e = read_all(&c, &reg, "exists", &Digest::sha256(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::BlobUnknown { .. }), "{e:?}");
    // Pushing content under the wrong digest.
    let e = c
        .push_blob(
            &reg,
            "exists",
            &Digest::sha256(b"claimed"),
            None,
            std::io::Cursor::new(b"actual".to_vec()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Registry {
                status: 400,
                code: Some(berth_registry::ErrorCode::DigestInvalid),
                ..
            }
        ),
        "{e:?}"
    );
    // A manifest put under a digest it does not have is refused locally.
    let e = c
        .put_manifest(
            &reg,
            "exists",
            &Digest::sha256(b"other").to_string(),
            OCI_MANIFEST,
            b"{}",
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::DigestMismatch { .. }));
    // Invalid names never reach the network.
    assert!(matches!(
        c.get_manifest(&reg, "../etc", "latest").await,
        Err(ClientError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn unreachable_host() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let dir = tempfile::tempdir().unwrap();
    let c = client_with_config_dir(dir.path());
    let e = c.ping(&addr.to_string()).await.unwrap_err();
    assert!(matches!(e, ClientError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains("unreachable"), "{e}");
}

#[tokio::test]
async fn basic_auth_flow() {
    let s = start_with(|c, dir| c.htpasswd = Some(htpasswd(dir, "alice", "pw"))).await;
    let reg = host(&s);
    let anon = client_with_config_dir(s.dir.path());
    let e = anon
        .get_manifest(&reg, "private/app", "latest")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::PullAccessDenied { .. }), "{e:?}");
    assert!(e.to_string().starts_with(&format!("pull access denied for {reg}/private/app, repository does not exist or may require 'docker login'")));
    let e = anon
        .push_blob(
            &reg,
            "private/app",
            &Digest::sha256(b"a"),
            None,
            std::io::Cursor::new(b"a".to_vec()),
        )
        .await
        .unwrap_err();
    // Without credentials a push is told to log in, not that access was denied.
    assert!(
        matches!(e, ClientError::AuthenticationRequired { .. }),
        "{e:?}"
    );
    assert!(e
        .to_string()
        .starts_with("unauthorized: authentication required"));
    // Wrong password.
    let c = client_with_config_dir(s.dir.path());
    let e = c.login(&reg, "alice", "nope").await.unwrap_err();
    assert!(matches!(e, ClientError::Unauthorized { .. }), "{e:?}");
    assert!(e.to_string().contains("incorrect username or password"));
    // Right password.
    let c = client_with_config_dir(s.dir.path());
    c.login(&reg, "alice", "pw").await.unwrap();
    let (md, _) = push_image_with(&c, &reg, "private/app", "latest").await;
    assert_eq!(
        c.get_manifest(&reg, "private/app", "latest")
            .await
            .unwrap()
            .digest,
        md
    );
    // Credentials from config.json.
    let cfgdir = s.dir.path().join("docker");
    store_credentials(
        &cfgdir,
        &reg,
        &Credential::Basic {
            username: "alice".into(),
            password: "pw".into(),
        },
    )
    .unwrap();
    let c = client_with_config_dir(&cfgdir);
    assert_eq!(
        c.get_manifest(&reg, "private/app", "latest")
            .await
            .unwrap()
            .digest,
        md
    );
}

#[tokio::test]
async fn bearer_token_flow() {
    let s = start_with(|c, dir| {
        c.htpasswd = Some(htpasswd(dir, "bob", "hunter2"));
        c.token_auth = true;
    })
    .await;
    let reg = host(&s);
    // Anonymous: a token is issued but grants nothing.
    let anon = client_with_config_dir(s.dir.path());
    anon.ping(&reg).await.unwrap();
    let e = anon
        .get_manifest(&reg, "team/app", "latest")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::PullAccessDenied { .. }), "{e:?}");
    // Wrong password, at the token endpoint.
    let c = client_with_config_dir(s.dir.path());
    let e = c.login(&reg, "bob", "wrong").await.unwrap_err();
    assert!(matches!(e, ClientError::Unauthorized { .. }), "{e:?}");
    // From config.json.
    let cfgdir = s.dir.path().join("docker");
    store_credentials(
        &cfgdir,
        &reg,
        &Credential::Basic {
            username: "bob".into(),
            password: "hunter2".into(),
        },
    )
    .unwrap();
    let c = client_with_config_dir(&cfgdir);
    let (md, layer) = push_image_with(&c, &reg, "team/app", "latest").await;
    // A second repository needs a token with another scope.
    assert!(c
        .mount_blob(&reg, "team/copy", "team/app", &Digest::sha256(&layer))
        .await
        .unwrap());
    assert_eq!(
        c.get_manifest(&reg, "team/app", "latest")
            .await
            .unwrap()
            .digest,
        md
    );
    assert_eq!(
        read_all(&c, &reg, "team/copy", &Digest::sha256(&layer))
            .await
            .unwrap(),
        layer
    );
}

#[tokio::test]
async fn bearer_token_refresh_on_401() {
    let s = start_with(|c, dir| {
        c.htpasswd = Some(htpasswd(dir, "dave", "pw"));
        c.token_auth = true;
        c.token_ttl = std::time::Duration::from_millis(200);
    })
    .await;
    let reg = host(&s);
    let c = client_with_config_dir(s.dir.path());
    c.set_credentials(
        &reg,
        Credential::Basic {
            username: "dave".into(),
            password: "pw".into(),
        },
    )
    .await;
    let (md, _) = push_image_with(&c, &reg, "pub/app", "latest").await;
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // The cached token has expired on the server: the client gets 401,
        // fetches a new token and retries.
        assert_eq!(
            c.get_manifest(&reg, "pub/app", "latest")
                .await
                .unwrap()
                .digest,
            md
        );
    }
}

#[tokio::test]
async fn identity_token_flow() {
    let s = start_with(|c, dir| {
        c.htpasswd = Some(htpasswd(dir, "carol", "pw"));
        c.token_auth = true;
    })
    .await;
    let reg = host(&s);
    let v: serde_json::Value = s
        .http
        .post(s.u("/token"))
        .body("grant_type=password&username=carol&password=pw&service=berth-registry&access_type=offline&client_id=t")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = v["refresh_token"].as_str().unwrap().to_string();
    let cfgdir = s.dir.path().join("docker");
    store_credentials(
        &cfgdir,
        &reg,
        &Credential::IdentityToken {
            username: "carol".into(),
            token: refresh,
        },
    )
    .unwrap();
    let c = client_with_config_dir(&cfgdir);
    push_image_with(&c, &reg, "idt/app", "latest").await;
    // A bad refresh token is refused.
    let c = client_with_config_dir(&cfgdir);
    c.set_credentials(
        &reg,
        Credential::IdentityToken {
            username: "carol".into(),
            token: "bogus".into(),
        },
    )
    .await;
    let e = c.get_manifest(&reg, "idt/app", "latest").await.unwrap_err();
    assert!(matches!(e, ClientError::Unauthorized { .. }), "{e:?}");
}

#[tokio::test]
async fn tls_registry_on_loopback() {
    let s = start_with(|c, _| {
        c.tls_cert = Some(fixture("cert.pem"));
        c.tls_key = Some(fixture("key.pem"));
    })
    .await;
    let reg = host(&s);
    // 127.0.0.1 is an insecure registry: HTTPS without certificate checks.
    let c = client_with_config_dir(s.dir.path());
    push_image_with(&c, &reg, "tls/app", "latest").await;
    // A trusted CA works the same.
    let c = Client::new(ClientConfig {
        docker_config_dir: Some(s.dir.path().to_path_buf()),
        root_certificates_pem: vec![std::fs::read(fixture("cert.pem")).unwrap()],
        ..Default::default()
    })
    .unwrap();
    c.get_manifest(&reg, "tls/app", "latest").await.unwrap();
}

#[tokio::test]
async fn platform_selection_from_pushed_index() {
    let s = start().await;
    let reg = host(&s);
    let c = client_with_config_dir(s.dir.path());
    let (amd, _) = push_image_with(&c, &reg, "multi", "amd64").await;
    let size = c
        .get_manifest(&reg, "multi", "amd64")
        .await
        .unwrap()
        .bytes
        .len();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": amd.to_string(), "size": size,
                        "platform": {"os": "linux", "architecture": "amd64"}}],
    }))
    .unwrap();
    c.put_manifest(&reg, "multi", "latest", OCI_INDEX, &index)
        .await
        .unwrap();
    let m = c.get_manifest(&reg, "multi", "latest").await.unwrap();
    assert!(berth_registry::manifest::is_index(&m.media_type));
    let e = select_platform(&m.bytes, &Platform::new("linux", "amd64", None)).unwrap();
    assert_eq!(e.digest, amd);
    assert!(select_platform(&m.bytes, &Platform::new("linux", "arm64", None)).is_err());
}

// ---------------------------------------------------------- fake servers

/// A fake registry that serves one blob. `cut_first` closes the first
/// download halfway through; `content` is what it serves (which may not
/// match the digest asked for).
async fn fake_registry(content: Vec<u8>, cut_first: bool) -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut served_blob = false;
        for _ in 0..20 {
            let Ok((mut sock, _)) = l.accept().await else {
                return;
            };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
                if req.first() == Some(&0x16) {
                    break; // a TLS handshake: this server speaks plain HTTP only
                }
            }
            if req.first() == Some(&0x16) {
                continue;
            }
            let text = String::from_utf8_lossy(&req).to_string();
            let line = text.lines().next().unwrap_or_default().to_string();
            if line.starts_with("GET /v2/ ") {
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                    )
                    .await;
                continue;
            }
            if !line.contains("/blobs/") {
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let range_start = text.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("range: bytes=")
                    .map(|r| r.trim_end_matches('-').parse::<usize>().unwrap())
            });
            let n = content.len();
            match range_start {
                None => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    if cut_first && !served_blob {
                        let _ = sock.write_all(&content[..n / 2]).await;
                        let _ = sock.flush().await;
                        served_blob = true;
                        drop(sock);
                        continue;
                    }
                    let _ = sock.write_all(&content).await;
                }
                Some(s) => {
                    let head = format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {s}-{}/{n}\r\nConnection: close\r\n\r\n",
                        n - s,
                        n - 1
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&content[s..]).await;
                }
            }
        }
    });
    (addr, task)
}

#[tokio::test]
async fn blob_download_resumes_after_a_broken_connection() {
    let content: Vec<u8> = (0..2_000_000u32).map(|i| (i % 241) as u8).collect();
    let d = Digest::sha256(&content);
    let (addr, task) = fake_registry(content.clone(), true).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client_with_config_dir(dir.path());
    let got = read_all(&c, &addr, "some/repo", &d).await.unwrap();
    assert_eq!(got.len(), content.len());
    assert!(got == content);
    task.abort();
}

#[tokio::test]
async fn blob_digest_mismatch_is_detected() {
    let content = b"tampered content".to_vec();
    let claimed = Digest::sha256(b"original content");
    let (addr, task) = fake_registry(content, false).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client_with_config_dir(dir.path());
    let e = read_all(&c, &addr, "some/repo", &claimed)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::DigestMismatch { .. }), "{e:?}");
    // Through the AsyncRead adapter: InvalidData.
    let (_, mut r) = c
        .get_blob_reader(&addr, "some/repo", &claimed, None)
        .await
        .unwrap();
    let mut buf = Vec::new();
    let err = r.read_to_end(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    task.abort();
}
