//! Kubernetes manifests checked against Kubernetes' own schemas.

use std::process::Command;

/// Validates a manifest file with `kubernetes-validate` (offline, strict: unknown fields are
/// errors). Installed by scripts/setup.sh; its absence fails the test.
pub fn validate(path: &std::path::Path) {
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--no-warn"])
        .arg(path)
        .output()
        .expect("kubernetes-validate is missing: run scripts/setup.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "invalid manifest {}:\n{text}\n{}",
        path.display(),
        std::fs::read_to_string(path).unwrap()
    );
    assert!(!text.contains("ERROR"), "{text}");
}
