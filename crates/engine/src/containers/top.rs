//! `top`: the container's processes as dockerd lists them: `ps` on the host with the caller's
//! arguments (default `-ef`), only the rows whose PID is one of the container's.

use crate::{Engine, EngineError};
use serde::Serialize;

/// `GET /containers/{id}/top`'s answer (`ContainerTopResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopResult {
    /// The `ps` header's columns.
    pub titles: Vec<String>,
    /// One row per process, a cell per title; the last cell (the command) keeps its spaces.
    pub processes: Vec<Vec<String>>,
}

/// dockerd's `parsePSOutput`: the header gives the columns and where `PID` is; each row is split
/// on blanks into as many cells, the last one taking the rest of the line. Rows of processes
/// not in `pids` are dropped.
pub fn parse_ps_output(output: &str, pids: &[i32]) -> Result<TopResult, EngineError> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles.iter().position(|t| t == "PID").ok_or_else(|| {
        EngineError::InvalidArgument("Couldn't find PID field in ps output".into())
    })?;
    let mut processes = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col) else {
            continue;
        };
        let pid: i32 = pid.parse().map_err(|_| {
            EngineError::InvalidArgument(format!("Unexpected pid '{pid}': invalid syntax"))
        })?;
        if !pids.contains(&pid) {
            continue;
        }
        let n = titles.len();
        let mut row: Vec<String> = fields
            .iter()
            .take(n.saturating_sub(1))
            .map(|s| s.to_string())
            .collect();
        if fields.len() >= n {
            row.push(fields[n - 1..].join(" "));
        }
        processes.push(row);
    }
    Ok(TopResult { titles, processes })
}

impl Engine {
    /// `GET /containers/{id}/top?ps_args=…` and `berth top`: runs the host's `ps` with
    /// `ps_args` (empty: `-ef`, dockerd's default) and keeps the container's processes.
    pub fn container_top(
        &mut self,
        name: &str,
        ps_args: &[String],
    ) -> Result<TopResult, EngineError> {
        // Not running: `EngineError::NotRunning`, dockerd's "Container … is not running".
        let pids = self.container_pids(name)?;
        let mut cmd = std::process::Command::new("ps");
        if ps_args.is_empty() {
            cmd.arg("-ef");
        } else {
            cmd.args(ps_args);
        }
        let out = cmd
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| EngineError::io("running ps", e))?;
        if !out.status.success() {
            return Err(EngineError::InvalidArgument(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps_output(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_containers_rows_and_the_commands_spaces() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                   root           1       0  0 10:00 ?        00:00:01 /sbin/init splash\n\
                   root        4242    4200  0 10:01 ?        00:00:00 sleep 1000 now\n\
                   root        4243    4242  0 10:01 pts/0    00:00:00 sh\n";
        let t = parse_ps_output(out, &[4242, 4243]).unwrap();
        assert_eq!(
            t.titles,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(
            t.processes,
            vec![
                vec![
                    "root",
                    "4242",
                    "4200",
                    "0",
                    "10:01",
                    "?",
                    "00:00:00",
                    "sleep 1000 now"
                ],
                vec!["root", "4243", "4242", "0", "10:01", "pts/0", "00:00:00", "sh"],
            ]
        );
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["Titles"][1], "PID");
        assert_eq!(json["Processes"][0][7], "sleep 1000 now");
    }

    #[test]
    fn other_ps_arguments() {
        let out = "  PID COMMAND\n    7 nginx: master process\n    9 other\n";
        let t = parse_ps_output(out, &[7]).unwrap();
        assert_eq!(t.titles, ["PID", "COMMAND"]);
        assert_eq!(t.processes, vec![vec!["7", "nginx: master process"]]);
        let e = parse_ps_output("USER COMMAND\nroot x\n", &[1]).unwrap_err();
        assert_eq!(e.to_string(), "Couldn't find PID field in ps output");
        let e = parse_ps_output("PID CMD\nabc x\n", &[1]).unwrap_err();
        assert_eq!(e.to_string(), "Unexpected pid 'abc': invalid syntax");
    }
}
