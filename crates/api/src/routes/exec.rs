//! `POST /containers/{id}/exec`, `POST /exec/{id}/start`, `POST /exec/{id}/resize`,
//! `GET /exec/{id}/json`.
//!
//! An exec instance is created by one request and started by the next, so the server keeps
//! the instances (in memory: a process the server started ends its interest with the server).
//! The process is the engine's `exec_command`, spawned here with pipes, or with a pseudo
//! terminal on the host for `Tty` (whose size `resize` sets; the exec relay inside copies it).

use crate::http::{
    json_response, ok_json, read_json, read_json_body, status_only, ApiError, ApiResult, Body,
};
use crate::router::{Call, Routed};
use crate::state::State;
use crate::stream::{self, frame_out};
use berth_engine::containers::ExecOptions;
use berth_engine::events::ExecEvent;
use berth_engine::streams::DetachMatcher;
use berth_engine::EngineError;
use bytes::Bytes;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Finished instances are forgotten after this long (dockerd forgets them with the
/// container); the map never grows past [`MAX_INSTANCES`].
const KEEP_FINISHED: Duration = Duration::from_secs(600);
const MAX_INSTANCES: usize = 4096;

#[derive(Default)]
pub struct Execs {
    map: Mutex<HashMap<String, Arc<Mutex<Instance>>>>,
}

struct Instance {
    container: String,
    opts: ExecOptions,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: String,
    started: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: i32,
    finished: Option<Instant>,
    /// The host side of the pty of a `Tty` exec, for `resize`.
    pty: Option<Arc<OwnedFd>>,
    /// Records the exec's `exec_die` once its process has ended.
    on_exit: Option<Box<dyn FnOnce(i32) + Send>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    tty: bool,
    privileged: bool,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    detach_keys: Option<String>,
    console_size: Option<Vec<u16>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
    console_size: Option<Vec<u16>>,
}

pub async fn route(state: &Arc<State>, call: Call) -> Routed {
    let segs = call.segs.clone();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = call.method.clone();
    Routed::Done(match (method.as_str(), s.as_slice()) {
        ("POST", ["containers", id, "exec"]) => create(state, id, call).await,
        ("POST", ["exec", id, "start"]) => start(state, id, call).await,
        ("POST", ["exec", id, "resize"]) => resize(state, id, &call.query).await,
        ("GET", ["exec", id, "json"]) => inspect(state, id).await,
        _ => return Routed::Next(call),
    })
}

fn random_id() -> String {
    berth_engine::events::new_exec_id()
}

fn no_such_exec(id: &str) -> ApiError {
    ApiError::not_found(format!("No such exec instance: {id}"))
}

impl Execs {
    fn get(&self, id: &str) -> Option<Arc<Mutex<Instance>>> {
        self.map.lock().ok()?.get(id).cloned()
    }

    fn insert(&self, id: String, inst: Instance) {
        if let Ok(mut m) = self.map.lock() {
            m.retain(|_, i| {
                i.lock()
                    .map(|i| i.finished.is_none_or(|f| f.elapsed() < KEEP_FINISHED))
                    .unwrap_or(false)
            });
            if m.len() >= MAX_INSTANCES {
                // The oldest finished ones go first; running ones are kept.
                let mut done: Vec<(Instant, String)> = m
                    .iter()
                    .filter_map(|(k, i)| i.lock().ok()?.finished.map(|f| (f, k.clone())))
                    .collect();
                done.sort();
                for (_, k) in done.into_iter().take(m.len() + 1 - MAX_INSTANCES) {
                    m.remove(&k);
                }
            }
            m.insert(id, Arc::new(Mutex::new(inst)));
        }
    }
}

async fn create(state: &Arc<State>, id: &str, call: Call) -> ApiResult {
    let b: CreateBody = read_json(call.req).await?.unwrap_or_default();
    let cmd = b.cmd.unwrap_or_default();
    if cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    stream::detach_keys(b.detach_keys.as_deref())?;
    let _ = b.console_size;
    let name = id.to_string();
    let eid = random_id();
    let (eid2, cmd2) = (eid.clone(), cmd.clone());
    let container = state
        .pool
        .run(move |e| {
            let id = e.resolve_container(&name)?.id;
            let live = e.container_live(&id)?;
            if live.paused {
                return Err(EngineError::Conflict(format!(
                    "Container {id} is paused, unpause the container before exec"
                )));
            }
            if !live.running {
                return Err(EngineError::Conflict(format!(
                    "Container {id} is not running"
                )));
            }
            e.record_exec_event(&id, &eid2, ExecEvent::Create(&cmd2));
            Ok(id)
        })
        .await?;
    state.execs.insert(
        eid.clone(),
        Instance {
            container,
            opts: ExecOptions {
                args: cmd,
                env: b.env.unwrap_or_default(),
                workdir: b.working_dir.filter(|w| !w.is_empty()),
                user: b.user.filter(|u| !u.is_empty()),
                tty: b.tty,
                privileged: b.privileged,
            },
            stdin: b.attach_stdin,
            stdout: b.attach_stdout,
            stderr: b.attach_stderr,
            detach_keys: b.detach_keys.unwrap_or_default(),
            started: false,
            running: false,
            exit_code: None,
            pid: 0,
            finished: None,
            pty: None,
            on_exit: None,
        },
    );
    Ok(json_response(StatusCode::CREATED, &json!({"Id": eid})))
}

/// A host pseudo terminal: (master, slave).
fn open_pty(rows: u16, cols: u16) -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    if rows > 0 && cols > 0 {
        set_size(&master, rows, cols);
    }
    Ok((master, slave))
}

fn set_size(master: &OwnedFd, rows: u16, cols: u16) {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let _ = rustix::termios::tcsetwinsize(master, ws);
}

fn finish(inst: &Arc<Mutex<Instance>>, code: i32) {
    let on_exit = match inst.lock() {
        Ok(mut i) => {
            i.running = false;
            i.exit_code = Some(code);
            i.finished = Some(Instant::now());
            i.pty = None;
            i.on_exit.take()
        }
        Err(_) => None,
    };
    if let Some(f) = on_exit {
        f(code);
    }
}

fn code_of(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

async fn start(state: &Arc<State>, id: &str, call: Call) -> ApiResult {
    let inst = state.execs.get(id).ok_or_else(|| no_such_exec(id))?;
    let upgrade = stream::wants_upgrade(&call.req);
    // The body is read off the request; its parts keep what the upgrade needs.
    let (parts, body) = call.req.into_parts();
    let b: StartBody = read_json_body(body).await?.unwrap_or_default();
    let req = hyper::Request::from_parts(parts, ());
    let (container, opts, want) = {
        let mut i = inst
            .lock()
            .map_err(|_| ApiError::internal("exec state poisoned"))?;
        if i.started {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("Exec command {id} has already run"),
            ));
        }
        i.started = true;
        i.running = true;
        (
            i.container.clone(),
            i.opts.clone(),
            (i.stdin, i.stdout, i.stderr, i.detach_keys.clone()),
        )
    };
    let tty = opts.tty;
    let o2 = opts.clone();
    let (cid, eid) = (container.clone(), id.to_string());
    let built = state
        .pool
        .run(move |e| {
            let cmd = e.exec_command(&container, &o2);
            if cmd.is_ok() {
                e.record_exec_event(&container, &eid, ExecEvent::Start(&o2.args));
            }
            Ok(cmd)
        })
        .await?;
    if built.is_ok() {
        let (pool, eid) = (state.pool.clone(), id.to_string());
        if let Ok(mut i) = inst.lock() {
            i.on_exit = Some(Box::new(move |code| {
                tokio::spawn(async move {
                    let _ = pool
                        .run(move |e| {
                            e.record_exec_event(&cid, &eid, ExecEvent::Die(code));
                            Ok(())
                        })
                        .await;
                });
            }));
        }
    }
    let mut cmd = match built {
        Ok(c) => c,
        Err(EngineError::Runtime(r)) if r.exit_code() == 126 || r.exit_code() == 127 => {
            // dockerd answers the start and reports the failure in the stream and the exit code.
            let code = r.exit_code();
            finish(&inst, code);
            let msg = format!(
                "OCI runtime exec failed: exec failed: unable to start container process: {r}\r\n"
            );
            return Ok(failed_start(b.detach, upgrade, tty, msg, req));
        }
        Err(e) => {
            finish(&inst, 126);
            return Err(e.into());
        }
    };
    if b.detach {
        use std::os::unix::process::CommandExt;
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: setsid is async-signal-safe; the child only calls it before exec.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid()?;
                Ok(())
            });
        }
        let mut child = tokio::process::Command::from(cmd)
            .spawn()
            .map_err(|e| ApiError::internal(format!("cannot start the exec process: {e}")))?;
        if let Ok(mut i) = inst.lock() {
            i.pid = child.id().unwrap_or(0) as i32;
        }
        tokio::spawn(async move {
            let code = child.wait().await.map(code_of).unwrap_or(255);
            finish(&inst, code);
        });
        return status_only(StatusCode::OK);
    }
    let (rows, cols) = match b.console_size.as_deref() {
        Some([r, c]) => (*r, *c),
        _ => (0, 0),
    };
    let detach_keys = stream::detach_keys(Some(&want.3))?;
    let s = stream::Streams {
        stdin: want.0,
        stdout: want.1,
        stderr: want.2,
        tty,
    };
    let spawned = if tty {
        spawn_tty(cmd, rows, cols, s.stdin)
    } else {
        spawn_pipes(cmd, s.stdin)
    }
    .map_err(|e| ApiError::internal(format!("cannot start the exec process: {e}")))?;
    if let Ok(mut i) = inst.lock() {
        i.pid = spawned.child.id().unwrap_or(0) as i32;
        i.pty = spawned.pty.clone();
    }
    if upgrade {
        tokio::spawn(async move {
            let Ok(up) = hyper::upgrade::on(req).await else {
                let _ = spawned.kill_and_wait(&inst).await;
                return;
            };
            run_exec(TokioIo::new(up), spawned, s, detach_keys.matcher(), inst).await;
        });
        return Ok(stream::switching(tty));
    }
    // No hijack: the output as the body.
    let (tx, body) = Body::channel();
    tokio::spawn(async move {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let s2 = stream::Streams { stdin: false, ..s };
        tokio::spawn(run_exec(theirs, spawned, s2, DetachMatcher::none(), inst));
        let mut ours = ours;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match ours.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(
            "Content-Type",
            if tty {
                "application/vnd.docker.raw-stream"
            } else {
                "application/vnd.docker.multiplexed-stream"
            },
        )
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

fn failed_start(
    detach: bool,
    upgrade: bool,
    tty: bool,
    msg: String,
    req: hyper::Request<()>,
) -> crate::http::Resp {
    if detach {
        return crate::http::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, msg.trim_end())
            .into_response();
    }
    let framed = frame_out(tty, 2, msg.as_bytes());
    if upgrade {
        tokio::spawn(async move {
            if let Ok(up) = hyper::upgrade::on(req).await {
                let mut io = TokioIo::new(up);
                let _ = io.write_all(&framed).await;
                let _ = io.shutdown().await;
            }
        });
        return stream::switching(tty);
    }
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::from_bytes(framed))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

struct Spawned {
    child: tokio::process::Child,
    /// For a TTY: the master, read and written through two descriptors.
    pty: Option<Arc<OwnedFd>>,
    pty_io: Option<(tokio::fs::File, tokio::fs::File)>,
}

impl Spawned {
    async fn kill_and_wait(mut self, inst: &Arc<Mutex<Instance>>) {
        let _ = self.child.start_kill();
        let code = self.child.wait().await.map(code_of).unwrap_or(255);
        finish(inst, code);
    }
}

fn spawn_pipes(mut cmd: std::process::Command, stdin: bool) -> std::io::Result<Spawned> {
    use std::process::Stdio;
    cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = tokio::process::Command::from(cmd).spawn()?;
    Ok(Spawned {
        child,
        pty: None,
        pty_io: None,
    })
}

fn spawn_tty(
    mut cmd: std::process::Command,
    rows: u16,
    cols: u16,
    _stdin: bool,
) -> std::io::Result<Spawned> {
    use std::os::unix::process::CommandExt;
    let (master, slave) = open_pty(rows, cols)?;
    cmd.stdin(slave.try_clone()?)
        .stdout(slave.try_clone()?)
        .stderr(slave);
    // SAFETY: setsid and ioctl(TIOCSCTTY) are async-signal-safe; the child makes the pty its
    // controlling terminal (so a resize signals the exec relay) before exec.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
            Ok(())
        });
    }
    let child = tokio::process::Command::from(cmd).spawn()?;
    let reader = tokio::fs::File::from_std(std::fs::File::from(master.try_clone()?));
    let writer = tokio::fs::File::from_std(std::fs::File::from(master.try_clone()?));
    Ok(Spawned {
        child,
        pty: Some(Arc::new(master)),
        pty_io: Some((reader, writer)),
    })
}

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Pumps an exec's streams to and from the client until the process ends (or the client
/// detaches or goes away), then records its exit code.
async fn run_exec<C>(
    client: C,
    mut sp: Spawned,
    s: stream::Streams,
    detach: DetachMatcher,
    inst: Arc<Mutex<Instance>>,
) where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut c_read, c_write) = tokio::io::split(client);
    let c_write = Arc::new(tokio::sync::Mutex::new(c_write));
    let (stdin_w, outs): (Option<Writer>, Vec<(u8, Reader)>) = match sp.pty_io.take() {
        Some((r, w)) => (
            if s.stdin { Some(Box::new(w)) } else { None },
            vec![(1, Box::new(r))],
        ),
        None => {
            let mut outs: Vec<(u8, Reader)> = Vec::new();
            if let Some(o) = sp.child.stdout.take() {
                outs.push((1, Box::new(o)));
            }
            if let Some(e) = sp.child.stderr.take() {
                outs.push((2, Box::new(e)));
            }
            (sp.child.stdin.take().map(|i| Box::new(i) as Writer), outs)
        }
    };
    let tty = s.tty;
    let mut pumps = Vec::new();
    for (kind, mut r) in outs {
        let w = c_write.clone();
        let wanted = (kind == 1 && s.stdout) || (kind == 2 && s.stderr);
        pumps.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match r.read(&mut buf).await {
                    // EIO: the pty's other side is closed (the process ended).
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if wanted {
                            let mut w = w.lock().await;
                            if w.write_all(&frame_out(tty, kind, &buf[..n])).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }));
    }
    let input = tokio::spawn(async move {
        let Some(mut w) = stdin_w else {
            return std::future::pending::<bool>().await;
        };
        let mut d = detach;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match c_read.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    if tty {
                        // A pty has no half-close: end of input is ^D.
                        let _ = w.write_all(&[4]).await;
                    }
                    drop(w);
                    return std::future::pending::<bool>().await;
                }
                Ok(n) => {
                    let (fwd, detached) = d.feed(&buf[..n]);
                    if !fwd.is_empty() && w.write_all(&fwd).await.is_err() {
                        return false;
                    }
                    let _ = w.flush().await;
                    if detached {
                        return true;
                    }
                }
            }
        }
    });
    let status = tokio::select! {
        st = sp.child.wait() => Some(st),
        _ = async { let _ = (&mut { input }).await; } => None,
    };
    let code = match status {
        Some(st) => st.map(code_of).unwrap_or(255),
        None => {
            // Detached (or the client went away): the process keeps running; its exit is
            // still recorded.
            let inst2 = inst.clone();
            tokio::spawn(async move {
                let code = sp.child.wait().await.map(code_of).unwrap_or(255);
                finish(&inst2, code);
            });
            for p in pumps {
                p.abort();
            }
            let mut w = c_write.lock().await;
            let _ = w.shutdown().await;
            return;
        }
    };
    // The output the process left in the pipes, then the end of the stream. A TTY's reader
    // ends with EIO once every holder of the pty's other side is gone; give it a moment.
    for p in pumps {
        let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
    }
    finish(&inst, code);
    let mut w = c_write.lock().await;
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

async fn resize(state: &Arc<State>, id: &str, q: &crate::http::Query) -> ApiResult {
    let inst = state.execs.get(id).ok_or_else(|| no_such_exec(id))?;
    let h = q.int("h")?.unwrap_or(0);
    let w = q.int("w")?.unwrap_or(0);
    if !(0..=u16::MAX as i64).contains(&h) || !(0..=u16::MAX as i64).contains(&w) {
        return Err(ApiError::bad_request(format!(
            "invalid size {h}x{w}: h and w must be between 0 and 65535"
        )));
    }
    let pty = inst.lock().ok().and_then(|i| i.pty.clone());
    match pty {
        Some(m) => {
            set_size(&m, h as u16, w as u16);
            status_only(StatusCode::OK)
        }
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("exec {id} has no terminal to resize (it is not running, or has no Tty)"),
        )),
    }
}

async fn inspect(state: &Arc<State>, id: &str) -> ApiResult {
    let inst = state.execs.get(id).ok_or_else(|| no_such_exec(id))?;
    let i = inst
        .lock()
        .map_err(|_| ApiError::internal("exec state poisoned"))?;
    let (entry, args) = i
        .opts
        .args
        .split_first()
        .map(|(a, b)| (a.clone(), b.to_vec()))
        .unwrap_or_default();
    ok_json(&json!({
        "ID": id,
        "Running": i.running,
        "ExitCode": i.exit_code,
        "ProcessConfig": {
            "tty": i.opts.tty,
            "entrypoint": entry,
            "arguments": args,
            "privileged": i.opts.privileged,
            "user": i.opts.user.clone().unwrap_or_default(),
        },
        "OpenStdin": i.stdin,
        "OpenStderr": i.stderr,
        "OpenStdout": i.stdout,
        "CanRemove": false,
        "ContainerID": i.container,
        "DetachKeys": i.detach_keys,
        "Pid": i.pid,
    }))
}
