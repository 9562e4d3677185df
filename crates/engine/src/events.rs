//! The engine's side of the event log (`GET /events`, `berth events`): what each operation
//! records, and reading the history back (and following it) with Docker's filters. The log
//! itself is [`berth_runtime::events`]: one file every berth process appends to.

use crate::{Engine, EngineError};
use berth_runtime::events;
pub use berth_runtime::events::Event;
use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::path::Path;
use std::time::Duration;

/// How often a follower looks for new events.
const POLL: Duration = Duration::from_millis(100);

/// `--filter` of `events`: values of one key are alternatives, keys must all match.
#[derive(Debug, Clone, Default)]
pub struct EventFilters {
    by_key: BTreeMap<String, Vec<String>>,
}

const FILTER_KEYS: [&str; 8] = [
    "container",
    "event",
    "image",
    "label",
    "network",
    "scope",
    "type",
    "volume",
];

impl EventFilters {
    /// Parses `key=value` filters; an unknown key is Docker's "invalid filter" error.
    pub fn parse(args: &[String]) -> Result<EventFilters, EngineError> {
        let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in args {
            let Some((k, v)) = a.split_once('=') else {
                return Err(EngineError::InvalidArgument(format!(
                    "bad format of filter (expected name=value): {a}"
                )));
            };
            if !FILTER_KEYS.contains(&k) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{k}'"
                )));
            }
            if k == "type" && !["container", "image", "network", "volume"].contains(&v) {
                return Err(EngineError::InvalidArgument(format!(
                    "unknown event type: {v} (berth records container, image, network and volume events)"
                )));
            }
            by_key.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(EventFilters { by_key })
    }

    pub fn matches(&self, e: &Event) -> bool {
        let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str).unwrap_or("");
        // Docker's fuzzy match: the whole value, or a prefix of an ID.
        let id_or_name =
            |v: &str| e.actor.id == v || e.actor.id.starts_with(v) || attr("name") == v;
        self.by_key.iter().all(|(k, values)| {
            values.iter().any(|v| match k.as_str() {
                "type" => e.kind == *v,
                "event" => e.action.split(':').next() == Some(v.as_str()),
                "scope" => e.scope == *v,
                "container" => e.kind == "container" && id_or_name(v),
                "network" => e.kind == "network" && id_or_name(v),
                "volume" => e.kind == "volume" && id_or_name(v),
                "image" => {
                    let image = if e.kind == "image" {
                        attr("name")
                    } else {
                        attr("image")
                    };
                    image == v
                        || image.strip_suffix(":latest") == Some(v.as_str())
                        || (e.kind == "image" && id_or_name(v))
                }
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => e.actor.attributes.get(lk).map(String::as_str) == Some(lv),
                    None => e.actor.attributes.contains_key(v.as_str()),
                },
                _ => false,
            })
        })
    }
}

/// Which events `events` returns: a time range (nanoseconds since the epoch) and filters.
/// Without `until` the call follows the log until `stop` says so.
#[derive(Debug, Clone, Default)]
pub struct EventsQuery {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub filters: EventFilters,
}

/// A step of an exec's life, for its event: dockerd's `exec_create: CMD`, `exec_start: CMD` and
/// `exec_die` (with `exitCode`), each carrying the exec's `execID`.
#[derive(Debug, Clone, Copy)]
pub enum ExecEvent<'a> {
    Create(&'a [String]),
    Start(&'a [String]),
    Die(i32),
}

impl ExecEvent<'_> {
    /// The action as dockerd writes it: the entrypoint, a space, then the arguments joined by
    /// spaces (so `true` alone is `exec_start: true `).
    fn action(&self) -> String {
        let cmd = |args: &[String]| {
            let (first, rest) = args
                .split_first()
                .map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
            format!("{first} {}", rest.join(" "))
        };
        match self {
            ExecEvent::Create(a) => format!("exec_create: {}", cmd(a)),
            ExecEvent::Start(a) => format!("exec_start: {}", cmd(a)),
            ExecEvent::Die(_) => "exec_die".to_string(),
        }
    }
}

/// A new exec's ID: 64 hex digits, as dockerd's.
pub fn new_exec_id() -> String {
    let mut b = [0u8; 32];
    crate::containers::fill_random_pub(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Engine {
    /// Records an exec's event on its container (`container_id` is the full ID).
    pub fn record_exec_event(&self, container_id: &str, exec_id: &str, ev: ExecEvent<'_>) {
        let code;
        let mut extra = vec![("execID", exec_id)];
        if let ExecEvent::Die(c) = ev {
            code = c.to_string();
            extra.push(("exitCode", code.as_str()));
        }
        self.record_container_event(&ev.action(), container_id, &extra);
    }

    /// Records an event; losing one never fails the operation that caused it.
    pub(crate) fn record_event(&self, kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) {
        let _ = events::append(self.root(), &Event::now(kind, action, id, attrs));
    }

    /// Records a container event with the container's attributes (image, name, labels).
    pub(crate) fn record_container_event(&self, action: &str, id: &str, extra: &[(&str, &str)]) {
        let attrs = events::container_attributes(&self.container_dir_of(id));
        let mut pairs: Vec<(&str, &str)> = attrs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.extend_from_slice(extra);
        self.record_event("container", action, id, &pairs);
    }

    /// Keeps the attributes a container's events carry beside it (its monitor reports `die`).
    pub(crate) fn write_container_event_attributes(
        &self,
        id: &str,
        name: &str,
        image: &str,
        labels: &BTreeMap<String, String>,
    ) {
        let mut attrs = labels.clone();
        attrs.insert("image".into(), image.into());
        attrs.insert("name".into(), name.into());
        if let Ok(bytes) = serde_json::to_vec(&attrs) {
            let _ = berth_runtime::util::write_atomic_nosync(
                &events::container_attributes_path(&self.container_dir_of(id)),
                &bytes,
            );
        }
    }

    /// The recorded container name after a rename.
    pub(crate) fn rename_in_event_attributes(&self, id: &str, name: &str) {
        let dir = self.container_dir_of(id);
        let mut attrs = events::container_attributes(&dir);
        attrs.insert("name".into(), name.into());
        if let Ok(bytes) = serde_json::to_vec(&attrs) {
            let _ = berth_runtime::util::write_atomic_nosync(
                &events::container_attributes_path(&dir),
                &bytes,
            );
        }
    }

    /// `GET /events`: the recorded events in `q`'s range that match its filters, oldest first,
    /// then (without `until`) new ones as they are recorded, until `stop()` or the sink fails.
    pub fn events(
        &self,
        q: &EventsQuery,
        stop: &dyn Fn() -> bool,
        sink: &mut dyn FnMut(&Event) -> std::io::Result<()>,
    ) -> Result<(), EngineError> {
        let now = Event::now("", "", "", &[]).time_nano;
        let in_range = |e: &Event| {
            q.since.is_none_or(|s| e.time_nano >= s) && q.until.is_none_or(|u| e.time_nano <= u)
        };
        let path = events::log_path(self.root());
        // Where following starts: the end of the log as it is now.
        let (mut inode, mut offset) = file_position(&path);
        if q.since.is_some() {
            for e in events::read_all(self.root()) {
                if e.time_nano <= now && in_range(&e) && q.filters.matches(&e) && sink(&e).is_err()
                {
                    return Ok(());
                }
            }
        }
        if q.until.is_some_and(|u| u <= now) {
            return Ok(());
        }
        let mut pending = Vec::new();
        loop {
            if stop()
                || q.until
                    .is_some_and(|u| Event::now("", "", "", &[]).time_nano > u)
            {
                return Ok(());
            }
            let (now_inode, len) = file_position(&path);
            if now_inode != inode {
                // Rotated: the rest of the old file is now events.jsonl.1.
                let rotated = self.root().join("events.jsonl.1");
                if file_position(&rotated).0 == inode {
                    read_from(&rotated, offset, &mut pending);
                }
                inode = now_inode;
                offset = 0;
            }
            if len > offset {
                offset += read_from(&path, offset, &mut pending);
            }
            for line in std::mem::take(&mut pending) {
                let Ok(e) = serde_json::from_slice::<Event>(&line) else {
                    continue;
                };
                if in_range(&e) && q.filters.matches(&e) && sink(&e).is_err() {
                    return Ok(());
                }
            }
            std::thread::sleep(POLL);
        }
    }
}

fn file_position(p: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p)
        .map(|m| (m.ino(), m.len()))
        .unwrap_or((0, 0))
}

/// Appends the complete lines of `p` from `offset` to `out`; returns the bytes consumed (a
/// line still being written is left for the next read).
fn read_from(p: &Path, offset: u64, out: &mut Vec<Vec<u8>>) -> u64 {
    let Ok(mut f) = std::fs::File::open(p) else {
        return 0;
    };
    if f.seek(std::io::SeekFrom::Start(offset)).is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return 0;
    }
    let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
        return 0;
    };
    out.extend(buf[..end].split(|&b| b == b'\n').map(<[u8]>::to_vec));
    end as u64 + 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn exec_actions_are_dockerds() {
        use super::ExecEvent;
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ExecEvent::Create(&args(&["sh", "-c", "exit 3"])).action(),
            "exec_create: sh -c exit 3"
        );
        assert_eq!(
            ExecEvent::Start(&args(&["true"])).action(),
            "exec_start: true "
        );
        assert_eq!(ExecEvent::Die(3).action(), "exec_die");
        assert_eq!(super::new_exec_id().len(), 64);
    }

    use super::*;

    fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event::now(kind, action, id, attrs)
    }

    #[test]
    fn filters_as_docker() {
        let f = |a: &[&str]| {
            EventFilters::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        let start = ev(
            "container",
            "start",
            "abc123",
            &[("name", "web"), ("image", "busybox:latest"), ("tier", "a")],
        );
        assert!(f(&["container=web"]).matches(&start));
        assert!(f(&["container=abc"]).matches(&start));
        assert!(!f(&["container=other"]).matches(&start));
        assert!(f(&["event=start", "event=die"]).matches(&start));
        assert!(!f(&["event=die"]).matches(&start));
        assert!(f(&["type=container", "image=busybox"]).matches(&start));
        assert!(f(&["label=tier=a"]).matches(&start));
        assert!(f(&["label=tier"]).matches(&start));
        assert!(!f(&["label=tier=b"]).matches(&start));
        assert!(!f(&["type=image"]).matches(&start));
        let exec = ev("container", "exec_start: sh -c true", "abc123", &[]);
        assert!(f(&["event=exec_start"]).matches(&exec));
        assert!(EventFilters::parse(&["bogus=1".into()]).is_err());
        assert!(EventFilters::parse(&["type=plugin".into()]).is_err());
        assert!(EventFilters::parse(&["nokey".into()]).is_err());
    }
}
