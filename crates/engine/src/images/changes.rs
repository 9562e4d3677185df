//! `import --change` / `commit --change`: the Dockerfile instructions that only change the image
//! configuration.

use crate::EngineError;
use berth_oci::image::{ContainerConfig, ImageConfig};
use serde_json::json;

/// Applies each change (`CMD ["sh"]`, `ENV A=1`, …) to `config`.
pub fn apply_changes(config: &mut ImageConfig, changes: &[String]) -> Result<(), EngineError> {
    for change in changes {
        let change = change.trim();
        if change.is_empty() {
            continue;
        }
        let (keyword, rest) = match change.split_once(char::is_whitespace) {
            Some((k, r)) => (k, r.trim()),
            None => (change, ""),
        };
        let cc = config.config.get_or_insert_with(ContainerConfig::default);
        let keyword_upper = keyword.to_ascii_uppercase();
        let need_arg = |what: &str| -> Result<(), EngineError> {
            if rest.is_empty() {
                Err(EngineError::InvalidArgument(format!(
                    "{what} requires at least one argument"
                )))
            } else {
                Ok(())
            }
        };
        match keyword_upper.as_str() {
            "CMD" => {
                need_arg("CMD")?;
                cc.cmd = Some(command_form(rest)?);
            }
            "ENTRYPOINT" => {
                need_arg("ENTRYPOINT")?;
                cc.entrypoint = Some(command_form(rest)?);
            }
            "ENV" => {
                need_arg("ENV")?;
                let env = cc.env.get_or_insert_with(Vec::new);
                for (k, v) in key_values(rest, "ENV")? {
                    env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                need_arg("LABEL")?;
                let labels = cc.labels.get_or_insert_with(Default::default);
                for (k, v) in key_values(rest, "LABEL")? {
                    labels.insert(k, v);
                }
            }
            "WORKDIR" => {
                need_arg("WORKDIR")?;
                cc.working_dir = Some(rest.to_string());
            }
            "USER" => {
                need_arg("USER")?;
                cc.user = Some(rest.to_string());
            }
            "STOPSIGNAL" => {
                need_arg("STOPSIGNAL")?;
                cc.stop_signal = Some(rest.to_string());
            }
            "EXPOSE" => {
                need_arg("EXPOSE")?;
                let ports = cc.exposed_ports.get_or_insert_with(Default::default);
                for p in rest.split_whitespace() {
                    let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                    let valid_port = port
                        .split_once('-')
                        .map(|(a, b)| a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok())
                        .unwrap_or_else(|| port.parse::<u16>().is_ok());
                    if !valid_port || !matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp") {
                        return Err(EngineError::InvalidArgument(format!("invalid containerPort: {p}")));
                    }
                    ports.insert(format!("{port}/{}", proto.to_ascii_lowercase()), json!({}));
                }
            }
            "VOLUME" => {
                need_arg("VOLUME")?;
                let volumes = cc.volumes.get_or_insert_with(Default::default);
                let list: Vec<String> = match serde_json::from_str::<Vec<String>>(rest) {
                    Ok(v) => v,
                    Err(_) => rest.split_whitespace().map(str::to_string).collect(),
                };
                for v in list {
                    volumes.insert(v, json!({}));
                }
            }
            "ONBUILD" => {
                need_arg("ONBUILD")?;
                cc.on_build.get_or_insert_with(Vec::new).push(rest.to_string());
            }
            _ => {
                return Err(EngineError::InvalidArgument(format!(
                    "{keyword} is not a valid change command (valid: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)"
                )))
            }
        }
    }
    Ok(())
}

/// Exec form (a JSON string array) or shell form (wrapped in `/bin/sh -c`).
fn command_form(rest: &str) -> Result<Vec<String>, EngineError> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(v);
        }
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

/// `K=V K2="a b"` pairs, or the legacy `K some value` form.
fn key_values(rest: &str, what: &str) -> Result<Vec<(String, String)>, EngineError> {
    let words = shell_words(rest);
    if !words.first().map(|w| w.contains('=')).unwrap_or(false) {
        // Legacy form: the first word is the key, the rest of the line the value.
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if v.trim().is_empty() {
            return Err(EngineError::InvalidArgument(format!(
                "{what} {k} needs a value: write {what} {k}=VALUE"
            )));
        }
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(EngineError::InvalidArgument(format!(
                "{what}: {w:?} is not KEY=VALUE"
            ))),
        })
        .collect()
}

/// Splits on unquoted whitespace, removing quotes and backslash escapes.
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<ContainerConfig, EngineError> {
        let mut c = ImageConfig::default();
        apply_changes(
            &mut c,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(c.config.unwrap_or_default())
    }

    #[test]
    fn all_change_kinds() {
        let c = apply(&[
            r#"CMD ["python", "train.py"]"#,
            "ENTRYPOINT /entry.sh",
            r#"ENV A=1 B="two words""#,
            "ENV LEGACY some value",
            r#"LABEL org.x="y z""#,
            "WORKDIR /app",
            "USER 1000:1000",
            "EXPOSE 80 53/udp",
            "VOLUME /data",
        ])
        .unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["python", "train.py"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "/entry.sh"]);
        assert_eq!(
            c.env.unwrap(),
            vec!["A=1", "B=two words", "LEGACY=some value"]
        );
        assert_eq!(c.labels.unwrap()["org.x"], "y z");
        assert_eq!(c.working_dir.unwrap(), "/app");
        assert_eq!(c.user.unwrap(), "1000:1000");
        let ports = c.exposed_ports.unwrap();
        assert!(ports.contains_key("80/tcp") && ports.contains_key("53/udp"));
        assert!(c.volumes.unwrap().contains_key("/data"));
    }

    #[test]
    fn rejects_invalid_changes() {
        assert!(apply(&["FROM busybox"])
            .unwrap_err()
            .to_string()
            .contains("FROM is not a valid change command"));
        assert!(apply(&["ENV PATH"])
            .unwrap_err()
            .to_string()
            .contains("needs a value"));
        assert!(apply(&["EXPOSE 99999"])
            .unwrap_err()
            .to_string()
            .contains("invalid containerPort"));
        assert!(apply(&["CMD"])
            .unwrap_err()
            .to_string()
            .contains("requires at least one argument"));
    }
}
