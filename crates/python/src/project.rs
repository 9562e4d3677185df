//! A project's own code in a build context: its `.py` files (without virtual environments and
//! tool directories), every import they make, and the project's own top-level names.

use crate::imports::Import;
use std::collections::HashSet;
use std::path::Path;

/// Directories of a context that are not the project's code.
pub const NOT_PROJECT: &[&str] = &[
    "site-packages",
    "dist-packages",
    "__pycache__",
    ".git",
    ".tox",
    ".nox",
    "node_modules",
];

/// `.py` files larger than this are not scanned (generated code, data).
pub const MAX_PY_FILE: u64 = 4 << 20;

/// The `.py` files of the project among `files` (context-relative paths): without virtual
/// environments (directories holding `pyvenv.cfg`) and the directories in [`NOT_PROJECT`].
pub fn py_files(files: &[String]) -> Vec<&str> {
    let venvs: Vec<&str> = files
        .iter()
        .filter_map(|f| f.strip_suffix("pyvenv.cfg"))
        .collect();
    files
        .iter()
        .map(String::as_str)
        .filter(|f| f.ends_with(".py"))
        .filter(|f| !venvs.iter().any(|v| f.starts_with(v)))
        .filter(|f| !f.split('/').any(|c| NOT_PROJECT.contains(&c)))
        .collect()
}

/// Every import of every project `.py` file under `root`, and the project's own top-level
/// names (file stems and the directories that hold its code).
pub fn scan(root: &Path, files: &[String]) -> (Vec<(String, Import)>, HashSet<String>) {
    let mut imports = Vec::new();
    let mut local = HashSet::new();
    for f in py_files(files) {
        let mut parts: Vec<&str> = f.split('/').collect();
        if let Some(last) = parts.pop() {
            local.insert(last.trim_end_matches(".py").to_string());
        }
        local.extend(parts.iter().map(|p| p.to_string()));
        let path = root.join(f);
        if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) > MAX_PY_FILE {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let src = String::from_utf8_lossy(&bytes);
        for i in crate::imports::scan(&src) {
            imports.push((f.to_string(), i));
        }
    }
    (imports, local)
}

#[cfg(test)]
mod tests {
    #[test]
    fn leaves_out_venvs_and_tool_directories() {
        let files: Vec<String> = [
            "app/main.py",
            "app/__init__.py",
            ".venv/pyvenv.cfg",
            ".venv/lib/python3.11/site-packages/x.py",
            "env2/pyvenv.cfg",
            "env2/bin/tool.py",
            "build/__pycache__/a.py",
            "README.md",
            "train.py",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            super::py_files(&files),
            vec!["app/main.py", "app/__init__.py", "train.py"]
        );
    }
}
