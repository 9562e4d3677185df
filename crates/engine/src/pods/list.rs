//! `pod ls` and `pod inspect`: a pod's status is derived from its containers' states, as
//! podman derives it.

use super::PodRecord;
use crate::{Engine, EngineError};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// One container of a pod, as `pod ls` and `pod inspect` show it.
#[derive(Debug, Clone, Serialize)]
pub struct PodContainer {
    pub id: String,
    pub name: String,
    /// Docker's state word: created, running, paused, restarting, exited, dead.
    pub status: String,
}

/// One entry of `pod ls`.
#[derive(Debug, Clone, Serialize)]
pub struct PodSummary {
    pub id: String,
    pub name: String,
    /// podman's pod status: Created, Running, Degraded, Paused, Exited, Stopped, Error.
    pub status: String,
    /// RFC 3339.
    pub created: String,
    /// Unix seconds.
    pub created_unix: i64,
    /// Empty without an infra container.
    pub infra_id: String,
    pub labels: BTreeMap<String, String>,
    /// The infra's network (`bridge` by default); empty without shared network.
    pub networks: Vec<String>,
    /// The infra first, then the members, oldest first.
    pub containers: Vec<PodContainer>,
}

/// podman's pod status from its containers' states.
pub fn pod_status(states: &[&str]) -> &'static str {
    let n = states.len();
    if n == 0 {
        return "Created";
    }
    let count = |f: &dyn Fn(&str) -> bool| states.iter().filter(|s| f(s)).count();
    let running = count(&|s| s == "running" || s == "restarting");
    let paused = count(&|s| s == "paused");
    let exited = count(&|s| s == "exited");
    let errored = count(&|s| {
        !matches!(
            s,
            "running" | "restarting" | "paused" | "exited" | "created"
        )
    });
    if running > 0 {
        return if running < n { "Degraded" } else { "Running" };
    }
    if paused == n {
        return "Paused";
    }
    if exited == n {
        return "Exited";
    }
    if exited > 0 {
        return "Stopped";
    }
    if errored > 0 {
        return "Error";
    }
    "Created"
}

impl Engine {
    fn pod_summary(
        &mut self,
        row: &berth_store::PodRow,
        members: Vec<super::Member>,
    ) -> Result<PodSummary, EngineError> {
        let rec: PodRecord = Self::pod_record(row)?;
        let mut containers = Vec::new();
        for (c, _) in members {
            let status = match self.container_live(&c.id) {
                Ok(l) => l.status,
                Err(EngineError::ContainerNotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            containers.push(PodContainer {
                id: c.id,
                name: c.name,
                status,
            });
        }
        let states: Vec<&str> = containers.iter().map(|c| c.status.as_str()).collect();
        let networks = if rec.infra && rec.shares("net") {
            vec![rec.network.clone().unwrap_or_else(|| "bridge".into())]
        } else {
            Vec::new()
        };
        Ok(PodSummary {
            id: row.id.clone(),
            name: row.name.clone(),
            status: pod_status(&states).to_string(),
            created: rec.created.clone(),
            created_unix: row.created / 1_000_000_000,
            infra_id: rec.infra_id.clone().unwrap_or_default(),
            labels: rec.labels.clone(),
            networks,
            containers,
        })
    }

    /// `pod ls --filter`: `name=` (substring, as podman), `id=` (prefix), `label=KEY[=VALUE]`,
    /// `status=` (podman's words, lower case). Filters of one key are ORed, keys ANDed.
    pub fn pod_list(&mut self, filters: &[String]) -> Result<Vec<PodSummary>, EngineError> {
        let mut parsed: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in filters {
            let (k, v) = f.split_once('=').ok_or_else(|| {
                EngineError::InvalidArgument(format!("invalid filter \"{f}\": expected KEY=VALUE"))
            })?;
            match k {
                "name" | "id" | "label" | "status" => {}
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "{k} is an invalid filter (supported: name, id, label, status)"
                    )))
                }
            }
            if k == "status" {
                const STATES: &[&str] = &[
                    "created", "running", "degraded", "paused", "exited", "stopped", "error",
                ];
                if !STATES.contains(&v) {
                    return Err(EngineError::InvalidArgument(format!(
                        "{v} is not a valid status (valid: {})",
                        STATES.join(", ")
                    )));
                }
            }
            parsed.entry(k.to_string()).or_default().push(v.to_string());
        }
        let mut out = Vec::new();
        let mut members = self.all_pod_members()?;
        for row in self.store().pods()? {
            let m = members.remove(&row.id).unwrap_or_default();
            let p = self.pod_summary(&row, m)?;
            let ok = parsed.iter().all(|(k, vs)| {
                vs.iter().any(|v| match k.as_str() {
                    "name" => p.name.contains(v.as_str()),
                    "id" => p.id.starts_with(v.as_str()),
                    "label" => match v.split_once('=') {
                        Some((lk, lv)) => p.labels.get(lk).map(String::as_str) == Some(lv),
                        None => p.labels.contains_key(v.as_str()),
                    },
                    "status" => p.status.eq_ignore_ascii_case(v),
                    _ => false,
                })
            });
            if ok {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// `pod inspect`: podman's shape.
    pub fn pod_inspect(&mut self, name: &str) -> Result<Value, EngineError> {
        let row = self.resolve_pod(name)?;
        let rec = Self::pod_record(&row)?;
        let members = self.pod_members(&row.id)?;
        let p = self.pod_summary(&row, members)?;
        let mut port_bindings = serde_json::Map::new();
        for spec in &rec.publish {
            if let Ok(list) = berth_network::ports::parse_publish(spec) {
                for m in list {
                    let key = format!("{}/{}", m.container_port, m.proto.as_str());
                    let entry = port_bindings.entry(key).or_insert_with(|| json!([]));
                    if let Some(a) = entry.as_array_mut() {
                        a.push(json!({
                            "HostIp": m.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                            "HostPort": match m.host_ports {
                                (0, 0) => String::new(),
                                (a, b) if a == b => a.to_string(),
                                (a, b) => format!("{a}-{b}"),
                            },
                        }));
                    }
                }
            }
        }
        let infra_config = if rec.infra {
            json!({
                "PortBindings": port_bindings,
                "HostNetwork": rec.network.as_deref() == Some("host"),
                "DNSServer": if rec.dns.is_empty() { Value::Null } else { json!(rec.dns) },
                "DNSSearch": if rec.dns_search.is_empty() { Value::Null } else { json!(rec.dns_search) },
                "DNSOption": if rec.dns_options.is_empty() { Value::Null } else { json!(rec.dns_options) },
                "HostAdd": if rec.add_hosts.is_empty() { Value::Null } else { json!(rec.add_hosts) },
                "Networks": p.networks,
                "pid_ns": if rec.shares("pid") { "shared" } else { "private" },
                "uts_ns": if rec.shares("uts") { "shared" } else { "private" },
            })
        } else {
            Value::Null
        };
        Ok(json!({
            "Id": p.id,
            "Name": p.name,
            "Created": p.created,
            "State": p.status,
            "Hostname": if rec.shares("uts") { rec.hostname.clone() } else { String::new() },
            "Labels": p.labels,
            "CreateInfra": rec.infra,
            "InfraContainerID": p.infra_id,
            "InfraConfig": infra_config,
            "SharedNamespaces": rec.share,
            "NumContainers": p.containers.len(),
            "Containers": p.containers.iter().map(|c| json!({
                "Id": c.id, "Name": c.name, "State": c.status,
            })).collect::<Vec<_>>(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_podman() {
        assert_eq!(pod_status(&[]), "Created");
        assert_eq!(pod_status(&["created", "created"]), "Created");
        assert_eq!(pod_status(&["running", "running"]), "Running");
        assert_eq!(pod_status(&["running", "exited"]), "Degraded");
        assert_eq!(pod_status(&["running", "created"]), "Degraded");
        assert_eq!(pod_status(&["exited", "exited"]), "Exited");
        assert_eq!(pod_status(&["exited", "created"]), "Stopped");
        assert_eq!(pod_status(&["paused", "paused"]), "Paused");
        assert_eq!(pod_status(&["dead", "created"]), "Error");
    }

    #[test]
    fn share_parsing() {
        use super::super::parse_share;
        assert_eq!(parse_share(None).unwrap(), ["ipc", "net", "uts"]);
        assert_eq!(parse_share(Some("net")).unwrap(), ["net"]);
        assert_eq!(
            parse_share(Some("+pid")).unwrap(),
            ["ipc", "net", "pid", "uts"]
        );
        assert!(parse_share(Some("none")).unwrap().is_empty());
        assert!(parse_share(Some("bogus")).is_err());
        assert!(parse_share(Some("cgroup")).is_err());
    }
}
