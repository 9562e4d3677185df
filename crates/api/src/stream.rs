//! Hijacked connections (attach, exec start): the 101 answer, and the pumps between the client's
//! raw socket and a container's streams, in dockerd's framing: raw bytes for a TTY, stdcopy
//! frames (`[stream, 0, 0, 0, len u32 BE]` + payload) otherwise.

use crate::http::{ApiError, Body, Resp};
use berth_engine::streams::{AttachStream, DetachKeys, DetachMatcher, STDERR, STDOUT};
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

/// A client's `detachKeys` (Docker's syntax, checked by the engine); unset or empty:
/// ctrl-p,ctrl-q.
pub fn detach_keys(s: Option<&str>) -> Result<DetachKeys, ApiError> {
    Ok(DetachKeys::parse_or_default(s)?)
}

/// Which streams an attach carries.
#[derive(Clone, Copy)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Pumps between a hijacked client and a container's attach stream until the container's
/// output ends, the client detaches or goes away.
pub async fn pump_monitor<C>(client: C, monitor: AttachStream, s: Streams, detach: DetachMatcher)
where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut c_read, mut c_write) = tokio::io::split(client);
    let Ok((mut m_read, mut m_write)) = monitor.into_async() else {
        return;
    };
    let input = async move {
        if !s.stdin {
            // Nothing to forward; the connection ends with the output.
            return std::future::pending::<()>().await;
        }
        let mut d = detach;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match c_read.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    // The client closed its side (StdinOnce): close the container's stdin,
                    // keep sending output.
                    let _ = m_write.close_stdin().await;
                    return std::future::pending::<()>().await;
                }
                Ok(n) => {
                    let (fwd, detached) = d.feed(&buf[..n]);
                    if !fwd.is_empty() && m_write.send_stdin(&fwd).await.is_err() {
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
        while let Ok(Some((stream, payload))) = m_read.next_output().await {
            let wanted = match stream {
                STDOUT => s.stdout,
                STDERR => s.stderr,
                _ => false,
            };
            if wanted
                && c_write
                    .write_all(&frame_out(s.tty, stream, &payload))
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
