//! `cdi generate` and `cdi list`: the CDI spec of the GPUs berth discovers, and the CDI
//! device names `--device` accepts.

use anyhow::{Context, Result};
use berth_engine::gpu::GpuConfig;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum CdiCommand {
    /// Write a CDI spec for this host's NVIDIA GPUs (YAML; JSON when the file ends in .json)
    Generate(GenerateArgs),
    /// List the CDI device names (spec files and discovered GPUs)
    #[command(alias = "ls")]
    List,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Write to a file instead of standard output (e.g. /etc/cdi/nvidia.yaml)
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
}

pub fn run(cfg: &GpuConfig, cmd: CdiCommand) -> Result<()> {
    match cmd {
        CdiCommand::Generate(a) => {
            let spec = berth_engine::gpu::generate_spec(cfg)?;
            let json = a
                .output
                .as_ref()
                .is_some_and(|p| p.extension().is_some_and(|e| e == "json"));
            let text = berth_engine::gpu::spec_text(&spec, json)?;
            match a.output {
                Some(p) => {
                    let tmp = p.with_extension("tmp~");
                    std::fs::write(&tmp, text)
                        .with_context(|| format!("writing {}", tmp.display()))?;
                    std::fs::rename(&tmp, &p)
                        .with_context(|| format!("writing {}", p.display()))?;
                }
                None => print!("{text}"),
            }
            Ok(())
        }
        CdiCommand::List => {
            let (names, errors) = berth_engine::gpu::list_devices(cfg);
            for e in errors {
                eprintln!("WARNING: {e}");
            }
            for n in names {
                println!("{n}");
            }
            Ok(())
        }
    }
}
