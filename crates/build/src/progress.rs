//! Build progress as BuildKit shows it. Plain (`--progress=plain`, or when stderr is not a
//! terminal): numbered vertices (`#5 [2/4] RUN …`), their output lines with elapsed seconds,
//! `CACHED`, `DONE 0.3s`, `ERROR: …`. Tty (a terminal): one live view redrawn in place ten
//! times a second: the running steps with their elapsed time and last output lines, finished
//! steps collapsed to one line each.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// BuildKit's `--progress=plain`.
    Plain,
    /// BuildKit's `--progress=tty`: the live view (for a terminal).
    Tty,
    /// Nothing (`-q`).
    Quiet,
    /// The classic builder's lines, as the Engine API's `/build` streams them (`Step 2/3 :
    /// RUN …`, the step's output, ` ---> Using cache`): one `write` per message, so a writer
    /// can wrap each in `{"stream": …}`. The steps are the ones that run, numbered as
    /// BuildKit numbers them (metadata instructions such as `ENV` are not steps of their own).
    Classic,
}

pub struct Progress {
    mode: ProgressMode,
    next: usize,
    view: Arc<Mutex<View>>,
    stop: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

/// One vertex.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub id: usize,
    pub start: Instant,
}

impl Progress {
    pub fn new(mode: ProgressMode, out: Box<dyn Write + Send>) -> Self {
        let view = Arc::new(Mutex::new(View {
            out,
            started: Instant::now(),
            vertices: Vec::new(),
            drawn: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        // The live view's clock: running steps' times move even while they print nothing.
        let ticker = (mode == ProgressMode::Tty).then(|| {
            let (view, stop) = (view.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    if let Ok(mut v) = view.lock() {
                        v.redraw();
                    }
                }
            })
        });
        Progress {
            mode,
            next: 1,
            view,
            stop,
            ticker,
        }
    }

    fn with_view(&mut self, f: impl FnOnce(&mut View)) {
        if let Ok(mut v) = self.view.lock() {
            f(&mut v);
        }
    }

    fn emit(&mut self, text: &str) {
        if self.mode == ProgressMode::Plain {
            self.with_view(|v| {
                let _ = v.out.write_all(text.as_bytes());
                let _ = v.out.flush();
            });
        }
    }

    /// Ends the live view with its final frame (every step on one line, a failed step's last
    /// output kept); call before printing anything else. Plain and quiet modes have nothing
    /// to finish.
    pub fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
            self.with_view(|v| {
                for vx in v.vertices.iter_mut().filter(|vx| vx.ended.is_none()) {
                    vx.ended = Some(vx.start.elapsed());
                }
                v.redraw();
            });
        }
    }

    fn live(&mut self, id: usize, f: impl FnOnce(&mut Vertex)) {
        if self.mode == ProgressMode::Tty {
            self.with_view(|v| {
                if let Some(vx) = v.vertices.iter_mut().find(|vx| vx.id == id) {
                    f(vx);
                }
                v.redraw();
            });
        }
    }

    /// Classic mode's text for one message (nothing in the other modes).
    fn classic(&mut self, text: &str) {
        if self.mode == ProgressMode::Classic {
            self.with_view(|v| {
                let _ = v.out.write_all(text.as_bytes());
                let _ = v.out.flush();
            });
        }
    }

    pub fn begin(&mut self, title: &str) -> Step {
        let id = self.next;
        self.next += 1;
        self.emit(&format!("#{id} {title}\n"));
        if let Some(step) = classic_step(title) {
            self.classic(&step);
        }
        let step = Step {
            id,
            start: Instant::now(),
        };
        if self.mode == ProgressMode::Tty {
            self.with_view(|v| {
                v.vertices.push(Vertex {
                    id,
                    title: title.to_string(),
                    start: step.start,
                    ended: None,
                    cached: false,
                    failed: false,
                    log: VecDeque::new(),
                });
                v.redraw();
            });
        }
        step
    }

    /// A status line (`#3 transferring context: 2B done`).
    pub fn detail(&mut self, s: Step, text: &str) {
        self.emit(&format!("#{} {text}\n", s.id));
        self.live(s.id, |vx| vx.push_log(text));
    }

    /// A line of a RUN step's output, with the seconds since the step began.
    pub fn output(&mut self, s: Step, text: &str) {
        let t = s.start.elapsed().as_secs_f64();
        self.emit(&format!("#{} {t:.3} {text}\n", s.id));
        self.classic(&format!("{text}\n"));
        self.live(s.id, |vx| vx.push_log(text));
    }

    pub fn cached(&mut self, s: Step) {
        self.emit(&format!("#{} CACHED\n\n", s.id));
        self.classic(" ---> Using cache\n");
        self.live(s.id, |vx| {
            vx.cached = true;
            vx.ended = Some(Duration::ZERO);
        });
    }

    pub fn done(&mut self, s: Step) {
        let t = s.start.elapsed().as_secs_f64();
        self.emit(&format!("#{} DONE {t:.1}s\n\n", s.id));
        self.live(s.id, |vx| vx.ended = Some(vx.start.elapsed()));
    }

    pub fn error(&mut self, s: Step, msg: &str) {
        let first = msg.lines().next().unwrap_or_default();
        self.emit(&format!("#{} ERROR: {first}\n\n", s.id));
        self.live(s.id, |vx| {
            vx.failed = true;
            vx.ended = Some(vx.start.elapsed());
            vx.push_log(&format!("ERROR: {first}"));
        });
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `[2/3] RUN x` or `[stage 2/3] RUN x` → `Step 2/3 : RUN x` (the classic builder's words);
/// internal vertices (loading the Dockerfile, the context, metadata; exporting) are not steps.
fn classic_step(title: &str) -> Option<String> {
    let rest = title.strip_prefix('[')?;
    let (label, text) = rest.split_once("] ")?;
    let count = label.rsplit(' ').next()?;
    let (n, total) = count.split_once('/')?;
    if n.parse::<u32>().is_err() || total.parse::<u32>().is_err() {
        return None;
    }
    Some(format!("Step {n}/{total} : {text}\n"))
}

/// The live view's state: what each step is doing, and how many lines the last frame took.
struct View {
    out: Box<dyn Write + Send>,
    started: Instant,
    vertices: Vec<Vertex>,
    drawn: usize,
}

struct Vertex {
    id: usize,
    title: String,
    start: Instant,
    ended: Option<Duration>,
    cached: bool,
    failed: bool,
    /// The last lines of output (shown while running, and for a failed step).
    log: VecDeque<String>,
}

/// Output lines shown under a running step, as BuildKit's view shows them.
const LOG_LINES: usize = 6;

impl Vertex {
    fn push_log(&mut self, line: &str) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line.trim_end().to_string());
    }
}

impl View {
    fn redraw(&mut self) {
        let (cols, rows) = terminal_size();
        let frame = self.frame(cols, rows);
        let mut text = String::new();
        if self.drawn > 0 {
            // Back to the first line of the previous frame, and clear from there down.
            text.push_str(&format!("\x1b[{}A\r", self.drawn));
        }
        text.push_str("\x1b[J");
        for line in &frame {
            text.push_str(line);
            text.push('\n');
        }
        self.drawn = frame.len();
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    /// The lines of one frame, fitted to the terminal: the newest steps when they do not all fit.
    fn frame(&self, cols: usize, rows: usize) -> Vec<String> {
        let done = self.vertices.iter().filter(|v| v.ended.is_some()).count();
        let mut lines = vec![format!(
            "[+] Building {:.1}s ({done}/{})",
            self.started.elapsed().as_secs_f64(),
            self.vertices.len()
        )];
        let mut body = Vec::new();
        for v in &self.vertices {
            let secs = v.ended.unwrap_or_else(|| v.start.elapsed()).as_secs_f64();
            let label = if v.cached {
                format!(" => CACHED {}", v.title)
            } else if v.failed {
                format!(" => ERROR {}", v.title)
            } else {
                format!(" => {}", v.title)
            };
            body.push(fit(&label, &format!("{secs:.1}s"), cols));
            if v.ended.is_none() || v.failed {
                for l in &v.log {
                    body.push(clip(&format!(" => => # {l}"), cols));
                }
            }
        }
        let room = rows.saturating_sub(2).max(1);
        let skip = body.len().saturating_sub(room);
        lines.extend(body.into_iter().skip(skip));
        lines
    }
}

/// `label` and, right-aligned, `time`, in `cols` columns (the label clipped to fit).
fn fit(label: &str, time: &str, cols: usize) -> String {
    let room = cols.saturating_sub(time.len() + 1).max(10);
    let label = clip(label, room);
    let pad = room.saturating_sub(label.chars().count());
    format!("{label}{} {time}", " ".repeat(pad))
}

fn clip(s: &str, cols: usize) -> String {
    s.chars().take(cols.max(1)).collect()
}

/// The terminal's columns and rows (stderr's, then stdout's; 80×24 when neither is one).
fn terminal_size() -> (usize, usize) {
    for fd in [2, 1] {
        // SAFETY: TIOCGWINSZ writes one winsize into `ws`; a non-terminal fd fails harmlessly.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
            return (ws.ws_col as usize, ws.ws_row.max(3) as usize);
        }
    }
    (80, 24)
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

#[cfg(test)]
mod classic_tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<String>>>);
    impl Write for Writes {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(b).into_owned());
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn classic_lines_one_write_each() {
        let out = Writes::default();
        let mut p = Progress::new(ProgressMode::Classic, Box::new(out.clone()));
        let s = p.begin("[internal] load build definition from Dockerfile");
        p.detail(s, "transferring dockerfile: 40B done");
        p.done(s);
        let a = p.begin("[1/3] FROM docker.io/library/busybox:latest");
        p.done(a);
        let b = p.begin("[build 2/3] RUN echo hi");
        p.output(b, "hi");
        p.done(b);
        let c = p.begin("[3/3] COPY f /f");
        p.cached(c);
        p.finish();
        assert_eq!(
            *out.0.lock().unwrap(),
            vec![
                "Step 1/3 : FROM docker.io/library/busybox:latest\n",
                "Step 2/3 : RUN echo hi\n",
                "hi\n",
                "Step 3/3 : COPY f /f\n",
                " ---> Using cache\n",
            ]
        );
    }
}

#[cfg(test)]
mod view_tests {
    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn live_view_redraws_in_place_and_collapses_finished_steps() {
        let out = Shared::default();
        let mut p = Progress::new(ProgressMode::Tty, Box::new(out.clone()));
        let a = p.begin("[1/2] FROM busybox");
        p.cached(a);
        let b = p.begin("[2/2] RUN pip install -r requirements.txt");
        p.output(b, "Collecting numpy");
        std::thread::sleep(Duration::from_millis(250));
        let running = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
        // While running: its last output line, under it; redraws go back up and clear.
        assert!(running.contains(" => => # Collecting numpy"), "{running}");
        assert!(running.contains("\x1b[J"), "{running}");
        assert!(running.contains("A\r"), "{running}");
        p.done(b);
        p.finish();
        let all = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
        let last = all.rsplit("\x1b[J").next().unwrap();
        assert!(last.starts_with("[+] Building "), "{last}");
        assert!(last.contains("(2/2)"), "{last}");
        assert!(last.contains(" => CACHED [1/2] FROM busybox"), "{last}");
        assert!(last.contains(" => [2/2] RUN pip install"), "{last}");
        assert!(
            !last.contains("Collecting numpy"),
            "finished steps collapse: {last}"
        );
        assert_eq!(last.lines().count(), 3, "{last}");
    }

    #[test]
    fn a_failed_step_keeps_its_output() {
        let out = Shared::default();
        let mut p = Progress::new(ProgressMode::Tty, Box::new(out.clone()));
        let s = p.begin("[1/1] RUN false");
        p.output(s, "something broke");
        p.error(
            s,
            "process \"false\" did not complete successfully: exit code: 1",
        );
        p.finish();
        let all = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
        let last = all.rsplit("\x1b[J").next().unwrap();
        assert!(last.contains(" => ERROR [1/1] RUN false"), "{last}");
        assert!(last.contains(" => => # something broke"), "{last}");
    }

    #[test]
    fn frames_fit_the_terminal() {
        assert_eq!(fit(" => step", "1.0s", 20).chars().count(), 20);
        assert!(fit(&"x".repeat(100), "1.0s", 40).ends_with(" 1.0s"));
    }
}
