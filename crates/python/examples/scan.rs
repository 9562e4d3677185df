//! Times the requirement checks `berth build` runs on a finished image, outside a build:
//! `scan CONTEXT LAYER [RUNS]` lists CONTEXT, parses its `requirements.txt`, scans its `.py`
//! files, reads the distributions installed under the layer directory LAYER and runs the
//! checks; it prints the findings once and the wall time of each run in milliseconds.
//! `bench/pyscan.sh` makes the project and runs it.

use berth_python::check::{check, Project};
use berth_python::site::{self, Layers};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn walk(root: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(root.join(rel)) else {
        return;
    };
    let mut names: Vec<_> = rd.flatten().collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(root, &child, out),
            Ok(t) if t.is_file() => out.push(child),
            _ => {}
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: scan CONTEXT LAYER [RUNS]");
        std::process::exit(2);
    }
    let ctx = PathBuf::from(&args[1]);
    let layer = PathBuf::from(&args[2]);
    let runs: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(21);
    for run in 0..runs {
        let start = Instant::now();
        let mut files = Vec::new();
        walk(&ctx, "", &mut files);
        let parsed = berth_python::requirements::parse_file(&ctx, "requirements.txt");
        let (imports, local) = berth_python::project::scan(&ctx, &files);
        let layers = Layers::new(vec![layer.clone()]);
        let installed = site::distributions(&layers);
        let mut stdlib: HashSet<String> = berth_python::stdlib::STDLIB_MODULES
            .iter()
            .map(|s| s.to_string())
            .collect();
        stdlib.extend(site::stdlib_names(&layers));
        let findings = check(&Project {
            requirements: &parsed.requirements,
            problems: &parsed.problems,
            imports: &imports,
            local: &local,
            stdlib: &stdlib,
            installed: &installed,
        });
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        if run == 0 {
            eprintln!(
                "{} files, {} .py imports, {} requirements, {} installed distributions, {} findings:",
                files.len(),
                imports.len(),
                parsed.requirements.len(),
                installed.len(),
                findings.len()
            );
            for f in &findings {
                eprintln!("  {f}");
            }
        }
        println!("{ms:.3}");
    }
}
