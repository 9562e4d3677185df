//! `run -it` from a real terminal: the container gets a terminal of the client's size, a
//! resize of the client's terminal reaches it, and the detach keys leave it running.

mod common;

use common::Berth;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

fn winsize(rows: u16, cols: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// A pty pair sized `rows`×`cols`: (master, slave).
fn pty(rows: u16, cols: u16) -> (std::fs::File, OwnedFd) {
    let (mut m, mut s) = (0, 0);
    let ws = winsize(rows, cols);
    let rc = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &ws,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    unsafe { (std::fs::File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}

/// Starts `cmd` with the pty `slave` as its stdio and controlling terminal, as a shell does:
/// a resize of the terminal then signals it.
fn spawn_on_terminal(mut cmd: std::process::Command, slave: OwnedFd) -> std::process::Child {
    let slave_fd = slave.as_raw_fd();
    for dst in 0..3 {
        let f = std::fs::File::from(slave.try_clone().unwrap());
        match dst {
            0 => cmd.stdin(f),
            1 => cmd.stdout(f),
            _ => cmd.stderr(f),
        };
    }
    // SAFETY: setsid and ioctl are async-signal-safe; the slave descriptor is open in the child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(slave);
    child
}

/// Resizes the client's terminal to 40×120 and waits until a shell in the container sees it.
fn assert_resize_reaches_the_container(master: &mut std::fs::File) {
    let ws = winsize(40, 120);
    assert_eq!(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
        0
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    let mut resized = false;
    while !resized && Instant::now() < deadline {
        seen.clear();
        master.write_all(b"stty size; echo at-$((30+4))\r").unwrap();
        read_until(master, &mut seen, "at-34");
        resized = seen.contains("40 120");
    }
    assert!(
        resized,
        "the container's terminal was not resized: {seen:?}"
    );
}

/// Reads from the terminal until `want` shows up in what was read (or fails after 10 s).
fn read_until(master: &mut std::fs::File, seen: &mut String, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let fd = master.as_raw_fd();
    while !seen.contains(want) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {want:?}; the terminal showed {seen:?}"
        );
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        if unsafe { libc::poll(&mut p, 1, 100) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            Ok(0) | Err(_) => std::thread::sleep(Duration::from_millis(20)),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
}

#[test]
fn run_it_has_the_terminal_size_follows_resizes_and_detaches() {
    assert!(common::is_root("tty"));
    let b = Berth::new();
    b.import_busybox("busybox");
    let (mut master, slave) = pty(30, 100);
    let mut cmd = b.command();
    cmd.args(["run", "-it", "--name", "tty1", "busybox", "sh"]);
    let mut client = spawn_on_terminal(cmd, slave);
    let mut seen = String::new();
    master.write_all(b"stty size; echo at-$((20+3))\r").unwrap();
    read_until(&mut master, &mut seen, "at-23");
    assert!(seen.contains("30 100"), "{seen:?}");

    // A resize of the client's terminal reaches the container's.
    assert_resize_reaches_the_container(&mut master);

    // ctrl-p ctrl-q: the client leaves, the container runs on.
    master.write_all(b"\x10\x11").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = client.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the detach keys did not detach");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Running}}", "tty1"])
            .trim(),
        "true"
    );
    b.ok(&["rm", "-f", "tty1"]);
}

#[test]
fn exec_it_has_term_the_terminal_size_and_follows_resizes() {
    assert!(common::is_root("tty"));
    for rt in common::runtimes() {
        let b = Berth::new();
        b.import_busybox("busybox");
        b.ok(&[
            "run",
            "-d",
            "--runtime",
            rt,
            "--name",
            "ex1",
            "busybox",
            "sleep",
            "60",
        ]);
        let (mut master, slave) = pty(30, 100);
        let mut cmd = b.command();
        cmd.args(["exec", "-it", "ex1", "sh"]);
        let mut client = spawn_on_terminal(cmd, slave);
        let mut seen = String::new();
        master
            .write_all(b"stty size; echo term-$TERM-at-$((20+3))\r")
            .unwrap();
        read_until(&mut master, &mut seen, "-at-23");
        assert!(seen.contains("30 100"), "{rt}: {seen:?}");
        assert!(seen.contains("term-xterm-at"), "{rt}: {seen:?}");
        assert_resize_reaches_the_container(&mut master);
        master.write_all(b"exit 3\r").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(st) = client.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "{rt}: exec did not end");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(3), "{rt}");
        b.ok(&["rm", "-f", "ex1"]);
    }
}
