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

/// A byte count as BuildKit's progress shows it (go-units `HumanSize`: decimal units, four
/// significant digits): `2.43kB`, `12.35MB`, `512B`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 1000.0 {
        0
    } else {
        3 - value.max(1.0).log10().floor() as usize
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn buildkit_sizes() {
        use super::human_size;
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2430), "2.43kB");
        assert_eq!(human_size(12_345), "12.35kB");
        assert_eq!(human_size(123_456_789), "123.5MB");
        assert_eq!(human_size(1_000_000), "1MB");
    }
}
