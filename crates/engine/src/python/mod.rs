//! Python projects in builds: the requirement checks `berth build` runs on the finished image
//! (`--strict` makes them errors), the provenance and SBOM records stored with every built
//! image, and `berth lock`.
//!
//! Everything is read from the image's layer directories and the build context; nothing runs
//! inside the image.

mod install;
pub mod provenance;

use crate::{Engine, EngineError};
use berth_build::{BuildError, Finish, Finished};
use berth_python::check::{check, Finding, Project};
use berth_python::requirements::{self, Parsed};
use berth_python::site::{self, Dist, Layers};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The installed distributions of the image whose layer directories are `layers`.
pub fn installed(layers: Vec<PathBuf>) -> Vec<Dist> {
    site::distributions(&Layers::new(layers))
}

/// The checks of a finished build (see the module docs). `None` when the Dockerfile installs
/// no Python project from the context.
pub fn requirement_findings(f: &Finished, installed: &[Dist]) -> Option<Vec<Finding>> {
    let root = f.context.as_ref()?;
    let installs = install::find(&f.runs);
    if installs.is_empty() {
        return None;
    }
    let mut parsed = Parsed::default();
    let mut from_context = false;
    for inst in &installs {
        match &inst.what {
            install::What::Requirements(p) | install::What::Constraints(p) => {
                let Some(rel) = install::in_context(p, &f.context_files) else {
                    continue;
                };
                from_context = true;
                let mut one = requirements::parse_file(root, &rel);
                if matches!(inst.what, install::What::Constraints(_)) {
                    one.requirements
                        .iter_mut()
                        .for_each(|r| r.constraint = true);
                }
                merge(&mut parsed, one);
            }
            install::What::Project(dir) => {
                let want = format!("{}/pyproject.toml", dir.trim_end_matches('/'));
                let Some(rel) = install::in_context(&want, &f.context_files) else {
                    continue;
                };
                from_context = true;
                let text = std::fs::read_to_string(root.join(&rel)).unwrap_or_default();
                merge(&mut parsed, requirements::parse_pyproject(&text, &rel));
            }
            install::What::Named(spec) => match requirements::requirement(spec) {
                Ok(mut r) => {
                    r.file = f.dockerfile_name.to_string();
                    r.line = inst.line;
                    parsed.requirements.push(r);
                }
                Err(message) => parsed.problems.push(requirements::Problem {
                    file: f.dockerfile_name.to_string(),
                    line: inst.line,
                    message,
                }),
            },
        }
    }
    let (imports, mut local) = berth_python::project::scan(root, &f.context_files);
    if !from_context && imports.is_empty() {
        return None;
    }
    // `pip install .` installs the project itself: its name is local too.
    if let Some(name) = project_name(root, &f.context_files) {
        local.insert(name.replace('-', "_"));
    }
    let mut stdlib: HashSet<String> = berth_python::stdlib::STDLIB_MODULES
        .iter()
        .map(|s| s.to_string())
        .collect();
    stdlib.extend(site::stdlib_names(&Layers::new(f.layers.clone())));
    Some(check(&Project {
        requirements: &parsed.requirements,
        problems: &parsed.problems,
        imports: &imports,
        local: &local,
        stdlib: &stdlib,
        installed,
    }))
}

fn merge(into: &mut Parsed, from: Parsed) {
    into.requirements.extend(from.requirements);
    into.problems.extend(from.problems);
    into.files.extend(from.files);
}

/// `[project] name` of the context's top-level `pyproject.toml`.
fn project_name(root: &Path, files: &[String]) -> Option<String> {
    if !files.iter().any(|f| f == "pyproject.toml") {
        return None;
    }
    let t: toml::Table = std::fs::read_to_string(root.join("pyproject.toml"))
        .ok()?
        .parse()
        .ok()?;
    Some(
        t.get("project")?
            .get("name")?
            .as_str()?
            .to_ascii_lowercase(),
    )
}

/// What the engine does with a finished build: the checks, then the records.
pub(crate) fn finish(engine: &Engine, f: &Finished, strict: bool) -> Result<Finish, BuildError> {
    let dists = installed(f.layers.clone());
    let findings = requirement_findings(f, &dists).unwrap_or_default();
    let warnings: Vec<String> = findings.iter().map(|x| x.to_string()).collect();
    if strict && !warnings.is_empty() {
        return Err(BuildError::Invalid(format!(
            "--strict: {} requirement problem{} found, so the image was not written (the build cache is kept):\n  {}",
            warnings.len(),
            if warnings.len() == 1 { "" } else { "s" },
            warnings.join("\n  ")
        )));
    }
    let base = f.base.as_ref().map(|(name, id)| {
        let row = engine.store().image(id).ok().flatten();
        provenance::Base {
            name: name.clone(),
            id: id.clone(),
            manifest_digest: row.as_ref().and_then(|r| r.manifest_digest.clone()),
            repo_digests: row.map(|r| r.repo_digests).unwrap_or_default(),
        }
    });
    let attachments = provenance::records(f, base.as_ref(), &dists)
        .map_err(|e| BuildError::Failed(format!("writing the build's provenance: {e}")))?;
    Ok(Finish {
        warnings,
        attachments,
    })
}

impl Engine {
    /// The Python distributions an image installed (`berth lock`, the SBOM).
    pub fn python_packages(&self, name: &str) -> Result<(String, Vec<Dist>), EngineError> {
        let row = self.resolve_image(name)?;
        let layers = self
            .store()
            .image_layers(&row.id)?
            .iter()
            .filter_map(|l| l.chain_id.parse::<berth_oci::Digest>().ok())
            .map(|d| self.store().layer_path(&d))
            .collect();
        Ok((row.id, installed(layers)))
    }

    /// `berth lock IMAGE`: a fully pinned requirements file of what the image installed.
    pub fn python_lock(&self, name: &str) -> Result<String, EngineError> {
        let (id, dists) = self.python_packages(name)?;
        if dists.is_empty() {
            return Err(EngineError::FailedPrecondition(format!(
                "{name}: the image has no installed Python distributions (no *.dist-info or *.egg-info in a site-packages or dist-packages directory)"
            )));
        }
        Ok(berth_python::lock::render(
            &format!("{name} ({id})"),
            &dists,
        ))
    }
}
