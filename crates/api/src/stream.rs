//! Hijacked connections (attach, exec start): the 101 answer, and the pumps between the client's
//! raw socket and a container's streams, in dockerd's framing: raw bytes for a TTY, stdcopy
//! frames (`[stream, 0, 0, 0, len u32 BE]` + payload) otherwise.

use crate::http::{ApiError, Body, Resp};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Whether the client asked to take the connection over (`Connection: Upgrade`).
pub fn wants_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(hyper::header::UPGRADE)
        .is_some_and(|v| !v.is_empty())
}

/// The 101 answer; the stream's content type tells other clients the framing.
pub fn switching(tty: bool) -> Resp {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("Connection", "Upgrade")
        .header("Upgrade", "tcp")
        .header(
            "Content-Type",
            if tty {
                "application/vnd.docker.raw-stream"
            } else {
                "application/vnd.docker.multiplexed-stream"
            },
        )
        .body(Body::empty())
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// The stdcopy frame of `payload` on `stream` (1 stdout, 2 stderr).
pub fn stdcopy(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&[stream, 0, 0, 0]);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Output bytes as the client reads them: raw for a TTY, framed otherwise.
pub fn frame_out(tty: bool, stream: u8, payload: &[u8]) -> Vec<u8> {
    if tty {
        payload.to_vec()
    } else {
        stdcopy(stream, payload)
    }
}

/// dockerd's detach keys (`ctrl-p,ctrl-q` by default): a comma-separated list of `ctrl-X` or
/// single characters.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        let b = k.as_bytes();
        let code = if let Some(c) = k.strip_prefix("ctrl-") {
            match c.as_bytes() {
                [x @ b'a'..=b'z'] => Some(x - b'a' + 1),
                [b'@'] => Some(0),
                [b'['] => Some(27),
                [b'\\'] => Some(28),
                [b']'] => Some(29),
                [b'^'] => Some(30),
                [b'_'] => Some(31),
                _ => None,
            }
        } else if b.len() == 1 {
            Some(b[0])
        } else {
            None
        };
        out.push(code.ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid detach keys ({s}) provided: use ctrl-<value> (a-z, @, [, \\, ], ^, _) or single characters, separated by commas"
            ))
        })?);
    }
    Ok(out)
}

/// Watches stdin for the detach sequence. Bytes that could start it are held back until the
/// sequence completes (detach) or breaks (they are passed on).
pub struct Detach {
    keys: Vec<u8>,
    matched: usize,
}

impl Detach {
    pub fn new(keys: Vec<u8>) -> Detach {
        Detach { keys, matched: 0 }
    }

    /// What to forward of `data`, and whether the client detached.
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        if self.keys.is_empty() {
            out.extend_from_slice(data);
            return (out, false);
        }
        for &b in data {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// Which streams an attach carries.
#[derive(Clone, Copy)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Pumps between a hijacked client and a container monitor's attach connection (frames of
/// `berth_runtime::attach`) until the container's output ends, the client detaches or goes
/// away.
pub async fn pump_monitor<C>(
    client: C,
    monitor: tokio::net::UnixStream,
    s: Streams,
    detach: Vec<u8>,
) where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    use berth_runtime::attach::{frame, STDERR, STDIN, STDIN_CLOSE, STDOUT};
    let (mut c_read, mut c_write) = tokio::io::split(client);
    let (mut m_read, mut m_write) = monitor.into_split();
    let input = async move {
        if !s.stdin {
            // Nothing to forward; the connection ends with the output.
            return std::future::pending::<()>().await;
        }
        let mut d = Detach::new(detach);
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match c_read.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    // The client closed its side (StdinOnce): close the container's stdin,
                    // keep sending output.
                    let _ = m_write.write_all(&frame(STDIN_CLOSE, &[])).await;
                    return std::future::pending::<()>().await;
                }
                Ok(n) => {
                    let (fwd, detached) = d.feed(&buf[..n]);
                    if !fwd.is_empty() && m_write.write_all(&frame(STDIN, &fwd)).await.is_err() {
                        return;
                    }
                    if detached {
                        return;
                    }
                }
            }
        }
    };
    let output = async move {
        let mut head = [0u8; 5];
        loop {
            if m_read.read_exact(&mut head).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut payload = vec![0u8; len];
            if m_read.read_exact(&mut payload).await.is_err() {
                break;
            }
            let wanted = match head[0] {
                STDOUT => s.stdout,
                STDERR => s.stderr,
                _ => false,
            };
            if wanted
                && c_write
                    .write_all(&frame_out(s.tty, head[0], &payload))
                    .await
                    .is_err()
            {
                break;
            }
        }
        let _ = c_write.flush().await;
        let _ = c_write.shutdown().await;
    };
    tokio::select! {
        _ = input => {}
        _ = output => {}
    }
}

/// A monitor attach connection as a tokio stream.
pub fn monitor_stream(
    client: berth_runtime::attach::AttachClient,
) -> std::io::Result<tokio::net::UnixStream> {
    let s = client.stream().try_clone()?;
    s.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(s)
}
