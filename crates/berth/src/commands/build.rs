//! `berth build` and `berth builder prune`.

use crate::{exit_status, StatusError};
use anyhow::Result;
use berth_engine::build::{BuildError, BuildOptions, Progress, ProgressMode};
use berth_engine::Engine;
use clap::{Args, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `build [OPTIONS] PATH | -`
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (format: "name:tag")
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile"); "-" reads it from stdin
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Networking mode for the RUN instructions during build (default: host; none)
    #[arg(long)]
    pub network: Option<String>,
    /// Set metadata for an image
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Secret to expose to the build (format: "id=mysecret,src=/local/secret")
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Set type of progress output (auto, plain, tty, quiet): auto is tty on a terminal
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Set target platform for build
    #[arg(long)]
    pub platform: Option<String>,
    /// Build a second time without the cache and report every difference between the two
    /// images (exit status 1 when they differ)
    #[arg(long)]
    pub check_reproducible: bool,
    /// Make the Python requirement checks errors: the build fails (exit status 1) and the
    /// image is neither written nor tagged
    #[arg(long)]
    pub strict: bool,
    /// "now": stamp created, the history and new files' mtimes with the clock (as Docker; no
    /// two builds alike), or seconds since 1970 (as SOURCE_DATE_EPOCH, which it overrides).
    /// Default: SOURCE_DATE_EPOCH, else the base image's created time for the layers and the
    /// commit time of the context's git HEAD (else the base's) for created and the history
    #[arg(long, env = "BERTH_BUILD_TIMESTAMP", value_name = "now|SECONDS")]
    pub timestamp: Option<String>,
    /// Build context: a directory, or "-" (a Dockerfile on stdin, no context)
    pub path: String,
}

/// `lock IMAGE [-o FILE]`
#[derive(Debug, Args)]
pub struct LockArgs {
    /// Write to a file instead of the standard output
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    pub image: String,
}

#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Remove build cache
    Prune(BuilderPruneArgs),
}

#[derive(Debug, Args)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long = "filter")]
    pub filters: Vec<String>,
}

static CANCEL: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    CANCEL.store(true, Ordering::SeqCst);
}

fn bad(msg: String) -> anyhow::Error {
    StatusError {
        code: 125,
        message: msg,
    }
    .into()
}

fn kv(s: &str, what: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None if what == "build-arg" => match std::env::var(s) {
            Ok(v) => Ok((s.to_string(), v)),
            Err(_) => Err(bad(format!(
                "--build-arg {s}: no value and no such environment variable"
            ))),
        },
        None => Ok((s.to_string(), String::new())),
    }
}

/// `SOURCE_DATE_EPOCH` from the environment (unset or empty: none), for build, commit and
/// import.
pub fn source_date_epoch_env() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.parse().map(Some).map_err(|_| {
            bad(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds since 1970"
            ))
        }),
        _ => Ok(None),
    }
}

pub fn build(engine: &mut Engine, a: BuildArgs) -> Result<()> {
    let mut opts = BuildOptions {
        tags: a.tags.clone(),
        target: a.target.clone(),
        no_cache: a.no_cache,
        pull: a.pull,
        platform: a.platform.clone(),
        strict: a.strict,
        ..Default::default()
    };
    if let Some(n) = &a.network {
        if !matches!(n.as_str(), "default" | "host" | "none") {
            return Err(bad(format!(
                "network mode {n:?} not supported by build: use default, host or none"
            )));
        }
        opts.network = Some(n.clone());
    }
    for b in &a.build_args {
        let (k, v) = kv(b, "build-arg")?;
        opts.build_args.insert(k, v);
    }
    for l in &a.labels {
        let (k, v) = kv(l, "label")?;
        opts.labels.insert(k, v);
    }
    for s in &a.secrets {
        let mut id = None;
        let mut src = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("type", "file")) => {}
                _ => return Err(bad(format!("--secret {s:?}: expected id=<id>,src=<file>"))),
            }
        }
        match (id, src) {
            (Some(i), Some(p)) => {
                opts.secrets.insert(i, p);
            }
            _ => return Err(bad(format!("--secret {s:?}: expected id=<id>,src=<file>"))),
        }
    }
    match a.timestamp.as_deref() {
        Some("now") => opts.timestamp_now = true,
        Some(v) => {
            opts.source_date_epoch = Some(v.parse().map_err(|_| {
                bad(format!(
                    "invalid --timestamp {v:?}: use \"now\" or a number of seconds since 1970"
                ))
            })?)
        }
        None => opts.source_date_epoch = source_date_epoch_env()?,
    }
    let mut stdin_used = false;
    if a.path == "-" {
        let mut t = String::new();
        std::io::stdin().read_to_string(&mut t)?;
        opts.dockerfile_text = Some(t);
        stdin_used = true;
    } else {
        let p = PathBuf::from(&a.path);
        if !p.is_dir() {
            return Err(bad(format!(
                "unable to prepare context: path {:?} not found or not a directory",
                a.path
            )));
        }
        opts.context = Some(p);
        // The context is a directory of the user's checkout: its git HEAD may be above it,
        // and it is there for the next build, so its files' digests are worth keeping.
        opts.git_above_context = true;
        opts.keep_hashes = true;
    }
    match a.file.as_deref() {
        Some("-") if stdin_used => {
            return Err(bad(
                "the Dockerfile and the context cannot both come from stdin".into(),
            ))
        }
        Some("-") => {
            let mut t = String::new();
            std::io::stdin().read_to_string(&mut t)?;
            opts.dockerfile_text = Some(t);
        }
        Some(f) => {
            let p = PathBuf::from(f);
            if !p.exists() {
                if let Some(c) = &opts.context {
                    if c.join(&p).exists() && p.is_relative() {
                        opts.dockerfile = Some(c.join(&p));
                    }
                }
            }
            if opts.dockerfile.is_none() {
                opts.dockerfile = Some(p);
            }
        }
        None => {}
    }
    if !matches!(a.progress.as_str(), "auto" | "plain" | "tty" | "quiet") {
        return Err(bad(format!(
            "invalid --progress {:?}: use auto, plain, tty or quiet",
            a.progress
        )));
    }
    use std::io::IsTerminal;
    let mode = match a.progress.as_str() {
        _ if a.quiet => ProgressMode::Quiet,
        "quiet" => ProgressMode::Quiet,
        "plain" => ProgressMode::Plain,
        "tty" => ProgressMode::Tty,
        _ if std::io::stderr().is_terminal() => ProgressMode::Tty,
        _ => ProgressMode::Plain,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    opts.cancel = Some(cancel.clone());
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let watcher = {
        let cancel = cancel.clone();
        std::thread::spawn(move || loop {
            if CANCEL.load(Ordering::SeqCst) {
                cancel.store(true, Ordering::SeqCst);
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        })
    };
    drop(watcher);
    let mut progress = Progress::new(mode, Box::new(std::io::stderr()));
    let built = engine.build(&opts, &mut progress);
    progress.finish();
    match built {
        Ok(out) => {
            // After the progress, as BuildKit prints its warnings; also with -q.
            if !out.warnings.is_empty() {
                eprintln!(
                    "{} requirement warning{} (--strict makes them errors):",
                    out.warnings.len(),
                    if out.warnings.len() == 1 { "" } else { "s" }
                );
                for w in &out.warnings {
                    eprintln!(" - {w}");
                }
            }
            if let Some(p) = &a.iidfile {
                std::fs::write(p, out.id.to_string())?;
            }
            if a.quiet {
                println!("{}", out.id);
            }
            if a.check_reproducible {
                return check_reproducible(engine, &opts, &out, mode);
            }
            Ok(())
        }
        Err(BuildError::Interrupted) => Err(StatusError {
            code: 130,
            message: "build interrupted: no image was written; the build cache is intact".into(),
        }
        .into()),
        Err(e) => {
            let message = e.to_string();
            Err(StatusError {
                code: crate::exit_code(&berth_engine::EngineError::from(e), crate::Verb::Daemon),
                message,
            }
            .into())
        }
    }
}

/// `--check-reproducible`: the second, uncached build and what differs.
fn check_reproducible(
    engine: &mut Engine,
    opts: &BuildOptions,
    first: &berth_engine::build::BuildOutput,
    mode: ProgressMode,
) -> Result<()> {
    eprintln!("Checking reproducibility: building again without the cache");
    let mut progress = Progress::new(mode, Box::new(std::io::stderr()));
    let report = engine.check_reproducible(opts, first, &mut progress);
    progress.finish();
    let report = report?;
    if report.reproducible() {
        eprintln!(
            "Reproducible: the build without the cache gave the same image {}",
            report.first
        );
        return Ok(());
    }
    eprintln!(
        "NOT reproducible: the build without the cache gave {} instead of {}",
        report.second, report.first
    );
    for d in &report.differences {
        eprintln!("  {d}");
    }
    if report.total > report.differences.len() {
        eprintln!("  … and {} more", report.total - report.differences.len());
    }
    if opts.timestamp_now
        && report
            .differences
            .iter()
            .any(|d| d.contains("created") || d.contains("mtime"))
    {
        eprintln!(
            "Hint: timestamps differ; --timestamp now (or BERTH_BUILD_TIMESTAMP=now) stamps them with the clock — drop it to build with a fixed epoch"
        );
    }
    Err(exit_status(1))
}

/// `berth lock`: the engine's lock file, to a file (written beside it and renamed) or stdout.
pub fn lock(engine: &Engine, a: LockArgs) -> Result<()> {
    let text = engine.python_lock(&a.image)?;
    match &a.output {
        Some(path) => {
            use std::io::Write;
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::Builder::new()
                .prefix(".berth-lock-")
                .tempfile_in(dir)
                .map_err(|e| anyhow::anyhow!("creating a file in {}: {e}", dir.display()))?;
            tmp.write_all(text.as_bytes())?;
            tmp.as_file().sync_all()?;
            tmp.persist(path)
                .map_err(|e| anyhow::anyhow!("writing {}: {}", path.display(), e.error))?;
        }
        None => print!("{text}"),
    }
    Ok(())
}

pub fn prune(engine: &mut Engine, a: BuilderPruneArgs) -> Result<()> {
    let mut older = None;
    for f in &a.filters {
        match f.split_once('=') {
            Some(("until", v)) => {
                older = Some(parse_duration(v).ok_or_else(|| {
                    bad(format!(
                        "invalid filter until={v:?}: use a duration such as 24h"
                    ))
                })?)
            }
            _ => return Err(bad(format!("invalid filter {f:?}: use until=<duration>"))),
        }
    }
    if !a.force {
        use std::io::Write;
        if a.all {
            eprint!("WARNING! This will remove all build cache. Are you sure you want to continue? [y/N] ");
        } else {
            eprint!("WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] ");
        }
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let r = engine.prune_build_cache(older, a.all)?;
    println!("Deleted build cache objects: {}", r.entries);
    println!(
        "Total reclaimed space: {}",
        crate::output::human_size(r.space_reclaimed as f64)
    );
    Ok(())
}

fn parse_duration(s: &str) -> Option<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    })
}
