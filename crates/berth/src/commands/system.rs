//! `version` and `info`.

use crate::cli::FormatOnly;
use crate::output::{human_size, print_inspect};
use anyhow::Result;
use berth_engine::Engine;
use serde_json::json;

pub fn version(engine: &Engine, args: FormatOnly) -> Result<()> {
    let v = engine.version();
    let value = json!({
        "Client": {
            "Version": v.version,
            "ApiVersion": v.api_version,
            "Os": v.os,
            "Arch": v.arch,
        },
        "Server": v,
    });
    if let Some(f) = args.format.as_deref() {
        // `--format json` is the docker CLI's shorthand for `{{json .}}`.
        let f = if f == "json" { "{{json .}}" } else { f };
        let s = berth_gotemplate::Template::parse(f)?.execute(&value)?;
        println!("{s}");
        return Ok(());
    }
    println!("Client:");
    println!(" Version:           {}", v.version);
    println!(" API version:       {}", v.api_version);
    println!(" OS/Arch:           {}/{}", v.os, v.arch);
    println!();
    println!("Server: berth");
    println!(" Engine:");
    println!("  Version:          {}", v.version);
    println!(
        "  API version:      {} (minimum version {})",
        v.api_version, v.min_api_version
    );
    println!("  Git commit:       {}", v.git_commit);
    println!("  OS/Arch:          {}/{}", v.os, v.arch);
    println!("  Kernel:           {}", v.kernel_version);
    Ok(())
}

pub fn info(engine: &Engine, args: FormatOnly) -> Result<()> {
    let i = engine.info()?;
    if let Some(f) = args.format.as_deref() {
        let v = berth_engine::shape::info(serde_json::to_value(&i)?);
        if f == "json" || f == "{{json .}}" {
            println!("{}", serde_json::to_string(&v)?);
            return Ok(());
        }
        return print_inspect(&[v], Some(f));
    }
    println!("Server:");
    println!(" Containers: {}", i.containers);
    println!("  Running: {}", i.containers_running);
    println!("  Paused: {}", i.containers_paused);
    println!("  Stopped: {}", i.containers_stopped);
    println!(" Images: {}", i.images);
    println!(" Server Version: {}", i.server_version);
    println!(" Storage Driver: {}", i.driver);
    for [k, v] in &i.driver_status {
        println!("  {k}: {v}");
    }
    println!(" Cgroup Driver: {}", i.cgroup_driver);
    println!(" Cgroup Version: {}", i.cgroup_version);
    println!(
        " Runtimes: {}",
        i.runtimes.keys().cloned().collect::<Vec<_>>().join(" ")
    );
    println!(" Default Runtime: {}", i.default_runtime);
    println!(" Kernel Version: {}", i.kernel_version);
    println!(" Operating System: {}", i.operating_system);
    println!(" OSType: {}", i.os_type);
    println!(" Architecture: {}", i.architecture);
    println!(" CPUs: {}", i.ncpu);
    println!(" Total Memory: {}", human_size(i.mem_total as f64));
    println!(" Name: {}", i.name);
    println!(" Root Dir: {}", i.root_dir);
    println!(" Run Root: {}", i.run_root);
    Ok(())
}

/// `berth serve`: the Engine API server, until SIGTERM/SIGINT.
pub fn serve(config: berth_engine::EngineConfig, a: crate::cli::ServeArgs) -> Result<()> {
    // dockerd's defaults for the files --tlsverify needs.
    let default_path = |name: &str| {
        a.tlsverify.then(|| {
            std::env::var_os("DOCKER_CERT_PATH")
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker"))
                })
                .unwrap_or_else(|| std::path::PathBuf::from("/root/.docker"))
                .join(name)
        })
    };
    let tls = berth_api::TlsOptions {
        verify: a.tlsverify,
        ca: a.tlscacert.or_else(|| default_path("ca.pem")),
        cert: a.tlscert.or_else(|| default_path("cert.pem")),
        key: a.tlskey.or_else(|| default_path("key.pem")),
    };
    berth_api::serve(berth_api::ServeOptions {
        config,
        hosts: a.hosts,
        group: a.group,
        insecure_tcp: a.insecure_tcp,
        tls,
    })?;
    Ok(())
}

/// `berth completion SHELL`: the completion script on stdout.
pub fn completion(a: crate::cli::CompletionArgs) -> Result<()> {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "berth", &mut std::io::stdout());
    Ok(())
}

/// Manual pages for berth and every subcommand (`berth-run.1`, `berth-image-ls.1`, …).
pub fn man_pages(a: crate::cli::ManPagesArgs) -> Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(&a.dir)?;
    let cmd = crate::cli::Cli::command();
    clap_mangen::generate_to(cmd, &a.dir)?;
    Ok(())
}

/// `berth events`: the recorded history from `--since`, then new events as they happen, until
/// `--until` or Ctrl-C (or the reader goes away).
pub fn events(engine: &Engine, a: crate::cli::EventsArgs) -> Result<()> {
    use berth_engine::events::{EventFilters, EventsQuery};
    use std::io::Write;
    let bad = |m: String| crate::StatusError {
        code: 1,
        message: m,
    };
    let now = chrono::Utc::now();
    let since = match &a.since {
        Some(s) => Some(parse_event_time(s, now).ok_or_else(|| bad(format!("invalid value for \"since\": {s:?} (use a timestamp, RFC 3339 or a duration such as 10m)")))?),
        None => None,
    };
    let until = match &a.until {
        Some(s) => Some(parse_event_time(s, now).ok_or_else(|| bad(format!("invalid value for \"until\": {s:?} (use a timestamp, RFC 3339 or a duration such as 10m)")))?),
        None => None,
    };
    let filters = EventFilters::parse(&a.filters)
        .map_err(|e| bad(format!("Error response from daemon: {e}")))?;
    let template = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(berth_gotemplate::Template::parse("{{json .}}")?),
        Some(f) => Some(berth_gotemplate::Template::parse(f)?),
    };
    let json_only = matches!(a.format.as_deref(), Some("json") | Some("{{json .}}"));
    let q = EventsQuery {
        since,
        until,
        filters,
    };
    let mut out = std::io::stdout();
    engine.events(&q, &|| false, &mut |e| {
        let line = if json_only {
            e.api_json().to_string()
        } else if let Some(t) = &template {
            t.execute(&event_template_value(e))
                .map_err(|err| std::io::Error::other(err.to_string()))?
        } else {
            default_event_line(e)
        };
        writeln!(out, "{line}")?;
        out.flush()
    })?;
    Ok(())
}

/// The docker CLI's line: local time with nanoseconds, type, action, ID, sorted attributes.
fn default_event_line(e: &berth_engine::events::Event) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(e.time_nano).with_timezone(&chrono::Local);
    let mut line = format!(
        "{} {} {} {}",
        t.format("%Y-%m-%dT%H:%M:%S%.9f%:z"),
        e.kind,
        e.action,
        e.actor.id
    );
    if !e.actor.attributes.is_empty() {
        let attrs: Vec<String> = e
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

/// The fields a `--format` template sees, named as the docker CLI's Go structs name them.
fn event_template_value(e: &berth_engine::events::Event) -> serde_json::Value {
    let api = e.api_json();
    json!({
        "Status": api["status"],
        "ID": api["id"],
        "From": api["from"],
        "Type": e.kind,
        "Action": e.action,
        "Actor": {"ID": e.actor.id, "Attributes": e.actor.attributes},
        "Scope": e.scope,
        "Time": e.time,
        "TimeNano": e.time_nano,
    })
}

/// `--since`/`--until`: Unix seconds (with a fraction), RFC 3339, a date, or a duration before
/// now (`10m`, `1h30m`), as the docker CLI takes them. Nanoseconds since the epoch.
fn parse_event_time(s: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    if let Ok(secs) = s.parse::<f64>() {
        return Some((secs * 1e9) as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_nanos_opt();
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let n: f64 = number.parse().ok()?;
        number.clear();
        total += n * match c {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            _ => return None,
        };
        any = true;
    }
    if !number.is_empty() || !any {
        return None;
    }
    Some(now.timestamp_nanos_opt()? - (total * 1e9) as i64)
}

#[cfg(test)]
mod tests {
    use super::parse_event_time;

    #[test]
    fn event_times() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-03T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let at = |s: &str| parse_event_time(s, now);
        assert_eq!(at("1700000000"), Some(1_700_000_000_000_000_000));
        assert_eq!(at("1700000000.5"), Some(1_700_000_000_500_000_000));
        assert_eq!(
            at("10m"),
            Some(now.timestamp_nanos_opt().unwrap() - 600_000_000_000)
        );
        assert_eq!(
            at("1h30m"),
            Some(now.timestamp_nanos_opt().unwrap() - 5_400_000_000_000)
        );
        assert_eq!(
            at("2026-12-03T11:00:00Z"),
            Some(now.timestamp_nanos_opt().unwrap() - 3_600_000_000_000)
        );
        assert_eq!(
            at("2026-12-03"),
            Some(now.timestamp_nanos_opt().unwrap() - 43_200_000_000_000)
        );
        assert_eq!(at("soon"), None);
        assert_eq!(at("10x"), None);
    }
}
