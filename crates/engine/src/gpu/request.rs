//! `--gpus` as the docker CLI parses it (`opts/gpus.go`): one CSV record of `key=value`
//! fields (`count`, `device`, `capabilities`, `driver`, `options`) or a bare count, into
//! Docker's `DeviceRequest`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Docker's `HostConfig.DeviceRequests[]` (the Engine API's shape, also `inspect`'s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceRequest {
    #[serde(default)]
    pub driver: String,
    /// -1: all.
    #[serde(default)]
    pub count: i64,
    #[serde(rename = "DeviceIDs", default)]
    pub device_ids: Option<Vec<String>>,
    /// OR of ANDs: the request wants a driver with every capability of one inner list.
    #[serde(default)]
    pub capabilities: Option<Vec<Vec<String>>>,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
}

fn flag_error(value: &str, why: impl std::fmt::Display) -> String {
    format!("invalid argument \"{value}\" for \"--gpus\" flag: {why}")
}

/// One line of Go's `encoding/csv` with its default settings: fields separated by commas, a
/// field that starts with `"` is quoted (`""` inside is one quote), a quote anywhere else is
/// an error.
pub(crate) fn csv_record(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(format!(
                            "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                            i + 1
                        ))
                    }
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        field.push(*c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None | Some(',') => {}
                Some(_) => {
                    return Err(format!(
                    "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                    i + 1
                ))
                }
            }
        } else {
            while let Some(c) = chars.get(i) {
                match c {
                    ',' => break,
                    '"' => {
                        return Err(format!(
                            "parse error on line 1, column {}: bare \" in non-quoted-field",
                            i + 1
                        ))
                    }
                    c => field.push(*c),
                }
                i += 1;
            }
        }
        fields.push(field);
        if chars.get(i) == Some(&',') {
            i += 1;
            continue;
        }
        return Ok(fields);
    }
}

fn parse_count(s: &str) -> Result<i64, String> {
    if s == "all" {
        return Ok(-1);
    }
    s.parse::<i64>().map_err(|_| {
        format!("invalid count ({s}): value must be either \"all\" or an integer: invalid syntax")
    })
}

/// `--gpus VALUE` → Docker's request (defaults as the docker CLI: a count of 1 when neither a
/// count nor devices are given, capabilities `[["gpu"]]`, empty options).
pub fn parse_gpus(value: &str) -> Result<DeviceRequest, String> {
    let fields = csv_record(value).map_err(|e| flag_error(value, e))?;
    let mut req = DeviceRequest {
        driver: String::new(),
        count: 0,
        device_ids: None,
        capabilities: None,
        options: None,
    };
    let mut seen: Vec<String> = Vec::new();
    for field in &fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field.as_str(), None),
        };
        if seen.iter().any(|s| s == key) {
            return Err(flag_error(
                value,
                format!("gpu request key '{key}' can be specified only once"),
            ));
        }
        seen.push(key.to_string());
        let Some(val) = val else {
            seen.push("count".into());
            req.count = parse_count(key).map_err(|e| flag_error(value, e))?;
            continue;
        };
        match key {
            "driver" => req.driver = val.to_string(),
            "count" => req.count = parse_count(val).map_err(|e| flag_error(value, e))?,
            "device" => req.device_ids = Some(val.split(',').map(str::to_string).collect()),
            "capabilities" => {
                let mut caps: Vec<String> = val.split(',').map(str::to_string).collect();
                caps.push("gpu".into());
                req.capabilities = Some(vec![caps]);
            }
            "options" => {
                let opts = csv_record(val)
                    .map_err(|e| flag_error(value, format!("failed to read gpu options: {e}")))?;
                let mut map = BTreeMap::new();
                for o in opts {
                    let (k, v) = o.split_once('=').unwrap_or((o.as_str(), ""));
                    map.insert(k.to_string(), v.to_string());
                }
                req.options = Some(map);
            }
            _ => {
                return Err(flag_error(
                    value,
                    format!("unexpected key '{key}' in '{field}'"),
                ))
            }
        }
    }
    if !seen.iter().any(|s| s == "count") && req.device_ids.is_none() {
        req.count = 1;
    }
    if req.options.is_none() {
        req.options = Some(BTreeMap::new());
    }
    if req.capabilities.is_none() {
        req.capabilities = Some(vec![vec!["gpu".into()]]);
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(r: &DeviceRequest) -> Vec<String> {
        r.device_ids.clone().unwrap_or_default()
    }

    #[test]
    fn counts_like_the_docker_cli() {
        let r = parse_gpus("all").unwrap();
        assert_eq!(r.count, -1);
        assert_eq!(r.capabilities, Some(vec![vec!["gpu".to_string()]]));
        assert_eq!(r.options, Some(BTreeMap::new()));
        assert_eq!(r.device_ids, None);
        assert_eq!(parse_gpus("2").unwrap().count, 2);
        assert_eq!(parse_gpus("count=3").unwrap().count, 3);
        assert_eq!(parse_gpus("count=all").unwrap().count, -1);
        // Only a driver: one GPU.
        let r = parse_gpus("driver=nvidia").unwrap();
        assert_eq!((r.count, r.driver.as_str()), (1, "nvidia"));
        let e = parse_gpus("two").unwrap_err();
        assert_eq!(
            e,
            "invalid argument \"two\" for \"--gpus\" flag: invalid count (two): value must be either \"all\" or an integer: invalid syntax"
        );
    }

    #[test]
    fn devices_and_capabilities() {
        let r = parse_gpus("\"device=0,2\"").unwrap();
        assert_eq!(ids(&r), ["0", "2"]);
        assert_eq!(r.count, 0);
        let r = parse_gpus("device=GPU-3a23c669-1f69-c64e-cf85-44e9b07e7a2a").unwrap();
        assert_eq!(ids(&r), ["GPU-3a23c669-1f69-c64e-cf85-44e9b07e7a2a"]);
        // Unquoted, `utility` is a field of its own: a bare count, which is not a number.
        let e = parse_gpus("\"device=0,1\",capabilities=compute,utility").unwrap_err();
        assert!(e.contains("invalid count (utility)"), "{e}");
        let r = parse_gpus("\"device=0,1\",\"capabilities=compute,utility\"").unwrap();
        assert_eq!(ids(&r), ["0", "1"]);
        assert_eq!(
            r.capabilities,
            Some(vec![vec![
                "compute".to_string(),
                "utility".to_string(),
                "gpu".to_string()
            ]])
        );
        // Unquoted, the second ID is a count: Docker's CLI accepts it, the engine refuses
        // a request with both.
        let r = parse_gpus("device=0,2").unwrap();
        assert_eq!((ids(&r), r.count), (vec!["0".to_string()], 2));
        let r = parse_gpus("all,capabilities=utility").unwrap();
        assert_eq!(r.count, -1);
        assert_eq!(
            r.capabilities,
            Some(vec![vec!["utility".to_string(), "gpu".to_string()]])
        );
        let r = parse_gpus("1,\"options=a=b,c\"").unwrap();
        let o = r.options.unwrap();
        assert_eq!(o["a"], "b");
        assert_eq!(o["c"], "");
    }

    #[test]
    fn bad_values_are_named() {
        for (v, want) in [
            (
                "all,all",
                "gpu request key 'all' can be specified only once",
            ),
            ("foo=bar", "unexpected key 'foo' in 'foo=bar'"),
            ("dev\"ice=0", "bare \" in non-quoted-field"),
            ("\"device=0", "extraneous or missing \" in quoted-field"),
            (
                "count=1,count=2",
                "gpu request key 'count' can be specified only once",
            ),
        ] {
            let e = parse_gpus(v).unwrap_err();
            assert!(e.contains(want), "{v}: {e}");
            assert!(e.starts_with(&format!("invalid argument \"{v}\" for \"--gpus\" flag: ")));
        }
    }

    #[test]
    fn serialises_as_docker_inspect() {
        let r = parse_gpus("all").unwrap();
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"Driver": "", "Count": -1, "DeviceIDs": null,
                "Capabilities": [["gpu"]], "Options": {}})
        );
    }
}
