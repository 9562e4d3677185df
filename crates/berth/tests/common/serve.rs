//! `berth serve` on a socket in a test's directory, and Docker clients pointed at it; the
//! server is stopped (SIGTERM) when dropped.

use super::Berth;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const DOCKER: &str = "/usr/local/bin/docker";

pub struct Server {
    pub child: Option<Child>,
    pub sock: PathBuf,
    pub docker_config: tempfile::TempDir,
}

impl Server {
    /// Starts the server; `stderr` is where its messages go (piped when a test reads them
    /// through [`Server::stop`]).
    pub fn start_with(b: &Berth, suite: &str, stderr: Stdio) -> Server {
        Server::start_env(b, suite, stderr, &[])
    }

    /// As [`Server::start_with`], with extra environment for the server.
    pub fn start_env(b: &Berth, suite: &str, stderr: Stdio, env: &[(&str, &Path)]) -> Server {
        super::is_root(suite);
        let sock = b.dir.path().join("api.sock");
        let child = b
            .command()
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .args(["serve", "-H", &format!("unix://{}", sock.display())])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting berth serve");
        let s = Server {
            child: Some(child),
            sock,
            docker_config: tempfile::tempdir().unwrap(),
        };
        super::wait_for("the API socket", Duration::from_secs(10), || {
            UnixStream::connect(&s.sock).is_ok()
        });
        s
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// A client command with this server as its daemon; a missing client fails the test.
    pub fn client(&self, program: &str) -> Command {
        assert!(
            Path::new(program).exists(),
            "{program} is needed by the API tests: run scripts/setup.sh"
        );
        let mut c = Command::new(program);
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.docker_config.path())
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_BUILDKIT")
            .stdin(Stdio::null());
        c
    }

    /// The docker CLI against this server: (exit code, stdout, stderr).
    pub fn docker(&self, args: &[&str]) -> (i32, String, String) {
        let out = self
            .client(DOCKER)
            .args(args)
            .output()
            .expect("running docker");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.docker(args);
        assert_eq!(code, 0, "docker {args:?}: {out}{err}");
        out
    }

    /// SIGTERM, then the exit status and what the server printed (with piped stderr).
    pub fn stop(&mut self) -> (i32, String) {
        let child = self.child.take().unwrap();
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: as in `stop`.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}
