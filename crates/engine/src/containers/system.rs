//! `container prune` with filters, `system prune` and `system df`.

use super::{dir_size, ContainerPruneReport, ListOptions};
use crate::{Engine, EngineError};

impl Engine {
    /// Whether the container of `row` runs now (paused and restarting count as running).
    pub(crate) fn container_row_running(&self, row: &berth_store::ContainerRow) -> bool {
        let Ok(mut rec) = serde_json::from_str::<super::ContainerRecord>(&row.record) else {
            return false;
        };
        let live = self.live_state(&row.id, &mut rec).0;
        live.running || live.restarting
    }

    /// `POST /containers/prune` with Docker's filters: `until=` (timestamp or duration),
    /// `label=`, `label!=`.
    pub fn prune_containers(
        &mut self,
        filters: &[String],
    ) -> Result<ContainerPruneReport, EngineError> {
        let mut until: Option<f64> = None;
        let mut labels = Vec::new();
        let mut not_labels: Vec<String> = Vec::new();
        for f in filters {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| EngineError::InvalidArgument(format!("invalid filter '{f}'")))?;
            match k {
                "until" => until = Some(super::parse_time_arg(v)?),
                "label" => labels.push(format!("label={v}")),
                "label!" => not_labels.push(v.to_string()),
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{k}'"
                    )))
                }
            }
        }
        let list = self.list_containers(&ListOptions {
            all: true,
            filters: labels,
            ..Default::default()
        })?;
        let mut report = ContainerPruneReport::default();
        for c in list {
            if matches!(c.state.as_str(), "running" | "paused" | "restarting") {
                continue;
            }
            if let Some(u) = until {
                if c.created as f64 >= u {
                    continue;
                }
            }
            if not_labels.iter().any(|l| match l.split_once('=') {
                Some((k, v)) => c.labels.get(k).map(|x| x == v).unwrap_or(false),
                None => c.labels.contains_key(l),
            }) {
                continue;
            }
            let size = dir_size(&self.container_dir_of(&c.id).join("upper"));
            if self.remove_container(&c.id, false, false).is_ok() {
                report.containers_deleted.push(c.id);
                report.space_reclaimed += size;
            }
        }
        Ok(report)
    }
}
