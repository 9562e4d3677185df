//! The attach protocol spoken on `<container_dir>/attach.sock`.
//!
//! Every message in both directions is a frame: one type byte, a big-endian `u32` payload
//! length, then the payload.
//!
//! monitor → client: [`STDOUT`] / [`STDERR`] output as the container writes it (with a tty
//! everything is `STDOUT`), then the connection closes when the container exits.
//! client → monitor: [`STDIN`] data for the container's stdin (only with `-i`), [`STDIN_CLOSE`]
//! to close it, [`RESIZE`] with `rows: u16, cols: u16` (big-endian) for the pty.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const STDIN_CLOSE: u8 = 3;
pub const RESIZE: u8 = 4;

/// Encodes one frame.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(kind);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Splits complete frames off the front of `buf`.
pub fn parse_frames(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 5 {
            break;
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if buf.len() < 5 + len {
            break;
        }
        out.push((buf[0], buf[5..5 + len].to_vec()));
        buf.drain(..5 + len);
    }
    out
}

/// A client connection to a container's attach socket.
pub struct AttachClient {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl AttachClient {
    /// Connects to the attach socket of the container in `container_dir`.
    pub fn connect(container_dir: &Path) -> io::Result<AttachClient> {
        let (p, _keep) = crate::util::socket_path(&crate::attach_socket_path(container_dir))?;
        Ok(AttachClient {
            stream: UnixStream::connect(p)?,
            buf: Vec::new(),
        })
    }

    /// A client on an already connected stream (see [`crate::attach_pair`]).
    pub fn from_stream(stream: UnixStream) -> AttachClient {
        AttachClient {
            stream,
            buf: Vec::new(),
        }
    }

    /// The underlying stream (e.g. to clone it for a writer thread).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Sends stdin data.
    pub fn send_stdin(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(&frame(STDIN, data))
    }

    /// Closes the container's stdin.
    pub fn close_stdin(&mut self) -> io::Result<()> {
        self.stream.write_all(&frame(STDIN_CLOSE, &[]))
    }

    /// Resizes the container's pty.
    pub fn resize(&mut self, rows: u16, cols: u16) -> io::Result<()> {
        let mut p = rows.to_be_bytes().to_vec();
        p.extend_from_slice(&cols.to_be_bytes());
        self.stream.write_all(&frame(RESIZE, &p))
    }

    /// Reads the next output frame: `(STDOUT|STDERR, data)`; `None` at the end.
    pub fn next_output(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        loop {
            let mut f = parse_frames_one(&mut self.buf);
            if let Some(x) = f.take() {
                return Ok(Some(x));
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn parse_frames_one(buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    if buf.len() < 5 {
        return None;
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if buf.len() < 5 + len {
        return None;
    }
    let out = (buf[0], buf[5..5 + len].to_vec());
    buf.drain(..5 + len);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn frames_roundtrip() {
        let mut b = frame(STDOUT, b"hello");
        b.extend(frame(RESIZE, &[0, 24, 0, 80]));
        b.extend_from_slice(&[STDERR, 0, 0]);
        let f = parse_frames(&mut b);
        assert_eq!(
            f,
            vec![(STDOUT, b"hello".to_vec()), (RESIZE, vec![0, 24, 0, 80])]
        );
        assert_eq!(b.len(), 3);
    }
}
