//! Credentials through a `docker-credential-<name>` helper (its own test
//! binary, since it changes PATH).

use std::os::unix::fs::PermissionsExt;

use berth_registry::client::{load_credentials, remove_credentials, store_credentials, Credential};

#[test]
fn credential_helper_get_store_erase() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let store = dir.path().join("store");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    // A helper keeping one file per server URL.
    let script = format!(
        r#"#!/bin/sh
set -e
dir={store}
case "$1" in
  get) url=$(cat); f="$dir/$(printf %s "$url" | tr '/:' '__')"
       if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) data=$(cat); url=$(printf %s "$data" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
       printf %s "$data" > "$dir/$(printf %s "$url" | tr '/:' '__')" ;;
  erase) url=$(cat); f="$dir/$(printf %s "$url" | tr '/:' '__')"
       if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
esac
"#,
        store = store.display()
    );
    let helper = bin.join("docker-credential-berthtest");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::set_var("PATH", path);

    let cfg = dir.path().join("docker");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.json"), r#"{"credsStore":"berthtest"}"#).unwrap();
    assert_eq!(load_credentials(&cfg, "localhost:5000").unwrap(), None);
    let c = Credential::Basic {
        username: "dave".into(),
        password: "pa55".into(),
    };
    store_credentials(&cfg, "localhost:5000", &c).unwrap();
    assert_eq!(load_credentials(&cfg, "localhost:5000").unwrap(), Some(c));
    // The secret is not in config.json, only the registry's name.
    let text = std::fs::read_to_string(cfg.join("config.json")).unwrap();
    assert!(!text.contains("pa55"));
    assert!(text.contains("localhost:5000"));
    // Identity tokens use the "<token>" user name.
    let t = Credential::IdentityToken {
        username: String::new(),
        token: "tok".into(),
    };
    store_credentials(&cfg, "docker.io", &t).unwrap();
    assert_eq!(load_credentials(&cfg, "docker.io").unwrap(), Some(t));
    assert!(remove_credentials(&cfg, "localhost:5000").unwrap());
    assert_eq!(load_credentials(&cfg, "localhost:5000").unwrap(), None);
    // credHelpers for one registry wins over credsStore; a missing helper is an error.
    std::fs::write(
        cfg.join("config.json"),
        r#"{"credsStore":"berthtest","credHelpers":{"ghcr.io":"missing-helper"}}"#,
    )
    .unwrap();
    assert!(load_credentials(&cfg, "ghcr.io").is_err());
}
