//! `RUN --mount=type=cache|bind|tmpfs|secret|ssh,...` options.

use crate::directives::parse_bool;
use crate::error::ErrorKind;
use crate::shell::ShellError;

/// The kind of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// A read-only (by default) view of the context or another stage.
    Bind,
    /// A persistent cache directory.
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A build secret as a file (or env variable).
    Secret,
    /// The SSH agent socket.
    Ssh,
}

/// How a cache mount is shared between concurrent builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    /// Used by all writers at once.
    #[default]
    Shared,
    /// A new one is made if another writer holds it.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// One `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The type (`bind` when not given).
    pub typ: MountType,
    /// Where it appears in the container (required for bind, cache, tmpfs).
    pub target: Option<String>,
    /// Path in the source (`source`/`src`).
    pub source: Option<String>,
    /// Stage or image the source comes from.
    pub from: Option<String>,
    /// Read-only: defaults to true for bind mounts, false otherwise.
    pub readonly: bool,
    /// Cache, secret or ssh id.
    pub id: Option<String>,
    /// Cache sharing mode.
    pub sharing: Sharing,
    /// File mode (octal), for cache, secret and ssh.
    pub mode: Option<u32>,
    /// Owner uid.
    pub uid: Option<u32>,
    /// Owner gid.
    pub gid: Option<u32>,
    /// For secret and ssh: fail when not provided.
    pub required: bool,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
    /// For secret: expose it as this environment variable.
    pub env: Option<String>,
    /// The option text as written.
    pub raw: String,
}

fn bad(msg: String) -> ErrorKind {
    ErrorKind::Invalid(msg)
}

/// Parses a tmpfs size: bytes, or with a k/m/g suffix (binary units).
fn parse_size(v: &str) -> Option<u64> {
    let lower = v.to_ascii_lowercase();
    let lower = lower.trim_end_matches('b').trim_end_matches('i');
    let (num, mult) = match lower.chars().last()? {
        'k' => (&lower[..lower.len() - 1], 1u64 << 10),
        'm' => (&lower[..lower.len() - 1], 1 << 20),
        'g' => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

/// Splits CSV fields, honouring double quotes around a field.
fn csv_fields(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

impl Mount {
    /// Parses the value of one `--mount` flag.
    pub fn parse(raw: &str) -> Result<Mount, ErrorKind> {
        let fields = csv_fields(raw);
        let mut typ = MountType::Bind;
        for f in &fields {
            let (k, v) = f.split_once('=').unwrap_or((f.as_str(), ""));
            if k.trim().eq_ignore_ascii_case("type") {
                typ = match v.trim().to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    other => {
                        return Err(bad(format!(
                        "unsupported mount type {other:?} — use bind, cache, tmpfs, secret or ssh"
                    )))
                    }
                };
            }
        }
        let mut m = Mount {
            typ,
            target: None,
            source: None,
            from: None,
            readonly: typ == MountType::Bind,
            id: None,
            sharing: Sharing::Shared,
            mode: None,
            uid: None,
            gid: None,
            required: false,
            size: None,
            env: None,
            raw: raw.to_string(),
        };
        for f in fields {
            let f = f.trim();
            if f.is_empty() {
                continue;
            }
            let (key, value) = match f.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
                None => (f.to_ascii_lowercase(), None),
            };
            let need = |v: &Option<String>| {
                v.clone().ok_or_else(|| {
                    bad(format!(
                        "mount option {key} needs a value — write {key}=<value>"
                    ))
                })
            };
            let flag = |v: &Option<String>| match v {
                None => Ok(true),
                Some(v) => parse_bool(v).ok_or_else(|| {
                    bad(format!(
                        "invalid value {v:?} for mount option {key} — use true or false"
                    ))
                }),
            };
            let number = |v: &Option<String>, radix: u32| {
                let v = need(v)?;
                u32::from_str_radix(&v, radix)
                    .map_err(|_| bad(format!("invalid value {v:?} for mount option {key}")))
            };
            match key.as_str() {
                "type" => {}
                "target" | "dst" | "destination" => m.target = Some(need(&value)?),
                "source" | "src" => m.source = Some(need(&value)?),
                "from" => m.from = Some(need(&value)?),
                "readonly" | "ro" => m.readonly = flag(&value)?,
                "readwrite" | "rw" => m.readonly = !flag(&value)?,
                "id" => m.id = Some(need(&value)?),
                "sharing" => {
                    m.sharing = match need(&value)?.as_str() {
                        "shared" => Sharing::Shared,
                        "private" => Sharing::Private,
                        "locked" => Sharing::Locked,
                        other => {
                            return Err(bad(format!(
                            "unsupported sharing value {other:?} — use shared, private or locked"
                        )))
                        }
                    }
                }
                "mode" => m.mode = Some(number(&value, 8)?),
                "uid" => m.uid = Some(number(&value, 10)?),
                "gid" => m.gid = Some(number(&value, 10)?),
                "required" => m.required = flag(&value)?,
                "size" => {
                    let v = need(&value)?;
                    m.size = Some(parse_size(&v).ok_or_else(|| {
                        bad(format!(
                            "invalid size {v:?} for tmpfs mount — use bytes or e.g. 64m"
                        ))
                    })?)
                }
                "env" => m.env = Some(need(&value)?),
                other => {
                    return Err(bad(format!(
                        "unexpected key '{other}' in '{raw}' — see the RUN --mount reference"
                    )))
                }
            }
        }
        match m.typ {
            MountType::Bind | MountType::Cache | MountType::Tmpfs if m.target.is_none() => {
                return Err(bad(format!(
                    "mount '{raw}' needs a target — add target=<path>"
                )))
            }
            MountType::Secret => {
                if m.id.is_none() {
                    m.id = m
                        .target
                        .as_deref()
                        .map(|t| t.rsplit('/').next().unwrap_or(t).to_string());
                }
                if m.id.is_none() && m.env.is_none() {
                    return Err(bad(format!(
                        "secret mount '{raw}' needs an id or a target — add id=<name>"
                    )));
                }
                if m.target.is_none() && m.env.is_none() {
                    m.target = m.id.as_ref().map(|id| format!("/run/secrets/{id}"));
                }
            }
            MountType::Ssh if m.id.is_none() => m.id = Some("default".into()),
            _ => {}
        }
        if m.typ == MountType::Cache && m.id.is_none() {
            m.id = m.target.clone();
        }
        Ok(m)
    }

    /// Expands variables in the path-like values.
    pub(crate) fn expand(
        &mut self,
        w: &dyn Fn(&str) -> Result<String, ShellError>,
    ) -> Result<(), ShellError> {
        for v in [
            &mut self.target,
            &mut self.source,
            &mut self.from,
            &mut self.id,
            &mut self.env,
        ]
        .into_iter()
        .flatten()
        {
            *v = w(v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount() {
        let m =
            Mount::parse("type=cache,target=/root/.cache,sharing=locked,mode=0755,uid=1").unwrap();
        assert_eq!(m.typ, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.id.as_deref(), Some("/root/.cache"));
        assert_eq!(m.sharing, Sharing::Locked);
        assert_eq!(m.mode, Some(0o755));
        assert_eq!(m.uid, Some(1));
        assert!(!m.readonly);
    }

    #[test]
    fn bind_defaults_read_only() {
        let m = Mount::parse("target=/src,from=build,source=/out").unwrap();
        assert_eq!(m.typ, MountType::Bind);
        assert!(m.readonly);
        assert!(!Mount::parse("type=bind,target=/x,rw").unwrap().readonly);
    }

    #[test]
    fn secret_and_ssh_defaults() {
        let m = Mount::parse("type=secret,id=npmrc,required").unwrap();
        assert_eq!(m.target.as_deref(), Some("/run/secrets/npmrc"));
        assert!(m.required);
        let m = Mount::parse("type=secret,target=/etc/token").unwrap();
        assert_eq!(m.id.as_deref(), Some("token"));
        let m = Mount::parse("type=ssh").unwrap();
        assert_eq!(m.id.as_deref(), Some("default"));
    }

    #[test]
    fn tmpfs_size_and_errors() {
        let m = Mount::parse("type=tmpfs,target=/tmp,size=64m").unwrap();
        assert_eq!(m.size, Some(64 << 20));
        assert!(Mount::parse("type=cache").is_err());
        assert!(Mount::parse("type=nfs,target=/x").is_err());
        assert!(Mount::parse("type=cache,target=/x,bogus=1").is_err());
        assert!(Mount::parse("type=cache,target=/x,sharing=weird").is_err());
    }
}
