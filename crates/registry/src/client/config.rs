//! Credentials in Docker's `config.json` (`$DOCKER_CONFIG/config.json`, by
//! default `~/.docker/config.json`), read and written in the format `docker
//! login` uses, so berth and docker share logins.
//!
//! - `auths.<server>.auth`: base64 of `user:password`; `identitytoken` for
//!   an OAuth2 refresh token.
//! - `credHelpers.<server>` / `credsStore`: an external helper
//!   `docker-credential-<name>` driven with `get`, `store` and `erase`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::error::ClientError;

/// Docker Hub's key in `auths`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or personal access token).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken`), with the user it belongs to.
    IdentityToken { username: String, token: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken { username, .. } => {
                write!(f, "IdentityToken({username}, <redacted>)")
            }
        }
    }
}

/// The directory holding `config.json`: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn default_config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

/// The key `docker login` uses in `auths` for a registry host.
pub fn auth_key(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        registry.to_string()
    }
}

pub(crate) fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "https://index.docker.io/v1/"
    )
}

/// Docker's hostname normalisation of an `auths` key: drop the scheme and
/// any path.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn read_config(dir: &Path) -> Result<Value, ClientError> {
    let p = dir.join("config.json");
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(json!({})),
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| ClientError::Credentials(format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(ClientError::Credentials(format!("{}: {e}", p.display()))),
    }
}

fn write_config(dir: &Path, v: &Value) -> Result<(), ClientError> {
    let err =
        |e: std::io::Error| ClientError::Credentials(format!("writing {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let body = serde_json::to_vec_pretty(v).expect("json serialises");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(&body).map_err(err)?;
        f.write_all(b"\n").map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, dir.join("config.json")).map_err(err)
}

/// The helper configured for a registry, if any.
fn helper_for(cfg: &Value, registry: &str) -> Option<String> {
    let key = auth_key(registry);
    if let Some(h) = cfg.get("credHelpers").and_then(Value::as_object) {
        for (k, v) in h {
            if (k == &key || key_host(k) == key_host(&key))
                && v.as_str().is_some_and(|s| !s.is_empty())
            {
                return v.as_str().map(str::to_string);
            }
        }
    }
    cfg.get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<(bool, Vec<u8>), ClientError> {
    if !helper
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
    {
        return Err(ClientError::Credentials(format!(
            "invalid credential helper name {helper:?}"
        )));
    }
    let prog = format!("docker-credential-{helper}");
    let mut child = std::process::Command::new(&prog)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ClientError::Credentials(format!("running {prog}: {e}")))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input)
        .map_err(|e| ClientError::Credentials(format!("writing to {prog}: {e}")))?;
    let out = child
        .wait_with_output()
        .map_err(|e| ClientError::Credentials(format!("running {prog}: {e}")))?;
    let mut text = out.stdout;
    if !out.status.success() {
        text.extend_from_slice(&out.stderr);
    }
    Ok((out.status.success(), text))
}

/// Look up the credentials stored for `registry` (a host such as
/// `localhost:5000` or `docker.io`) in the config directory `dir`.
pub fn load_credentials(dir: &Path, registry: &str) -> Result<Option<Credential>, ClientError> {
    let cfg = read_config(dir)?;
    let key = auth_key(registry);
    if let Some(helper) = helper_for(&cfg, registry) {
        let (ok, out) = run_helper(&helper, "get", key.as_bytes())?;
        if !ok {
            let msg = String::from_utf8_lossy(&out);
            if msg.contains("credentials not found") {
                return Ok(None);
            }
            return Err(ClientError::Credentials(format!(
                "docker-credential-{helper} get: {}",
                msg.trim()
            )));
        }
        let v: Value = serde_json::from_slice(&out).map_err(|e| {
            ClientError::Credentials(format!("docker-credential-{helper} output: {e}"))
        })?;
        let user = v
            .get("Username")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let secret = v
            .get("Secret")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if secret.is_empty() {
            return Ok(None);
        }
        return Ok(Some(if user == "<token>" {
            Credential::IdentityToken {
                username: String::new(),
                token: secret,
            }
        } else {
            Credential::Basic {
                username: user,
                password: secret,
            }
        }));
    }
    let Some(auths) = cfg.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    let entry = auths.get(&key).or_else(|| {
        auths
            .iter()
            .find(|(k, _)| key_host(k) == key_host(&key))
            .map(|(_, v)| v)
    });
    let Some(entry) = entry else {
        return Ok(None);
    };
    let (mut username, mut password) = (String::new(), String::new());
    if let Some(a) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .map_err(|e| ClientError::Credentials(format!("auths.{key}.auth: {e}")))?;
        let s = String::from_utf8(raw)
            .map_err(|_| ClientError::Credentials(format!("auths.{key}.auth is not UTF-8")))?;
        let (u, p) = s.split_once(':').ok_or_else(|| {
            ClientError::Credentials(format!("auths.{key}.auth is not user:password"))
        })?;
        username = u.to_string();
        password = p.to_string();
    } else {
        if let Some(u) = entry.get("username").and_then(Value::as_str) {
            username = u.to_string();
        }
        if let Some(p) = entry.get("password").and_then(Value::as_str) {
            password = p.to_string();
        }
    }
    if let Some(t) = entry
        .get("identitytoken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        return Ok(Some(Credential::IdentityToken {
            username,
            token: t.to_string(),
        }));
    }
    if username.is_empty() && password.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credential::Basic { username, password }))
}

/// Store credentials for `registry` as `docker login` does: through the
/// configured helper if there is one, else base64 in `auths`.
pub fn store_credentials(dir: &Path, registry: &str, cred: &Credential) -> Result<(), ClientError> {
    let mut cfg = read_config(dir)?;
    let key = auth_key(registry);
    if let Some(helper) = helper_for(&cfg, registry) {
        let (user, secret) = match cred {
            Credential::Basic { username, password } => (username.as_str(), password.as_str()),
            Credential::IdentityToken { token, .. } => ("<token>", token.as_str()),
        };
        let input =
            serde_json::to_vec(&json!({"ServerURL": key, "Username": user, "Secret": secret}))
                .expect("json serialises");
        let (ok, out) = run_helper(&helper, "store", &input)?;
        if !ok {
            return Err(ClientError::Credentials(format!(
                "docker-credential-{helper} store: {}",
                String::from_utf8_lossy(&out).trim()
            )));
        }
        // Docker leaves an empty entry so `auths` lists the registry.
        set_auth_entry(&mut cfg, &key, json!({}));
        return write_config(dir, &cfg);
    }
    let entry = match cred {
        Credential::Basic { username, password } => json!({
            "auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")),
        }),
        Credential::IdentityToken { username, token } => json!({
            "auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:")),
            "identitytoken": token,
        }),
    };
    set_auth_entry(&mut cfg, &key, entry);
    write_config(dir, &cfg)
}

fn set_auth_entry(cfg: &mut Value, key: &str, entry: Value) {
    if !cfg.is_object() {
        *cfg = json!({});
    }
    let obj = cfg.as_object_mut().expect("object");
    let auths = obj
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    auths
        .as_object_mut()
        .expect("object")
        .insert(key.to_string(), entry);
}

/// Remove stored credentials for `registry` (`docker logout`). Returns
/// whether there were any.
pub fn remove_credentials(dir: &Path, registry: &str) -> Result<bool, ClientError> {
    let mut cfg = read_config(dir)?;
    let key = auth_key(registry);
    let mut found = false;
    if let Some(helper) = helper_for(&cfg, registry) {
        let (ok, out) = run_helper(&helper, "erase", key.as_bytes())?;
        let msg = String::from_utf8_lossy(&out);
        if ok {
            found = true;
        } else if !msg.contains("not found") {
            return Err(ClientError::Credentials(format!(
                "docker-credential-{helper} erase: {}",
                msg.trim()
            )));
        }
    }
    if let Some(auths) = cfg.get_mut("auths").and_then(Value::as_object_mut) {
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| *k == &key || key_host(k) == key_host(&key))
            .cloned()
            .collect();
        for k in keys {
            auths.remove(&k);
            found = true;
        }
    }
    write_config(dir, &cfg)?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_docker_format() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(load_credentials(d, "localhost:5000").unwrap(), None);
        let c = Credential::Basic {
            username: "u".into(),
            password: "p:w".into(),
        };
        store_credentials(d, "localhost:5000", &c).unwrap();
        store_credentials(d, "docker.io", &c).unwrap();
        let v: Value =
            serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
        assert_eq!(v["auths"]["localhost:5000"]["auth"], "dTpwOnc=");
        assert!(v["auths"][DOCKER_HUB_AUTH_KEY]["auth"].is_string());
        assert_eq!(
            load_credentials(d, "localhost:5000").unwrap(),
            Some(c.clone())
        );
        assert_eq!(load_credentials(d, "index.docker.io").unwrap(), Some(c));
        assert!(remove_credentials(d, "localhost:5000").unwrap());
        assert!(!remove_credentials(d, "localhost:5000").unwrap());
        assert_eq!(load_credentials(d, "localhost:5000").unwrap(), None);
    }

    #[test]
    fn keys_with_scheme_and_identity_tokens() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://reg.example:5000/v2/":{"auth":"YTpi"},
                "tok.example":{"auth":"dXNlcjo=","identitytoken":"refresh-me"}},
               "HttpHeaders":{"X":"y"}}"#,
        )
        .unwrap();
        assert_eq!(
            load_credentials(dir.path(), "reg.example:5000").unwrap(),
            Some(Credential::Basic {
                username: "a".into(),
                password: "b".into()
            })
        );
        assert_eq!(
            load_credentials(dir.path(), "tok.example").unwrap(),
            Some(Credential::IdentityToken {
                username: "user".into(),
                token: "refresh-me".into()
            })
        );
        // Writing keeps unrelated settings.
        store_credentials(
            dir.path(),
            "new.example",
            &Credential::Basic {
                username: "x".into(),
                password: "y".into(),
            },
        )
        .unwrap();
        let v: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(v["HttpHeaders"]["X"], "y");
        assert_eq!(v["auths"]["tok.example"]["identitytoken"], "refresh-me");
    }
}
