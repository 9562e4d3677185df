//! # berth-python
//!
//! What `berth build` checks in a Python project, and what `berth lock` and the build's
//! provenance read from an image. Pure: it reads the files it is given and never runs Python.
//!
//! - [`requirements`]: pip's requirements-file format (comments, line continuations, `-r`
//!   includes, `-c` constraints, option lines, `--hash`), each requirement parsed as PEP 508
//!   by `pep508_rs`; `pyproject.toml`'s `[project] dependencies`.
//! - [`imports`]: the top-level modules a `.py` file imports, with their lines.
//! - [`site`]: the distributions installed in an image (its layer directories, read as one
//!   merged tree): `*.dist-info` / `*.egg-info` names, versions, top-level modules.
//! - [`check`]: the three findings — a requirement without an exact version, an import no
//!   requirement provides, a pin that pip resolved to another version.
//! - [`lock`]: a fully pinned requirements file from what an image installed.
//! - [`project`]: a context's own `.py` files, their imports and the project's own names.

pub mod check;
pub mod imports;
pub mod lock;
pub mod project;
pub mod requirements;
pub mod site;
pub mod stdlib;

/// PEP 503's normalised form of a distribution name: lower case, runs of `-`, `_`, `.` as one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn normalizes_names() {
        assert_eq!(super::normalize("Scikit_Learn"), "scikit-learn");
        assert_eq!(super::normalize("zope.interface"), "zope-interface");
        assert_eq!(super::normalize("a--_b"), "a-b");
    }
}
