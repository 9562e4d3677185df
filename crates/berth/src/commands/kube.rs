//! `kube generate`: Kubernetes manifests from containers.

use anyhow::{Context, Result};
use berth_engine::kube::play::{Manifest, PlayOptions};
use berth_engine::kube::{GenerateOptions, WorkloadKind};
use berth_engine::Engine;
use clap::{Args, Subcommand};
use std::io::Read;

#[derive(Debug, Subcommand)]
pub enum KubeCommand {
    /// Write Kubernetes manifests for containers (a Pod, Deployment or Job)
    #[command(after_help = "\
Examples:
  berth kube generate web                              a Pod, on standard output
  berth kube generate --type deployment --service -f web.yaml web
                                                       a Deployment and a Service for its ports
  berth kube generate --type job trainer               a training run as a Job")]
    Generate(GenerateArgs),
    /// Run the Pods, Deployments, Jobs and DaemonSets of Kubernetes manifests
    #[command(after_help = "\
Examples:
  berth kube play web.yaml             run what the manifest describes
  berth kube play --replace web.yaml   remove what an earlier play made, then play again
  berth kube play --down web.yaml      remove what play made (as kube down)
  cat web.yaml | berth kube play -     read the manifest from standard input")]
    Play(PlayArgs),
    /// Remove what kube play made from manifests
    Down(DownArgs),
}

#[derive(Debug, Args)]
pub struct PlayArgs {
    /// Remove what an earlier play of these manifests made instead of playing them
    #[arg(long, conflicts_with = "replace")]
    pub down: bool,
    /// Remove what an earlier play of these manifests made, then play them
    #[arg(long)]
    pub replace: bool,
    /// Manifest files (multi-document YAML; - reads standard input)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Manifest files given to kube play (- reads standard input)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Kind of workload: pod, deployment or job
    #[arg(short = 't', long = "type", default_value = "pod", value_parser = parse_kind)]
    pub kind: WorkloadKind,
    /// Also write a Service for the published ports
    #[arg(short, long)]
    pub service: bool,
    /// Write to a file instead of standard output
    #[arg(short, long)]
    pub filename: Option<std::path::PathBuf>,
    /// Containers (all go into one pod)
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn parse_kind(s: &str) -> Result<WorkloadKind, String> {
    s.parse()
}

pub fn run(engine: &mut Engine, cmd: KubeCommand) -> Result<()> {
    match cmd {
        KubeCommand::Generate(a) => generate(engine, a),
        KubeCommand::Play(a) if a.down => down(engine, &a.files),
        KubeCommand::Play(a) => play(engine, a),
        KubeCommand::Down(a) => down(engine, &a.files),
    }
}

fn manifests(files: &[String]) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for f in files {
        if f == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            out.push(Manifest::from_stdin(text));
        } else {
            out.push(Manifest::from_path(std::path::Path::new(f))?);
        }
    }
    Ok(out)
}

/// podman's `kube play` output: the volumes, then each pod's ID and its containers'.
fn play(engine: &mut Engine, a: PlayArgs) -> Result<()> {
    let m = manifests(&a.files)?;
    let o = PlayOptions { replace: a.replace };
    // The warning comes first: it holds even when a start fails.
    if let Ok(plans) = engine.kube_plan(&m) {
        let unsupported: Vec<String> = plans
            .iter()
            .flat_map(|(_, p)| p.unsupported.iter().cloned())
            .collect();
        if !unsupported.is_empty() {
            let mut w = String::from(
                "WARNING: these parts of the manifests do not run locally as they would in a cluster:\n",
            );
            for u in &unsupported {
                w.push_str(&format!("  - {u}\n"));
            }
            eprint!("{w}");
        }
    }
    let r = engine.kube_play(&m, &o)?;
    let mut out = String::new();
    if !r.volumes.is_empty() {
        out.push_str("Volumes:\n");
        for v in &r.volumes {
            out.push_str(&format!("{v}\n"));
        }
    }
    for p in &r.pods {
        out.push_str(&format!("Pod:\n{}\n", p.id));
        if !p.init.is_empty() {
            out.push_str("Init containers:\n");
            for id in &p.init {
                out.push_str(&format!("{id}\n"));
            }
        }
        out.push_str(if p.containers.len() == 1 {
            "Container:\n"
        } else {
            "Containers:\n"
        });
        for id in &p.containers {
            out.push_str(&format!("{id}\n"));
        }
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// podman's `kube down` output: the pods' IDs.
fn down(engine: &mut Engine, files: &[String]) -> Result<()> {
    let m = manifests(files)?;
    let r = engine.kube_down(&m)?;
    let mut out = String::new();
    if !r.pods.is_empty() {
        out.push_str("Pods stopped:\n");
        for p in r.pods.keys() {
            out.push_str(&format!("{p}\n"));
        }
        out.push_str("Pods removed:\n");
        for p in r.pods.keys() {
            out.push_str(&format!("{p}\n"));
        }
    }
    print!("{out}");
    if !r.volumes.is_empty() {
        eprintln!(
            "Volumes kept (their data stays; berth volume rm removes them): {}",
            r.volumes.join(", ")
        );
    }
    Ok(())
}

fn generate(engine: &mut Engine, a: GenerateArgs) -> Result<()> {
    let o = GenerateOptions {
        kind: a.kind,
        service: a.service,
    };
    let m = engine.kube_generate(&a.containers, &o)?;
    let mut text = format!(
        "# Generated by berth kube generate {} (berth {})\n",
        a.containers.join(" "),
        env!("CARGO_PKG_VERSION")
    );
    for w in &m.warnings {
        text.push_str(&format!("# NOTE: {w}\n"));
    }
    text.push_str(&berth_engine::kube::to_yaml(&m.documents)?);
    for w in &m.warnings {
        eprintln!("WARNING: {w}");
    }
    match a.filename {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}
