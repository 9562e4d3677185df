//! `stats`: containers' resource usage, printed as the docker CLI does: a live view redrawn
//! about once a second, or one snapshot with `--no-stream`.

use crate::commands::containers_extra::StatsArgs;
use crate::output::{default_header, human_size, render_rows};
use crate::StatusError;
use anyhow::Result;
use berth_engine::containers::stats::ContainerStats;
use berth_engine::Engine;
use serde_json::{json, Value};
use std::io::Write;

const DEFAULT_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn error(message: String) -> anyhow::Error {
    StatusError { code: 1, message }.into()
}

/// Time between the end of one snapshot and the start of the next (each snapshot samples CPU
/// for a quarter second), so the view changes about once a second.
const REDRAW_PAUSE: std::time::Duration = std::time::Duration::from_millis(750);

/// Streams (clearing the screen before each table, as the docker CLI does) until interrupted
/// or the reader goes away; one snapshot with `--no-stream`.
pub fn stats(engine: &mut Engine, a: StatsArgs) -> Result<()> {
    // Every name must resolve before anything is printed, as docker reports them all.
    let errors: Vec<String> = a
        .containers
        .iter()
        .filter_map(|n| engine.resolve_container(n).err().map(|e| e.to_string()))
        .collect();
    if !errors.is_empty() {
        return Err(error(errors.join("\n")));
    }
    let format = match a.format.as_deref() {
        Some("table") | None => DEFAULT_FORMAT,
        Some(f) => f,
    };
    loop {
        let list = engine
            .container_stats(&a.containers, a.all)
            .map_err(|e| error(e.to_string()))?;
        let rows: Vec<Value> = list
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let shown = a.containers.get(i).cloned().unwrap_or_else(|| s.id.clone());
                stats_row(s, &shown, a.no_trunc)
            })
            .collect();
        let mut text = render_rows(format, &rows, &stats_header)?;
        if !a.no_stream {
            // Clear the screen and go home, then the table: a redraw in place on a terminal.
            text.insert_str(0, "\x1b[2J\x1b[H");
        }
        let mut out = std::io::stdout().lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            // The reader is gone (`stats | head`): nothing more to show.
            return Ok(());
        }
        drop(out);
        if a.no_stream {
            return Ok(());
        }
        std::thread::sleep(REDRAW_PAUSE);
    }
}

fn stats_header(field: &str) -> String {
    match field {
        "Container" => "CONTAINER".into(),
        "ID" => "CONTAINER ID".into(),
        "Name" => "NAME".into(),
        "CPUPerc" => "CPU %".into(),
        "MemUsage" => "MEM USAGE / LIMIT".into(),
        "MemPerc" => "MEM %".into(),
        "NetIO" => "NET I/O".into(),
        "BlockIO" => "BLOCK I/O".into(),
        "PIDs" => "PIDS".into(),
        other => default_header(other),
    }
}

fn stats_row(s: &ContainerStats, container: &str, no_trunc: bool) -> Value {
    let id: String = if no_trunc {
        s.id.clone()
    } else {
        s.id.chars().take(12).collect()
    };
    let name = if s.name.is_empty() {
        "--".to_string()
    } else {
        s.name.clone()
    };
    json!({
        "BlockIO": format!("{} / {}", human_size(s.block_read as f64), human_size(s.block_write as f64)),
        "CPUPerc": format!("{:.2}%", s.cpu_percent),
        "Container": container,
        "ID": id,
        "MemPerc": format!("{:.2}%", s.mem_percent),
        "MemUsage": format!("{} / {}", bytes_size(s.mem_usage as f64), bytes_size(s.mem_limit as f64)),
        "Name": name,
        "NetIO": format!("{} / {}", human_size(s.net_rx as f64), human_size(s.net_tx as f64)),
        "PIDs": s.pids.to_string(),
    })
}

/// go-units `BytesSize`: binary units, `%.4g`.
fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut value = size;
    let mut i = 0;
    while value >= 1024.0 && i < UNITS.len() - 1 {
        value /= 1024.0;
        i += 1;
    }
    format!("{}{}", format_g4(value), UNITS[i])
}

/// Go's `%.4g` for values below 10000.
fn format_g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    let decimals = (3 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sizes() {
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(512.0), "512B");
        assert_eq!(bytes_size(64.0 * 1024.0 * 1024.0), "64MiB");
        assert_eq!(bytes_size(1_261_568.0), "1.203MiB");
        assert_eq!(bytes_size(7.5 * 1024.0 * 1024.0 * 1024.0), "7.5GiB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
    }

    #[test]
    fn row_and_headers() {
        let s = ContainerStats {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            running: true,
            cpu_percent: 1.234,
            mem_usage: 1024 * 1024,
            mem_limit: 256 * 1024 * 1024,
            mem_percent: 0.390625,
            pids: 3,
            ..Default::default()
        };
        let r = stats_row(&s, "web", false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["MemUsage"], "1MiB / 256MiB");
        assert_eq!(r["CPUPerc"], "1.23%");
        assert_eq!(r["MemPerc"], "0.39%");
        assert_eq!(r["NetIO"], "0B / 0B");
        assert_eq!(r["PIDs"], "3");
        assert_eq!(stats_header("MemUsage"), "MEM USAGE / LIMIT");
    }
}
