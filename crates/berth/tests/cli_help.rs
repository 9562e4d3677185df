//! The command line's own help: completions that shells accept, man pages, `help CMD`,
//! `version --format json`, and the install script.

mod common;

use common::Berth;
use std::process::Command;

#[test]
fn completion_scripts_parse() {
    let b = Berth::new();
    let bash = b.ok(&["completion", "bash"]);
    assert!(bash.contains("berth"), "{bash}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("berth.bash");
    std::fs::write(&f, &bash).unwrap();
    let out = Command::new("bash").arg("-n").arg(&f).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    // Sourced, it completes subcommands.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". {}; COMP_WORDS=(berth ima); COMP_CWORD=1; COMP_LINE='berth ima'; COMP_POINT=9; \
             _berth berth ima berth; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            f.display()
        ))
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&out.stdout);
    assert!(words.lines().any(|w| w == "images"), "{words} {out:?}");
    for shell in ["zsh", "fish"] {
        assert!(b.ok(&["completion", shell]).contains("berth"), "{shell}");
    }
    let (code, _, err) = b.code(&["completion", "tcsh"]);
    assert_eq!(code, 125, "{err}");
}

#[test]
fn man_pages_for_every_command() {
    let b = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    b.ok(&["__man-pages", dir.path().to_str().unwrap()]);
    for page in [
        "berth.1",
        "berth-run.1",
        "berth-image-ls.1",
        "berth-network-create.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_default();
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text:.200}"
        );
    }
}

#[test]
fn help_subcommand_and_version_json() {
    let b = Berth::new();
    let help = b.ok(&["help", "ps"]);
    assert!(help.contains("--filter"), "{help}");
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["version", "--format", "json"]))
        .expect("version --format json prints JSON");
    assert!(v["Client"]["Version"].is_string(), "{v}");
    assert_eq!(v["Server"]["Version"], v["Client"]["Version"]);
}

#[test]
fn grouped_help_and_one_error_style() {
    let b = Berth::new();
    let help = b.ok(&["--help"]);
    let at = |s: &str| {
        help.find(s)
            .unwrap_or_else(|| panic!("{s} missing: {help}"))
    };
    assert!(at("Common Commands:") < at("Management Commands:"));
    assert!(at("Management Commands:") < at("\nCommands:"));
    assert!(at("Global Options:") > at("\nCommands:"));
    // Global options are listed once, not in every command's help.
    assert!(!b.ok(&["ps", "--help"]).contains("--runroot"));
    assert!(b.ok(&["run", "--help"]).contains("Examples:"));
    // A parse error: one line "Error: …", hints, and where to read more; exit 125.
    let (code, out, err) = b.code(&["ps", "--filtr", "x"]);
    assert_eq!(code, 125);
    assert!(out.is_empty());
    assert!(
        err.starts_with("Error: unexpected argument '--filtr' found\n"),
        "{err}"
    );
    assert!(
        err.contains("hint: a similar argument exists: '--filter'"),
        "{err}"
    );
    assert!(err.ends_with("See 'berth ps --help'.\n"), "{err}");
    assert!(!err.contains("Usage:"), "{err}");
}
