//! The registry client against hostile registries: small HTTP servers on 127.0.0.1 (std
//! threads) that never answer, trickle, flood, or redirect where they should not. Every limit
//! is set small (a one-second window) so that each test takes a few seconds at most.

use berth_registry::client::{Client, ClientConfig, ClientError, Credential};
use berth_registry::Digest;
use futures_util::StreamExt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the fake registry does with one request.
enum Reply {
    /// A complete response: status line and headers (without the blank line), then the body.
    Full(String, Vec<u8>),
    /// The head, then the body one byte every 100 ms, until the client hangs up.
    Trickle(String),
    /// The head, then zeros as fast as the client takes them, until it hangs up.
    Flood(String),
    /// Nothing at all, until the client hangs up.
    Silent,
    /// Reads whatever is sent (an upload), answers nothing, until the client hangs up.
    Swallow,
}

struct Fake {
    addr: String,
    /// Every request head received, in order.
    requests: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let handler = Arc::new(handler);
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

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(mut sock: TcpStream, handler: &dyn Fn(&str) -> Reply, seen: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.first() == Some(&0x16) {
            return; // a TLS handshake: plain HTTP only, so the client falls back to http
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
            while sock.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Reply::Flood(h) => {
            let _ = sock.write_all(format!("{h}\r\nConnection: close\r\n\r\n").as_bytes());
            let zeros = vec![0u8; 64 << 10];
            // At most 1 GiB: the client must hang up long before.
            for _ in 0..(1 << 14) {
                if sock.write_all(&zeros).is_err() {
                    break;
                }
            }
        }
        Reply::Silent => {
            // Wait for the client to give up and close the connection.
            let _ = sock.set_read_timeout(Some(Duration::from_secs(60)));
            let _ = sock.read(&mut buf);
        }
        Reply::Swallow => {
            let _ = sock.set_read_timeout(Some(Duration::from_secs(60)));
            while matches!(sock.read(&mut buf), Ok(n) if n > 0) {}
        }
    }
}

fn line(head: &str) -> &str {
    head.lines().next().unwrap_or_default()
}

fn ok_v2(head: &str) -> Option<Reply> {
    line(head)
        .starts_with("GET /v2/ ")
        .then(|| Reply::Full("HTTP/1.1 200 OK".into(), b"{}".to_vec()))
}

/// A client with a one-second progress window.
fn client() -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let c = Client::new(ClientConfig {
        docker_config_dir: Some(dir.path().to_path_buf()),
        timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .unwrap();
    (c, dir)
}

/// Reads a blob to its end: the bytes that came through, and how it ended.
async fn drain(
    c: &Client,
    reg: &str,
    d: &Digest,
    size: Option<u64>,
) -> (usize, Result<(), ClientError>) {
    let mut got = 0;
    match c.get_blob(reg, "some/repo", d, size).await {
        Err(e) => (0, Err(e)),
        Ok((_, mut s)) => {
            while let Some(chunk) = s.next().await {
                match chunk {
                    Ok(c) => got += c.len(),
                    Err(e) => return (got, Err(e)),
                }
            }
            (got, Ok(()))
        }
    }
}

#[tokio::test]
async fn a_registry_that_never_answers_times_out() {
    // Not even the API probe is answered.
    let fake = Fake::start(|_| Reply::Silent);
    let (c, _dir) = client();
    let t = Instant::now();
    let e = c.ping(&fake.addr).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(matches!(e, ClientError::Timeout { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&fake.addr) && msg.contains("did not answer within 1s"),
        "{msg}"
    );

    // The probe is answered, the blob request is not.
    let fake = Fake::start(|h| ok_v2(h).unwrap_or(Reply::Silent));
    let t = Instant::now();
    let (_, r) = drain(&c, &fake.addr, &Digest::sha256(b"x"), Some(1)).await;
    let e = r.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(e.to_string().contains("did not answer within 1s"), "{e}");
}

#[tokio::test]
async fn a_registry_that_takes_an_upload_and_never_answers_times_out() {
    let fake = Fake::start(|h| {
        ok_v2(h).unwrap_or_else(|| {
            if line(h).starts_with("POST ") {
                Reply::Full(
                    "HTTP/1.1 202 Accepted\r\nLocation: /v2/some/repo/blobs/uploads/1".into(),
                    Vec::new(),
                )
            } else {
                Reply::Swallow
            }
        })
    });
    let (c, _dir) = client();
    let data = vec![7u8; 1 << 20];
    let t = Instant::now();
    let e = c
        .push_blob(
            &fake.addr,
            "some/repo",
            &Digest::sha256(&data),
            Some(data.len() as u64),
            std::io::Cursor::new(data),
        )
        .await
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(matches!(e, ClientError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("did not answer within 1s"), "{e}");
}

#[tokio::test]
async fn a_trickling_registry_is_cut_off_but_a_slow_steady_one_is_not() {
    let fake = Fake::start(|h| {
        ok_v2(h)
            .unwrap_or_else(|| Reply::Trickle("HTTP/1.1 200 OK\r\nContent-Length: 100000".into()))
    });
    let (c, _dir) = client();
    let d = Digest::sha256(b"never");
    let t = Instant::now();
    let (got, r) = drain(&c, &fake.addr, &d, Some(100_000)).await;
    let e = r.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(got < 100, "{got}");
    assert!(matches!(e, ClientError::Timeout { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("blob {d}"))
            && msg.contains(&fake.addr)
            && msg.contains("stalled: less than 1024 bytes/s over 1s"),
        "{msg}"
    );

    // 64 KiB every 300 ms for about 2.5 s: longer than the window, but never stalled.
    let content: Vec<u8> = (0..512 * 1024u32).map(|i| (i % 251) as u8).collect();
    let d = Digest::sha256(&content);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for sock in l.incoming() {
            let Ok(mut sock) = sock else { return };
            let content = content.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let Ok(n) = sock.read(&mut buf) else { return };
                if n == 0 || buf[0] == 0x16 {
                    return;
                }
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                if line(&head).starts_with("GET /v2/ ") {
                    let _ = sock.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                    );
                    return;
                }
                let _ = sock.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        content.len()
                    )
                    .as_bytes(),
                );
                for part in content.chunks(64 << 10) {
                    std::thread::sleep(Duration::from_millis(300));
                    if sock.write_all(part).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let t = Instant::now();
    let (got, r) = drain(&c, &addr, &d, Some(512 * 1024)).await;
    r.unwrap();
    assert_eq!(got, 512 * 1024);
    assert!(t.elapsed() > Duration::from_secs(2), "{:?}", t.elapsed());
}

#[tokio::test]
async fn a_blob_longer_than_its_descriptor_is_cut_at_the_descriptor_size() {
    // No Content-Length: the body runs until the connection closes.
    let fake = Fake::start(|h| ok_v2(h).unwrap_or_else(|| Reply::Flood("HTTP/1.1 200 OK".into())));
    let (c, _dir) = client();
    let d = Digest::sha256(b"a kilobyte, says the descriptor");
    let t = Instant::now();
    let (got, r) = drain(&c, &fake.addr, &d, Some(1024)).await;
    let e = r.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(got <= 1024, "{got} bytes came through");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("blob {d} is longer than the 1024 bytes")),
        "{msg}"
    );

    // An announced length beyond the descriptor's is refused before a byte is read.
    let fake = Fake::start(|h| {
        ok_v2(h)
            .unwrap_or_else(|| Reply::Flood("HTTP/1.1 200 OK\r\nContent-Length: 1073741824".into()))
    });
    let (got, r) = drain(&c, &fake.addr, &d, Some(1024)).await;
    assert_eq!(got, 0);
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.contains(&format!(
            "blob {d} is 1073741824 bytes long, but its descriptor says 1024"
        )),
        "{msg}"
    );
}

#[tokio::test]
async fn redirects_to_metadata_addresses_other_schemes_and_loops_are_refused() {
    let fake = Fake::start(|h| {
        ok_v2(h).unwrap_or_else(|| {
            let l = line(h);
            let to = if l.contains("/blobs/sha256:aa") {
                "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_string()
            } else if l.contains("/blobs/sha256:bb") {
                "http://[fe80::1]:5000/blob".to_string()
            } else if l.contains("/blobs/sha256:cc") {
                "file:///etc/shadow".to_string()
            } else if l.contains("/blobs/sha256:dd") {
                "http://metadata.google.internal/computeMetadata/v1/".to_string()
            } else {
                // A loop: the same blob again, forever.
                l.split_whitespace().nth(1).unwrap_or("/").to_string()
            };
            Reply::Full(
                format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}"),
                Vec::new(),
            )
        })
    });
    let (c, _dir) = client();
    for (hex, want) in [
        ("aa", "169.254.169.254"),
        ("bb", "fe80::1"),
        ("dd", "metadata.google.internal"),
    ] {
        let d: Digest = format!("sha256:{}", hex.repeat(32)).parse().unwrap();
        let t = Instant::now();
        let (_, r) = drain(&c, &fake.addr, &d, None).await;
        let e = r.unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(matches!(e, ClientError::Refused { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains(want) && msg.contains("link-local or cloud metadata address"),
            "{msg}"
        );
    }
    let d: Digest = format!("sha256:{}", "cc".repeat(32)).parse().unwrap();
    let msg = drain(&c, &fake.addr, &d, None)
        .await
        .1
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("only http and https redirects are followed"),
        "{msg}"
    );
    let d: Digest = format!("sha256:{}", "ee".repeat(32)).parse().unwrap();
    let before = fake.requests().len();
    let msg = drain(&c, &fake.addr, &d, None)
        .await
        .1
        .unwrap_err()
        .to_string();
    assert!(msg.contains("more than 10 redirects"), "{msg}");
    // The first request and ten redirects, then it stopped.
    assert_eq!(fake.requests().len() - before, 11);
}

/// A registry on one port that wants credentials (Basic, or bearer tokens from its own
/// `/token`) and redirects blobs to a second port, as registries redirect to their storage.
/// Both record what they receive.
fn redirecting_pair(bearer: bool, content: Vec<u8>) -> (Fake, Fake) {
    let storage = Fake::start(move |_| Reply::Full("HTTP/1.1 200 OK".into(), content.clone()));
    let storage_addr = storage.addr.clone();
    let own_addr: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let realm = own_addr.clone();
    let registry = Fake::start(move |h| {
        let l = line(h);
        if l.starts_with("GET /token") {
            return Reply::Full(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json".into(),
                br#"{"token":"secret-registry-token"}"#.to_vec(),
            );
        }
        let lower = h.to_ascii_lowercase();
        let authorised = if bearer {
            h.contains("Bearer secret-registry-token")
        } else {
            lower.contains("authorization: basic ")
        };
        if !authorised {
            let challenge = if bearer {
                format!(
                    "Bearer realm=\"http://{}/token\",service=\"fake\"",
                    realm.lock().unwrap()
                )
            } else {
                "Basic realm=\"fake\"".to_string()
            };
            return Reply::Full(
                format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}"),
                Vec::new(),
            );
        }
        if l.starts_with("GET /v2/ ") {
            return Reply::Full("HTTP/1.1 200 OK".into(), b"{}".to_vec());
        }
        Reply::Full(
            format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{storage_addr}/data"),
            Vec::new(),
        )
    });
    *own_addr.lock().unwrap() = registry.addr.clone();
    (registry, storage)
}

#[tokio::test]
async fn credentials_are_never_carried_to_another_port() {
    let content = b"layer bytes kept in storage".to_vec();
    let d = Digest::sha256(&content);
    for (bearer, scheme) in [(false, "basic"), (true, "bearer")] {
        let (registry, storage) = redirecting_pair(bearer, content.clone());
        let (c, _dir) = client();
        c.set_credentials(
            &registry.addr,
            Credential::Basic {
                username: "alice".into(),
                password: "s3cret".into(),
            },
        )
        .await;
        check_no_credentials(&c, &registry, &storage, &d, content.len(), scheme).await;
    }
}

async fn check_no_credentials(
    c: &Client,
    registry: &Fake,
    storage: &Fake,
    d: &Digest,
    len: usize,
    scheme: &str,
) {
    let (got, r) = drain(c, &registry.addr, d, Some(len as u64)).await;
    r.unwrap();
    assert_eq!(got, len);
    // The registry saw the credentials on the blob request …
    let blob_requests: Vec<String> = registry
        .requests()
        .into_iter()
        .filter(|h| line(h).contains("/blobs/"))
        .collect();
    assert!(
        blob_requests.iter().any(|h| h
            .to_ascii_lowercase()
            .contains(&format!("authorization: {scheme}"))),
        "{blob_requests:?}"
    );
    // … the storage on another port got none of them.
    let seen = storage.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let lower = seen[0].to_ascii_lowercase();
    assert!(
        !lower.contains("authorization") && !seen[0].contains("secret"),
        "{}",
        seen[0]
    );
}
