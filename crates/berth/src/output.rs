//! Docker CLI output conventions: tab-aligned tables, human sizes and durations, `--format`
//! templates, and pretty JSON for `inspect`.

use anyhow::{Context, Result};
use berth_gotemplate::{render_header, strip_table_prefix, Template};
use serde_json::Value;
use std::io::Write;

const SPACES: &str = "                                                                ";

/// Go's `text/tabwriter` as the docker CLI configures it: minimum cell width 10, padding 3,
/// spaces; the last cell of a line is not padded.
pub fn tabwrite(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                break;
            }
            let w = (cell.chars().count() + 3).max(10);
            if widths.len() <= i {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    let mut out = String::with_capacity(text.len() + lines.len() * widths.len() * 4 + 64);
    for (li, cells) in lines.iter().enumerate() {
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                let mut pad = widths[i] - cell.chars().count();
                while pad > 0 {
                    let n = pad.min(SPACES.len());
                    out.push_str(&SPACES[..n]);
                    pad -= n;
                }
            }
        }
        if li + 1 < lines.len() {
            out.push('\n');
        }
    }
    out
}

/// go-units `HumanSizeWithPrecision(size, 3)`: decimal units, three significant digits.
pub fn human_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = size;
    let mut i = 0;
    while value >= 1000.0 && i < UNITS.len() - 1 {
        value /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g3(value), UNITS[i])
}

/// Go's `%.3g` for values below 1000.
fn format_g3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    let decimals = (2 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// go-units `HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    let d = seconds as f64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (d / 3600.0) as i64 / 24 / 365)
}

/// "2 hours ago", or "N/A" for an unknown time.
pub fn since(unix: i64) -> String {
    if unix <= 0 {
        return "N/A".into();
    }
    let now = chrono::Utc::now().timestamp();
    format!("{} ago", human_duration(now - unix))
}

/// Go's `time.Time.String()` of a unix time, in UTC: `2024-05-01 12:00:00 +0000 UTC`.
pub fn go_time(unix: i64) -> String {
    match chrono::DateTime::from_timestamp(unix, 0) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string(),
        None => String::new(),
    }
}

/// Renders rows with a docker-style `--format`: `table …` (header plus aligned rows), `json`
/// (one JSON object per line), or a plain template (one line per row).
pub fn render_rows(
    format: &str,
    rows: &[Value],
    header_for: &dyn Fn(&str) -> String,
) -> Result<String> {
    render_rows_with_methods(format, rows, header_for, &|_, _, _| None)
}

/// `.Label "KEY"`, the format method `ps`, `volume ls` and `network ls` rows have in Docker's
/// CLI: the value of one label ("" when unset), from the row's label map.
pub fn label_method<'a>(
    labels: &'a std::collections::BTreeMap<String, String>,
) -> impl Fn(&str, &[Value]) -> Option<std::result::Result<Value, String>> + 'a {
    move |name, args| {
        if name != "Label" {
            return None;
        }
        Some(match args {
            [Value::String(k)] => Ok(Value::String(labels.get(k).cloned().unwrap_or_default())),
            [_] => Err("wrong type for value; expected string".into()),
            _ => Err(format!(
                "wrong number of args for Label: want 1 got {}",
                args.len()
            )),
        })
    }
}

/// A method of the rows: row index, method name, arguments; `None` for no such method.
pub type RowMethods<'a> =
    dyn Fn(usize, &str, &[Value]) -> Option<std::result::Result<Value, String>> + 'a;

/// [`render_rows`] for rows with methods: `methods(row index, method, args)`.
pub fn render_rows_with_methods(
    format: &str,
    rows: &[Value],
    header_for: &dyn Fn(&str) -> String,
    methods: &RowMethods<'_>,
) -> Result<String> {
    if format == "json" {
        let mut out = String::new();
        for row in rows {
            out.push_str(&serde_json::to_string(row)?);
            out.push('\n');
        }
        return Ok(out);
    }
    let (table, body) = strip_table_prefix(format);
    let template = Template::parse(body)?;
    let mut text = String::new();
    if table {
        text.push_str(&render_header(body, header_for)?);
        text.push('\n');
    }
    for (i, row) in rows.iter().enumerate() {
        let m = |name: &str, _recv: &Value, args: &[Value]| methods(i, name, args);
        text.push_str(&template.execute_with_methods(row, &m)?);
        text.push('\n');
    }
    Ok(if table { tabwrite(&text) } else { text })
}

/// Docker's header for a field name: `CreatedSince` → `CREATED`, else upper-cased with spaces
/// between words.
pub fn default_header(field: &str) -> String {
    match field {
        "ID" => "ID".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        _ => {
            let mut out = String::new();
            let chars: Vec<char> = field.chars().collect();
            for (i, c) in chars.iter().enumerate() {
                if i > 0 && c.is_uppercase() && chars[i - 1].is_lowercase() {
                    out.push(' ');
                }
                out.extend(c.to_uppercase());
            }
            out
        }
    }
}

/// `inspect` of any kind of object: looks each name up, prints what was found as `inspect`
/// does, reports each missing one on its own line (`prefix: error`), and exits 1 if any was.
pub fn inspect_each<T: serde::Serialize>(
    names: &[String],
    format: Option<&str>,
    prefix: &str,
    mut lookup: impl FnMut(&str) -> std::result::Result<T, berth_engine::EngineError>,
) -> Result<()> {
    let mut values = Vec::new();
    let mut failed = false;
    for name in names {
        match lookup(name) {
            Ok(v) => values.push(serde_json::to_value(v)?),
            Err(e) => {
                eprintln!("{prefix}: {e}");
                failed = true;
            }
        }
    }
    if !values.is_empty() || !failed || inspect_prints_json(format) {
        print_inspect(&values, format)?;
    }
    if failed {
        return Err(crate::exit_status(1));
    }
    Ok(())
}

/// Whether `inspect` prints the JSON array (then `[]` also when nothing was found, as
/// Docker's CLI does), not a template per object.
pub fn inspect_prints_json(format: Option<&str>) -> bool {
    matches!(format, None | Some("") | Some("json"))
}

/// The Go structs of inspect output that templates print as structs (`{{.Mounts}}`).
const INSPECT_STRUCTS: &[berth_gotemplate::StructShape] = &[
    // types.MountPoint
    berth_gotemplate::StructShape {
        fields: &[
            "Type",
            "Name",
            "Source",
            "Destination",
            "Driver",
            "Mode",
            "RW",
            "Propagation",
        ],
        optional: &["Name", "Driver"],
    },
    // container.RestartPolicy
    berth_gotemplate::StructShape {
        fields: &["Name", "MaximumRetryCount"],
        optional: &[],
    },
    // container.LogConfig
    berth_gotemplate::StructShape {
        fields: &["Type", "Config"],
        optional: &[],
    },
];

/// Prints values as `inspect` does: a pretty JSON array, or each value through a template.
pub fn print_inspect(values: &[Value], format: Option<&str>) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        None | Some("") | Some("json") => {
            let mut buf = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
            serde::Serialize::serialize(values, &mut ser)?;
            buf.push(b'\n');
            out.write_all(&buf).context("writing output")?;
        }
        Some(f) => {
            let template = Template::parse(f)?.with_structs(INSPECT_STRUCTS);
            for v in values {
                let s = template.execute(v)?;
                writeln!(out, "{s}").context("writing output")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(4_261_550.0), "4.26MB");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(12_000_000.0), "12MB");
        assert_eq!(human_size(123_456_789.0), "123MB");
        assert_eq!(human_size(999.0), "999B");
    }

    #[test]
    fn durations_like_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(30), "30 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
        assert_eq!(human_duration(90 * 86400), "3 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }

    #[test]
    fn tabwriter_pads_to_docker_widths() {
        let t = tabwrite("REPOSITORY\tTAG\tIMAGE ID\nbusybox\tlatest\tabc");
        assert_eq!(
            t,
            "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    abc"
        );
    }

    #[test]
    fn headers() {
        assert_eq!(default_header("CreatedSince"), "CREATED");
        assert_eq!(default_header("SharedSize"), "SHARED SIZE");
        assert_eq!(default_header("Repository"), "REPOSITORY");
    }
}
