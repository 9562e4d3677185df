//! Front-end-neutral container streams: what the CLI and the API server both use to talk to a
//! running container, so neither speaks the monitor's attach framing nor reads its files.
//!
//! - [`AttachStream`]: the duplex connection a container's monitor serves on its attach socket
//!   (stdin in; stdout and stderr out, demultiplexed; pty resize; stdin close), blocking, or
//!   split into async halves for a tokio front end ([`AttachStream::into_async`]).
//! - [`DetachKeys`] and [`DetachMatcher`]: Docker's `--detach-keys` syntax and the matching of
//!   the sequence in stdin (dockerd's escape proxy: bytes that could start the sequence are
//!   held back until it completes or breaks).
//! - [`ContainerHandle`]: a cheap, `Send` handle on one container for what runs beside an
//!   attach: raw signals (`--sig-proxy`), waiting for the exit, the run state, resize.

use crate::EngineError;
use berth_runtime::attach::{self, AttachClient};
use std::io;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use berth_runtime::{ContainerState as RunState, ExitStatus};

/// Docker's stream numbers (stdcopy, [`crate::containers::LogEntry::stream`]).
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// The monitor's frame types mapped to Docker's stream numbers; `None` for anything else.
fn stream_of(kind: u8) -> Option<u8> {
    match kind {
        attach::STDOUT => Some(STDOUT),
        attach::STDERR => Some(STDERR),
        _ => None,
    }
}

fn resize_payload(rows: u16, cols: u16) -> [u8; 4] {
    let (r, c) = (rows.to_be_bytes(), cols.to_be_bytes());
    [r[0], r[1], c[0], c[1]]
}

/// A connection to a container's streams (blocking).
pub struct AttachStream {
    client: AttachClient,
}

impl AttachStream {
    pub(crate) fn new(client: AttachClient) -> AttachStream {
        AttachStream { client }
    }

    /// Connects to the attach socket of the container whose directory is `dir`.
    pub(crate) fn connect(dir: &std::path::Path) -> io::Result<AttachStream> {
        AttachClient::connect(dir).map(AttachStream::new)
    }

    /// The next output of the container: `(STDOUT|STDERR, bytes)`; `None` once its output
    /// ended (it exited, or the connection was shut down).
    pub fn next_output(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        loop {
            match self.client.next_output()? {
                None => return Ok(None),
                Some((kind, data)) => {
                    if let Some(s) = stream_of(kind) {
                        return Ok(Some((s, data)));
                    }
                }
            }
        }
    }

    /// A second handle on the input side (stdin, resize, detach), for another thread.
    pub fn input(&self) -> io::Result<AttachInput> {
        Ok(AttachInput {
            stream: self.client.stream().try_clone()?,
        })
    }

    /// Sends bytes to the container's stdin (when it was created with `-i`).
    pub fn send_stdin(&mut self, data: &[u8]) -> io::Result<()> {
        self.client.send_stdin(data)
    }

    /// Closes the container's stdin.
    pub fn close_stdin(&mut self) -> io::Result<()> {
        self.client.close_stdin()
    }

    /// Sets the size of the container's pty.
    pub fn resize(&mut self, rows: u16, cols: u16) -> io::Result<()> {
        self.client.resize(rows, cols)
    }

    /// The two halves as tokio streams (for a server's hijacked connection).
    pub fn into_async(self) -> io::Result<(AsyncAttachOutput, AsyncAttachInput)> {
        let s = self.client.stream().try_clone()?;
        s.set_nonblocking(true)?;
        let (r, w) = tokio::net::UnixStream::from_std(s)?.into_split();
        Ok((AsyncAttachOutput { r }, AsyncAttachInput { w }))
    }
}

/// The input side of an [`AttachStream`].
pub struct AttachInput {
    stream: std::os::unix::net::UnixStream,
}

impl AttachInput {
    fn send(&self, kind: u8, payload: &[u8]) -> io::Result<()> {
        use std::io::Write;
        (&self.stream).write_all(&attach::frame(kind, payload))
    }

    pub fn send_stdin(&self, data: &[u8]) -> io::Result<()> {
        self.send(attach::STDIN, data)
    }

    pub fn close_stdin(&self) -> io::Result<()> {
        self.send(attach::STDIN_CLOSE, &[])
    }

    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        self.send(attach::RESIZE, &resize_payload(rows, cols))
    }

    /// Detaches: ends the connection both ways, leaving the container running (the output
    /// side then sees its end).
    pub fn detach(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// The output half of an [`AttachStream`] for tokio.
pub struct AsyncAttachOutput {
    r: tokio::net::unix::OwnedReadHalf,
}

impl AsyncAttachOutput {
    /// As [`AttachStream::next_output`].
    pub async fn next_output(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        let mut head = [0u8; 5];
        loop {
            match self.r.read_exact(&mut head).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut payload = vec![0u8; len];
            match self.r.read_exact(&mut payload).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
            if let Some(s) = stream_of(head[0]) {
                return Ok(Some((s, payload)));
            }
        }
    }
}

/// The input half of an [`AttachStream`] for tokio.
pub struct AsyncAttachInput {
    w: tokio::net::unix::OwnedWriteHalf,
}

impl AsyncAttachInput {
    pub async fn send_stdin(&mut self, data: &[u8]) -> io::Result<()> {
        self.w.write_all(&attach::frame(attach::STDIN, data)).await
    }

    pub async fn close_stdin(&mut self) -> io::Result<()> {
        self.w
            .write_all(&attach::frame(attach::STDIN_CLOSE, &[]))
            .await
    }

    pub async fn resize(&mut self, rows: u16, cols: u16) -> io::Result<()> {
        let p = resize_payload(rows, cols);
        self.w.write_all(&attach::frame(attach::RESIZE, &p)).await
    }
}

/// A detach sequence (`--detach-keys`, the API's `detachKeys`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

impl DetachKeys {
    /// Docker's default.
    pub const DEFAULT: &'static str = "ctrl-p,ctrl-q";

    /// Parses Docker's syntax: a comma-separated list of `ctrl-<value>` (a-z, @, [, \, ], ^,
    /// _) or single characters.
    pub fn parse(s: &str) -> Result<DetachKeys, EngineError> {
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
                EngineError::InvalidArgument(format!(
                    "Invalid detach keys ({s}) provided: use ctrl-<value> (a-z, @, [, \\, ], ^, _) or single characters, separated by commas"
                ))
            })?);
        }
        Ok(DetachKeys(out))
    }

    /// The keys a client asked for; none or empty: Docker's default.
    pub fn parse_or_default(s: Option<&str>) -> Result<DetachKeys, EngineError> {
        match s {
            Some(s) if !s.is_empty() => DetachKeys::parse(s),
            _ => Ok(DetachKeys::default()),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// A matcher for one input stream.
    pub fn matcher(&self) -> DetachMatcher {
        DetachMatcher {
            keys: self.0.clone(),
            matched: 0,
        }
    }
}

impl Default for DetachKeys {
    fn default() -> Self {
        DetachKeys(vec![16, 17])
    }
}

/// Watches stdin for the detach sequence. Bytes that could start it are held back until the
/// sequence completes (detach) or breaks (they are passed on).
pub struct DetachMatcher {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachMatcher {
    /// A matcher that never detaches (stdin without a tty, as Docker's).
    pub fn none() -> DetachMatcher {
        DetachMatcher {
            keys: Vec::new(),
            matched: 0,
        }
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

/// A handle on one container for the work that runs beside an attach or a wait. It holds no
/// engine state (cheap to clone, `Send`), so a signal-forwarding thread can own one.
#[derive(Clone, Debug)]
pub struct ContainerHandle {
    id: String,
    dir: PathBuf,
}

impl ContainerHandle {
    pub(crate) fn new(id: String, dir: PathBuf) -> ContainerHandle {
        ContainerHandle { id, dir }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sends signal number `signal` to the container's process, as the docker CLI's
    /// `--sig-proxy` does (no record, no event: the container decides what it means).
    pub fn signal(&self, signal: i32) -> Result<(), EngineError> {
        berth_runtime::kill(&self.dir, signal).map_err(EngineError::Runtime)
    }

    /// Waits for the container's exit: its status, or `None` when `timeout` passed first.
    /// A container that is not running is an error ([`EngineError::NotRunning`]).
    pub fn wait_exit(&self, timeout: Option<Duration>) -> Result<Option<ExitStatus>, EngineError> {
        match berth_runtime::wait(&self.dir, timeout) {
            Ok(st) => Ok(Some(st)),
            Err(berth_runtime::Error::Timeout) => Ok(None),
            Err(berth_runtime::Error::NotRunning) => Err(EngineError::NotRunning(self.id.clone())),
            Err(e) => Err(EngineError::Runtime(e)),
        }
    }

    /// What the container's process is doing now, from the runtime (not the store's cache).
    pub fn run_state(&self) -> Result<RunState, EngineError> {
        berth_runtime::state(&self.dir).map_err(EngineError::Runtime)
    }

    /// A new connection to the running container's streams.
    pub fn attach(&self) -> Result<AttachStream, EngineError> {
        AttachStream::connect(&self.dir)
            .map_err(|e| EngineError::Conflict(format!("cannot attach to {}: {e}", self.id)))
    }

    /// Sets the size of the running container's pty.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), EngineError> {
        let fail = |e: io::Error| EngineError::Conflict(format!("cannot resize {}: {e}", self.id));
        let mut c = AttachStream::connect(&self.dir).map_err(fail)?;
        c.resize(rows, cols).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_docker_syntax() {
        assert_eq!(
            DetachKeys::parse("ctrl-p,ctrl-q").unwrap().bytes(),
            &[16, 17]
        );
        assert_eq!(
            DetachKeys::default(),
            DetachKeys::parse(DetachKeys::DEFAULT).unwrap()
        );
        assert_eq!(
            DetachKeys::parse("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_,x")
                .unwrap()
                .bytes(),
            &[0, 27, 28, 29, 30, 31, b'x']
        );
        assert_eq!(
            DetachKeys::parse(" a , ctrl-z ").unwrap().bytes(),
            &[b'a', 26]
        );
        assert_eq!(
            DetachKeys::parse_or_default(Some("")).unwrap(),
            DetachKeys::default()
        );
        assert_eq!(
            DetachKeys::parse_or_default(None).unwrap(),
            DetachKeys::default()
        );
    }

    #[test]
    fn detach_keys_refused_with_the_fix() {
        for bad in ["ctrl-P", "ctrl-1", "ab", "", "ctrl-a,,b", "ctrl-"] {
            let e = DetachKeys::parse(bad).unwrap_err();
            assert_eq!(e.class(), crate::ErrorClass::InvalidArgument, "{bad}");
            let m = e.to_string();
            assert!(
                m.starts_with(&format!("Invalid detach keys ({bad}) provided")),
                "{m}"
            );
            assert!(m.contains("ctrl-<value>"), "{m}");
        }
    }

    #[test]
    fn matcher_holds_back_a_partial_sequence() {
        let mut m = DetachKeys::default().matcher();
        assert_eq!(m.feed(b"ab\x10"), (b"ab".to_vec(), false));
        // The sequence breaks: the held byte goes on, before the one that broke it.
        assert_eq!(m.feed(b"c"), (b"\x10c".to_vec(), false));
        // Across reads.
        assert_eq!(m.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(m.feed(b"\x11rest"), (Vec::new(), true));
    }

    #[test]
    fn matcher_restarts_on_the_first_key() {
        let mut m = DetachKeys::parse("a,b").unwrap().matcher();
        // "a a b": the second `a` breaks the first match and starts a new one.
        assert_eq!(m.feed(b"aab"), (b"a".to_vec(), true));
        let mut none = DetachMatcher::none();
        assert_eq!(none.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }

    #[test]
    fn stream_numbers_are_dockers() {
        assert_eq!(stream_of(attach::STDOUT), Some(STDOUT));
        assert_eq!(stream_of(attach::STDERR), Some(STDERR));
        assert_eq!(stream_of(attach::RESIZE), None);
        assert_eq!(resize_payload(24, 80), [0, 24, 0, 80]);
    }
}
