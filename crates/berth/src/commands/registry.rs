//! `pull`, `push`, `login`, `logout`, `registry serve`, `registry gc`.

use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs, RegistryGcArgs, RegistryServeArgs};
use crate::output::human_size;
use anyhow::{anyhow, bail, Context, Result};
use berth_engine::registry::{
    gc_registry, serve_registry, server_key, LayerStatus, Progress, PullOptions, PushOptions,
    ServerConfig, DEFAULT_SERVER,
};
use berth_engine::Engine;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

/// Prints progress as Docker does: bars on a terminal, one line per change otherwise.
enum Printer {
    Quiet,
    Lines {
        seen: HashMap<String, LayerStatus>,
    },
    Bars {
        multi: MultiProgress,
        bars: HashMap<String, ProgressBar>,
        /// Messages that come once the layer lines are drawn (`Digest:`, `Status:`): printed
        /// below them at the end, in Docker's order.
        after: Vec<String>,
    },
}

impl Printer {
    fn new(quiet: bool) -> Printer {
        if quiet {
            Printer::Quiet
        } else if std::io::stdout().is_terminal() {
            Printer::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                bars: HashMap::new(),
                after: Vec::new(),
            }
        } else {
            Printer::Lines {
                seen: HashMap::new(),
            }
        }
    }

    fn event(&mut self, ev: Progress) {
        match self {
            Printer::Quiet => {}
            Printer::Lines { seen } => match ev {
                Progress::Message(m) => println!("{m}"),
                Progress::Layer { id, status, .. } => {
                    if matches!(status, LayerStatus::Downloading | LayerStatus::Pushing) {
                        return;
                    }
                    if seen.get(&id) != Some(&status) {
                        println!("{id}: {}", status.text());
                        seen.insert(id, status);
                    }
                }
            },
            Printer::Bars { multi, bars, after } => match ev {
                Progress::Message(m) => {
                    if bars.is_empty() {
                        println!("{m}");
                    } else {
                        after.push(m);
                    }
                }
                Progress::Layer {
                    id,
                    status,
                    current,
                    total,
                } => {
                    let bar = bars.entry(id.clone()).or_insert_with(|| {
                        let b = multi.add(ProgressBar::new(total.unwrap_or(0)));
                        b.set_style(
                            ProgressStyle::with_template("{prefix}: {msg}")
                                .expect("valid template"),
                        );
                        b.set_prefix(id.clone());
                        b
                    });
                    if matches!(status, LayerStatus::Downloading | LayerStatus::Pushing)
                        && current < total.unwrap_or(0)
                    {
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{prefix}: {msg} [{bar:40}] {bytes}/{total_bytes}",
                            )
                            .expect("valid template")
                            .progress_chars("=> "),
                        );
                        if let Some(t) = total {
                            bar.set_length(t);
                        }
                        bar.set_position(current);
                    } else {
                        bar.set_style(
                            ProgressStyle::with_template("{prefix}: {msg}")
                                .expect("valid template"),
                        );
                    }
                    bar.set_message(status.text());
                    if status.is_final() {
                        bar.finish();
                    }
                }
            },
        }
    }

    fn done(self) {
        if let Printer::Bars { multi, bars, after } = self {
            for b in bars.values() {
                if !b.is_finished() {
                    b.finish();
                }
            }
            drop(bars);
            drop(multi);
            for m in after {
                println!("{m}");
            }
        }
    }
}

pub fn pull(engine: &mut Engine, a: PullArgs) -> Result<()> {
    let mut printer = Printer::new(a.quiet);
    let opts = PullOptions {
        all_tags: a.all_tags,
        platform: a.platform.clone(),
        quiet: a.quiet,
        ..Default::default()
    };
    let result = engine.pull_image(&a.name, &opts, &mut |ev| printer.event(ev));
    printer.done();
    let result = result?;
    println!("{}", result.reference);
    Ok(())
}

pub fn push(engine: &mut Engine, a: PushArgs) -> Result<()> {
    let mut printer = Printer::new(a.quiet);
    let opts = PushOptions {
        all_tags: a.all_tags,
        quiet: a.quiet,
        ..Default::default()
    };
    let result = engine.push_image(&a.name, &opts, &mut |ev| printer.event(ev));
    printer.done();
    let result = result?;
    if a.quiet {
        println!("{}", result.reference);
    }
    Ok(())
}

fn prompt(label: &str) -> Result<String> {
    print!("{label}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Reads a password from the terminal without echoing it.
fn prompt_password() -> Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return prompt("Password: ");
    }
    let saved = tcgetattr(&stdin).context("reading terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).context("turning off echo")?;
    let line = prompt("Password: ");
    let _ = tcsetattr(&stdin, OptionalActions::Now, &saved);
    println!();
    line
}

pub fn login(engine: &Engine, a: LoginArgs) -> Result<()> {
    let server = a.server.unwrap_or_else(|| DEFAULT_SERVER.to_string());
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        if a.password_stdin {
            bail!("--password and --password-stdin are mutually exclusive");
        }
    }
    let password = if a.password_stdin {
        if a.username.is_none() {
            bail!("Must provide --username with --password-stdin");
        }
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from stdin")?;
        Some(s.trim_end_matches(['\n', '\r']).to_string())
    } else {
        a.password
    };
    let username = match a.username {
        Some(u) => u,
        None => prompt("Username: ")?,
    };
    let password = match password {
        Some(p) => p,
        None => prompt_password()?,
    };
    let config = engine.login(&server, username.trim(), &password)?;
    eprintln!(
        "WARNING! Your password will be stored unencrypted in {}.",
        config.display()
    );
    eprintln!("Configure a credential helper to remove this warning. See");
    eprintln!("https://docs.docker.com/engine/reference/commandline/login/#credentials-store");
    eprintln!();
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(engine: &Engine, a: LogoutArgs) -> Result<()> {
    let server = a.server.unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let key = server_key(&server);
    if engine.logout(&server)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(())
}

fn parse_addr(s: &str) -> Result<SocketAddr> {
    let s = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    s.to_socket_addrs()
        .with_context(|| format!("invalid --addr {s:?}: expected HOST:PORT"))?
        .next()
        .ok_or_else(|| anyhow!("--addr {s:?} resolves to no address"))
}

pub fn serve(root: &Path, a: RegistryServeArgs) -> Result<()> {
    let addr = parse_addr(&a.addr)?;
    let storage = a.storage.unwrap_or_else(|| root.join("registry"));
    let mut cfg = ServerConfig::new(addr, storage.clone());
    cfg.htpasswd = a.htpasswd;
    cfg.token_auth = a.token_auth;
    cfg.tls_cert = a.tls_cert;
    cfg.tls_key = a.tls_key;
    cfg.read_only = a.read_only;
    cfg.delete_enabled = a.delete_enabled;
    serve_registry(cfg, |bound, tls| {
        println!(
            "Listening on {}://{bound} (storage {})",
            if tls { "https" } else { "http" },
            storage.display()
        );
        let _ = std::io::stdout().flush();
    })?;
    Ok(())
}

pub fn gc(root: &Path, a: RegistryGcArgs) -> Result<()> {
    let storage = a.storage.unwrap_or_else(|| root.join("registry"));
    if !storage.is_dir() {
        bail!("no registry at {}", storage.display());
    }
    let report = gc_registry(&storage, a.dry_run)?;
    for d in &report.blobs_removed {
        if a.dry_run {
            println!("blob eligible for deletion: {d}");
        } else {
            println!("Deleted blob: {d}");
        }
    }
    println!(
        "{} manifests, {} blobs marked, {} blobs {}",
        report.manifests,
        report.blobs_kept,
        report.blobs_removed.len(),
        if a.dry_run {
            "eligible for deletion"
        } else {
            "deleted"
        }
    );
    if !a.dry_run {
        println!(
            "Total reclaimed space: {}",
            human_size(report.bytes_freed as f64)
        );
    }
    Ok(())
}
