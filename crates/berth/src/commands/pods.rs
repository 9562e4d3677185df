//! `pod create|ls|ps|inspect|start|stop|restart|rm|prune`: podman's pod commands (names,
//! flags, columns and words), over the engine's pod methods.

use crate::output::{default_header, render_rows_with_methods};
use crate::{exit_status, StatusError};
use anyhow::Result;
use berth_engine::pods::PodSpec;
use berth_engine::Engine;
use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum PodCommand {
    /// Create a new empty pod
    #[command(after_help = "\
Examples:
  berth pod create --name web -p 8080:80      a pod whose containers answer on port 8080
  berth run -d --pod web nginx                 a container in it")]
    Create(Box<PodCreateArgs>),
    /// List pods
    #[command(visible_alias = "ps", alias = "list")]
    Ls(PodLsArgs),
    /// Display information on one or more pods
    Inspect(PodInspectArgs),
    /// Start one or more pods
    Start(PodsArgs),
    /// Stop one or more pods
    Stop(PodStopArgs),
    /// Restart one or more pods
    Restart(PodsArgs),
    /// Remove one or more pods
    Rm(PodRmArgs),
    /// Remove all stopped pods and their containers
    Prune(PodPruneArgs),
}

#[derive(Debug, Args)]
pub struct PodCreateArgs {
    /// Assign a name to the pod
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// Publish a port or a range of ports of the pod to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Namespaces the pod's containers share (ipc, net, uts, pid, none; +NS adds to the default)
    #[arg(long)]
    pub share: Option<String>,
    /// Set metadata on the pod (KEY=VALUE)
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Set the pod's hostname (default: its name)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set custom DNS options
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    /// Connect the pod to a network
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Create an infra container holding the shared namespaces
    #[arg(long, default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub infra: bool,
    /// Size of the pod's /dev/shm, shared by its containers (format: <number>[<unit>], e.g. 64m)
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Write the pod ID to the file
    #[arg(long = "pod-id-file")]
    pub pod_id_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct PodLsArgs {
    /// Filter output based on conditions given (name=, id=, label=, status=)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Pretty-print pods using a Go template (or json)
    #[arg(long)]
    pub format: Option<String>,
    /// Print the numeric IDs of the pods only
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate pod and infra container IDs
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct PodInspectArgs {
    /// Format the output using the given Go template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "POD")]
    pub pods: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PodsArgs {
    #[arg(required = true, value_name = "POD")]
    pub pods: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PodStopArgs {
    /// Seconds to wait for each container to stop before killing it
    #[arg(short, long)]
    pub time: Option<i64>,
    #[arg(required = true, value_name = "POD")]
    pub pods: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PodRmArgs {
    /// Stop running containers and delete all stopped containers
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "POD")]
    pub pods: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PodPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(engine: &mut Engine, cmd: PodCommand) -> Result<()> {
    match cmd {
        PodCommand::Create(a) => create(engine, *a),
        PodCommand::Ls(a) => ls(engine, a),
        PodCommand::Inspect(a) => {
            crate::output::inspect_each(&a.pods, a.format.as_deref(), "Error", |n| {
                engine.pod_inspect(n)
            })
        }
        PodCommand::Start(a) => each(&a.pods, |n| engine.pod_start(n)),
        PodCommand::Stop(a) => each(&a.pods, |n| engine.pod_stop(n, a.time)),
        PodCommand::Restart(a) => each(&a.pods, |n| engine.pod_restart(n)),
        PodCommand::Rm(a) => each(&a.pods, |n| engine.pod_rm(n, a.force)),
        PodCommand::Prune(a) => {
            if !a.force
                && !super::confirm(
                    "WARNING! This will remove all stopped/exited pods..\nAre you sure you want to continue?",
                )
            {
                return Ok(());
            }
            for id in engine.pod_prune()? {
                println!("{id}");
            }
            Ok(())
        }
    }
}

/// Runs `f` on each pod, printing the ID it returns or the error; exits 1 if any failed.
fn each(
    pods: &[String],
    mut f: impl FnMut(&str) -> Result<String, berth_engine::EngineError>,
) -> Result<()> {
    let mut failed = false;
    for p in pods {
        match f(p) {
            Ok(id) => println!("{id}"),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(exit_status(1));
    }
    Ok(())
}

fn create(engine: &mut Engine, a: PodCreateArgs) -> Result<()> {
    let mut labels = std::collections::BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let shm_size = match &a.shm_size {
        Some(s) => Some(super::containers::parse_ram(s).ok_or_else(|| StatusError {
            code: 125,
            message: format!(
                "invalid argument \"{s}\" for \"--shm-size\" flag: invalid size: '{s}'"
            ),
        })? as u64),
        None => None,
    };
    let spec = PodSpec {
        name: a.name,
        labels,
        publish: a.publish,
        share: a.share,
        hostname: a.hostname,
        add_hosts: a.add_host,
        dns: a.dns,
        dns_search: a.dns_search,
        dns_options: a.dns_option,
        network: a.network,
        infra: a.infra,
        shm_size,
    };
    let id = engine.pod_create(&spec)?;
    if let Some(path) = &a.pod_id_file {
        std::fs::write(path, &id).map_err(|e| StatusError {
            code: 1,
            message: format!("writing {}: {e}", path.display()),
        })?;
    }
    println!("{id}");
    Ok(())
}

fn ls(engine: &mut Engine, a: PodLsArgs) -> Result<()> {
    let pods = engine.pod_list(&a.filter)?;
    let trunc = |s: &str| {
        if a.no_trunc {
            s.to_string()
        } else {
            s.chars().take(12).collect()
        }
    };
    let mut rows = Vec::new();
    for p in &pods {
        rows.push(json!({
            "ID": trunc(&p.id),
            "Name": p.name,
            "Status": p.status,
            "Created": crate::output::since(p.created_unix),
            "CreatedAt": p.created,
            "InfraID": trunc(&p.infra_id),
            "NumberOfContainers": p.containers.len(),
            "Labels": p.labels,
            "Networks": p.networks.join(","),
            "ContainerIds": p.containers.iter().map(|c| trunc(&c.id)).collect::<Vec<_>>().join(","),
            "ContainerNames": p.containers.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(","),
            "ContainerStatuses": p.containers.iter().map(|c| c.status.clone()).collect::<Vec<_>>().join(","),
        }));
    }
    if a.quiet {
        for p in &pods {
            println!("{}", p.id);
        }
        return Ok(());
    }
    if a.format.as_deref() == Some("json") {
        let full: Vec<_> = pods
            .iter()
            .map(|p| {
                json!({
                    "Id": p.id, "Name": p.name, "Status": p.status, "Created": p.created,
                    "InfraId": p.infra_id, "Labels": p.labels, "Networks": p.networks,
                    "Containers": p.containers.iter().map(|c| json!({
                        "Id": c.id, "Names": c.name, "Status": c.status,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&full)?);
        return Ok(());
    }
    let format = a.format.clone().filter(|f| f != "table").unwrap_or_else(|| {
        "table {{.ID}}\t{{.Name}}\t{{.Status}}\t{{.Created}}\t{{.InfraID}}\t{{.NumberOfContainers}}"
            .into()
    });
    let header = |f: &str| match f {
        "ID" => "POD ID".to_string(),
        "InfraID" => "INFRA ID".to_string(),
        "NumberOfContainers" => "# OF CONTAINERS".to_string(),
        "ContainerIds" => "IDS".to_string(),
        "ContainerNames" => "NAMES".to_string(),
        "ContainerStatuses" => "STATUS".to_string(),
        other => default_header(other),
    };
    let text = render_rows_with_methods(&format, &rows, &header, &|i, m, args| {
        crate::output::label_method(&pods[i].labels)(m, args)
    })?;
    print!("{text}");
    Ok(())
}
