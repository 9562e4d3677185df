//! Server-side authentication: htpasswd (bcrypt) Basic auth and a small
//! built-in token service issuing opaque bearer tokens.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;

use crate::error::RegistryError;

/// Users and bcrypt hashes read from an htpasswd file.
pub(crate) struct Htpasswd {
    users: HashMap<String, String>,
    /// sha256(user:password) of credentials already verified, so bcrypt's
    /// deliberate slowness is paid once per client rather than per request.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Htpasswd {
    pub(crate) fn load(path: &Path) -> Result<Htpasswd, RegistryError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RegistryError::io(format!("reading {}", path.display()), e))?;
        Self::parse(&text).map_err(|message| RegistryError::Htpasswd {
            path: path.to_path_buf(),
            message,
        })
    }

    pub(crate) fn parse(text: &str) -> Result<Htpasswd, String> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: expected user:hash", i + 1))?;
            if !(hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$")) {
                return Err(format!(
                    "line {}: only bcrypt entries are supported (htpasswd -B)",
                    i + 1
                ));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    pub(crate) fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let key: [u8; 32] = sha2::Sha256::digest(format!("{user}:{password}:{hash}")).into();
        if self.verified.lock().unwrap().contains(&key) {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            self.verified.lock().unwrap().insert(key);
        }
        ok
    }
}

/// Decode an `Authorization: Basic ...` header value.
pub(crate) fn parse_basic(value: &str) -> Option<(String, String)> {
    let rest = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

pub(crate) fn parse_bearer(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// One `repository:<name>:<actions>` (or `registry:catalog:*`) grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Scope {
    pub(crate) fn parse(s: &str) -> Option<Scope> {
        let (kind, rest) = s.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        Some(Scope {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    /// Parse a space-separated list of scopes, as in `scope=` parameters.
    pub(crate) fn parse_list(s: &str) -> Vec<Scope> {
        s.split(' ').filter_map(Scope::parse).collect()
    }

    pub(crate) fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.kind == kind
            && self.name == name
            && self.actions.iter().any(|a| a == action || a == "*")
    }
}

struct TokenInfo {
    scopes: Vec<Scope>,
    expires: Instant,
}

/// Opaque bearer tokens issued by the `/token` endpoint.
pub(crate) struct TokenStore {
    tokens: Mutex<HashMap<String, TokenInfo>>,
    refresh: Mutex<HashMap<String, String>>,
    pub(crate) ttl: Duration,
}

impl TokenStore {
    pub(crate) fn new(ttl: Duration) -> TokenStore {
        TokenStore {
            tokens: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    pub(crate) fn issue(&self, scopes: Vec<Scope>) -> String {
        let token = format!(
            "{}{}",
            crate::storage::random_id(),
            crate::storage::random_id()
        );
        let now = Instant::now();
        let mut t = self.tokens.lock().unwrap();
        t.retain(|_, v| v.expires > now);
        t.insert(
            token.clone(),
            TokenInfo {
                scopes,
                expires: now + self.ttl,
            },
        );
        token
    }

    /// A long-lived refresh token for `user` (OAuth2 `refresh_token` grant).
    pub(crate) fn issue_refresh(&self, user: &str) -> String {
        let token = crate::storage::random_id();
        self.refresh
            .lock()
            .unwrap()
            .insert(token.clone(), user.to_string());
        token
    }

    pub(crate) fn refresh_user(&self, token: &str) -> Option<String> {
        self.refresh.lock().unwrap().get(token).cloned()
    }

    /// The scopes a valid, unexpired token grants.
    pub(crate) fn lookup(&self, token: &str) -> Option<Vec<Scope>> {
        let t = self.tokens.lock().unwrap();
        let info = t.get(token)?;
        (info.expires > Instant::now()).then(|| info.scopes.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let s = Scope::parse("repository:a/b:pull,push").unwrap();
        assert!(s.allows("repository", "a/b", "push"));
        assert!(!s.allows("repository", "a", "push"));
        let c = Scope::parse("registry:catalog:*").unwrap();
        assert!(c.allows("registry", "catalog", "anything"));
        assert_eq!(
            Scope::parse_list("repository:a:pull registry:catalog:*").len(),
            2
        );
    }

    #[test]
    fn htpasswd() {
        let h = bcrypt::hash("secret", 4).unwrap();
        let f = Htpasswd::parse(&format!("# comment\nalice:{h}\n")).unwrap();
        assert!(f.verify("alice", "secret"));
        assert!(f.verify("alice", "secret"));
        assert!(!f.verify("alice", "wrong"));
        assert!(!f.verify("bob", "secret"));
        assert!(Htpasswd::parse("bob:{SHA}abc").is_err());
    }
}
