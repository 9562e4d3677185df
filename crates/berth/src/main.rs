//! `berth`: the command-line front end. It parses docker-style commands, calls the engine, and
//! formats the results; it holds no image or container logic of its own.

mod cli;
mod cli_run;
mod commands;
mod output;

use std::process::ExitCode;

/// An error that carries the exit code Docker's CLI would use.
#[derive(Debug)]
pub struct StatusError {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatusError {}

/// Exits with `code` after printing nothing more (the command already reported its errors).
pub fn exit_status(code: u8) -> anyhow::Error {
    StatusError {
        code,
        message: String::new(),
    }
    .into()
}

/// Which of the docker CLI's exit-status rules a failed engine call falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Every command but the four below: any daemon error exits 1.
    Daemon,
    /// `run` and `create`: a daemon error exits 125; a container command that cannot be run
    /// exits 126 (not executable) or 127 (not found), as the runtime classed it.
    Run,
    /// `start`: 126/127 for a command that cannot be run, 1 for any other error.
    Start,
    /// `exec`: 126/127 for a command that cannot be run (an exec that fails in the runtime
    /// for another reason is 126 too), 1 for a daemon error.
    Exec,
}

/// The one place engine errors become exit statuses. The docker CLI does not tell daemon
/// errors apart by kind (a missing container and a name conflict both exit 1, or 125 for
/// `run`), so every class maps to the verb's daemon status; the runtime's own codes (126,
/// 127) pass through for the verbs that run a command.
pub fn exit_code(e: &berth_engine::EngineError, verb: Verb) -> u8 {
    use berth_engine::ErrorClass as C;
    let runtime = match e {
        berth_engine::EngineError::Runtime(r) => Some(r.exit_code().clamp(0, 255) as u8),
        _ => None,
    };
    match (verb, runtime) {
        (Verb::Run, Some(code)) => code,
        (Verb::Start, Some(code)) if code != 125 => code,
        (Verb::Exec, Some(125)) => 126,
        (Verb::Exec, Some(code)) => code,
        _ => match e.class() {
            C::NotFound
            | C::Conflict
            | C::InvalidArgument
            | C::FailedPrecondition
            | C::Unauthenticated
            | C::PermissionDenied
            | C::Unavailable
            | C::Canceled
            | C::Internal => {
                if verb == Verb::Run {
                    125
                } else {
                    1
                }
            }
        },
    }
}

fn main() -> ExitCode {
    // The container monitor lives in this binary too: reached through a `berth-monitor`
    // symlink (the engine makes one) or the hidden `__monitor` subcommand.
    let arg0 = std::env::args_os().next().unwrap_or_default();
    if std::path::Path::new(&arg0).file_name() == Some(std::ffi::OsStr::new("berth-monitor")) {
        berth_engine::monitor_main();
    }
    if std::path::Path::new(&arg0).file_name() == Some(std::ffi::OsStr::new("berth-netproxy")) {
        berth_engine::containers::network::netproxy_main();
    }
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new("__monitor")) {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
        let err = std::process::Command::new(exe)
            .arg0("berth-monitor")
            .args(std::env::args_os().skip(2))
            .exec();
        eprintln!("berth: cannot run the monitor: {err}");
        return ExitCode::from(125);
    }
    // Descriptors inherited from whoever started us must not leak into container monitors.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    exit_like_other_clis_on_closed_stdout();
    let argv = cli::stop_options_at_first_operand(std::env::args_os().collect());
    let parsed = cli::command()
        .try_get_matches_from(argv)
        .and_then(|m| <cli::Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let args = match parsed {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            if e.kind() == ErrorKind::MissingRequiredArgument {
                if let Some(command) = command_path(&e) {
                    // Docker's words and status for `rm $(ps -aq)` when nothing is listed.
                    eprintln!(
                        "\"{command}\" requires {}.\nSee '{command} --help'.",
                        required_arguments(&command)
                    );
                    return ExitCode::from(1);
                }
            }
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                _ => {
                    eprint!("{}", one_error_style(&e));
                    ExitCode::from(125)
                }
            };
        }
    };
    berth_engine::trace("cli: parsed");
    let result = commands::run(args);
    berth_engine::finish_deferred_syncs();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(status) = err.downcast_ref::<StatusError>() {
                if !status.message.is_empty() {
                    eprintln!("Error: {}", status.message);
                }
                return ExitCode::from(status.code);
            }
            let code = err
                .downcast_ref::<berth_engine::EngineError>()
                .map(|e| exit_code(e, Verb::Daemon))
                .unwrap_or(1);
            // One line: the error and its causes, without a backtrace.
            let mut msg = err.to_string();
            for cause in err.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!("Error: {msg}");
            ExitCode::from(code)
        }
    }
}

/// The command a parse error is about (`berth rm`, `berth container rm`), from clap's usage
/// line: the words before the first option or argument.
fn command_path(e: &clap::Error) -> Option<String> {
    let usage = e.get(clap::error::ContextKind::Usage)?.to_string();
    let line = usage.lines().find(|l| l.contains("Usage:"))?;
    let words: Vec<&str> = line
        .split_once("Usage:")?
        .1
        .split_whitespace()
        .take_while(|w| !w.starts_with(['-', '<', '[']))
        .collect();
    (words.len() > 1).then(|| words.join(" "))
}

/// "at least 1 argument", "exactly 2 arguments": what the command's positional arguments ask.
fn required_arguments(command: &str) -> String {
    use clap::CommandFactory;
    let mut cmd = cli::Cli::command();
    for word in command.split_whitespace().skip(1) {
        match cmd.find_subcommand(word) {
            Some(sub) => cmd = sub.clone(),
            None => break,
        }
    }
    let (mut min, mut open_ended) = (0usize, false);
    for arg in cmd.get_positionals() {
        let range = arg.get_num_args().unwrap_or_default();
        if arg.is_required_set() {
            min += range.min_values().max(1);
        }
        if !arg.is_required_set() || range.max_values() == usize::MAX {
            open_ended = true;
        }
    }
    let min = min.max(1);
    let noun = if min == 1 { "argument" } else { "arguments" };
    if open_ended {
        format!("at least {min} {noun}")
    } else {
        format!("exactly {min} {noun}")
    }
}

/// `berth images | head -0`: printing into a closed pipe panics in Rust (SIGPIPE is ignored so
/// that sockets report EPIPE). End the way `ls` or docker end there instead: killed by SIGPIPE,
/// with nothing on stderr. Every other panic keeps the default report.
fn exit_like_other_clis_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            // SAFETY: restoring the default disposition and raising a signal in this process;
            // no handler code runs.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
            std::process::exit(141);
        }
        default(info);
    }));
}

/// A parse error in berth's one style: `Error: …`, an optional `hint: …`, and where to read
/// more (clap's own has a lowercase `error:`, a `tip:` and the whole usage).
fn one_error_style(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let message = first.strip_prefix("error: ").unwrap_or(first);
    let mut out = format!("Error: {message}\n");
    for tip in text.lines().filter_map(|l| l.trim().strip_prefix("tip: ")) {
        out.push_str(&format!("hint: {tip}\n"));
    }
    let command = command_path(e).unwrap_or_else(|| "berth".into());
    out.push_str(&format!("See '{command} --help'.\n"));
    out
}
