//! BuildKit's plain progress format: numbered vertices (`#5 [2/4] RUN …`), their output lines
//! with elapsed seconds, `CACHED`, `DONE 0.3s`, `ERROR: …`.

use std::io::Write;
use std::time::Instant;

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// BuildKit's `--progress=plain`.
    Plain,
    /// Nothing (`-q`).
    Quiet,
}

pub struct Progress {
    mode: ProgressMode,
    out: Box<dyn Write>,
    next: usize,
}

/// One vertex.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub id: usize,
    pub start: Instant,
}

impl Progress {
    pub fn new(mode: ProgressMode, out: Box<dyn Write>) -> Self {
        Progress { mode, out, next: 1 }
    }

    fn emit(&mut self, text: &str) {
        if self.mode == ProgressMode::Plain {
            let _ = self.out.write_all(text.as_bytes());
            let _ = self.out.flush();
        }
    }

    pub fn begin(&mut self, title: &str) -> Step {
        let id = self.next;
        self.next += 1;
        self.emit(&format!("#{id} {title}\n"));
        Step {
            id,
            start: Instant::now(),
        }
    }

    /// A status line (`#3 transferring context: 2B done`).
    pub fn detail(&mut self, s: Step, text: &str) {
        self.emit(&format!("#{} {text}\n", s.id));
    }

    /// A line of a RUN step's output, with the seconds since the step began.
    pub fn output(&mut self, s: Step, text: &str) {
        let t = s.start.elapsed().as_secs_f64();
        self.emit(&format!("#{} {t:.3} {text}\n", s.id));
    }

    pub fn cached(&mut self, s: Step) {
        self.emit(&format!("#{} CACHED\n\n", s.id));
    }

    pub fn done(&mut self, s: Step) {
        let t = s.start.elapsed().as_secs_f64();
        self.emit(&format!("#{} DONE {t:.1}s\n\n", s.id));
    }

    pub fn error(&mut self, s: Step, msg: &str) {
        let first = msg.lines().next().unwrap_or_default();
        self.emit(&format!("#{} ERROR: {first}\n\n", s.id));
    }
}
