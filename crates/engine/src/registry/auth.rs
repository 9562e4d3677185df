//! `login` and `logout`: credentials in Docker's `config.json`.

use super::{client, client_error, runtime};
use crate::{Engine, EngineError};
use berth_registry::client::config::{auth_key, default_config_dir};
use berth_registry::client::{remove_credentials, store_credentials, Credential};
use std::path::PathBuf;

/// Docker Hub, as `login` and `logout` name it without a server argument.
pub const DEFAULT_SERVER: &str = "docker.io";

/// The registry host a `login`/`logout` argument names: `https://host:5000/v2/` → `host:5000`,
/// Docker Hub's spellings → `docker.io`.
pub fn normalize_server(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
    match host.as_str() {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => DEFAULT_SERVER.into(),
        _ => host,
    }
}

/// Where `config.json` lives: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir() -> PathBuf {
    default_config_dir()
}

/// The key under `auths` that a server's credentials are stored at.
pub fn server_key(server: &str) -> String {
    auth_key(&normalize_server(server))
}

impl Engine {
    /// Checks `username`/`password` with the registry and, once it accepted them, stores them in
    /// `config.json` as `docker login` does. Returns the config file written.
    pub fn login(
        &self,
        server: &str,
        username: &str,
        password: &str,
    ) -> Result<PathBuf, EngineError> {
        let host = self.check_login(server, username, password)?;
        let dir = config_dir();
        store_credentials(
            &dir,
            &host,
            &Credential::Basic {
                username: username.to_string(),
                password: password.to_string(),
            },
        )
        .map_err(client_error)?;
        Ok(dir.join("config.json"))
    }

    /// Checks `username`/`password` with the registry `server` names and stores nothing (the
    /// Engine API's `POST /auth`: the client keeps the credentials). Returns the registry host.
    pub fn check_login(
        &self,
        server: &str,
        username: &str,
        password: &str,
    ) -> Result<String, EngineError> {
        if username.is_empty() {
            return Err(EngineError::InvalidArgument(
                "Username is required".to_string(),
            ));
        }
        if password.is_empty() {
            return Err(EngineError::InvalidArgument(
                "Password is required".to_string(),
            ));
        }
        let host = normalize_server(server);
        let rt = runtime()?;
        let client = client()?;
        rt.block_on(client.login(&host, username, password))
            .map_err(client_error)?;
        Ok(host)
    }

    /// Removes the stored credentials of `server`; returns whether there were any.
    pub fn logout(&self, server: &str) -> Result<bool, EngineError> {
        let host = normalize_server(server);
        remove_credentials(&config_dir(), &host).map_err(client_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_normalise() {
        assert_eq!(normalize_server("localhost:5000"), "localhost:5000");
        assert_eq!(
            normalize_server("https://localhost:5000/v2/"),
            "localhost:5000"
        );
        assert_eq!(normalize_server("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(server_key("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(server_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
