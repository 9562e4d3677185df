//! `network create|ls|inspect|rm|prune|connect|disconnect`.

use crate::output::default_header;
use crate::{exit_status, StatusError};
use anyhow::Result;
use berth_engine::containers::network::berth_network::CreateNetwork;
use berth_engine::Engine;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more networks
    Inspect(NetworkInspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(NetworkRmArgs),
    /// Remove all unused networks
    Prune(NetworkPruneArgs),
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
}

#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Driver to manage the Network (only "bridge")
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment (one IPv4, one IPv6)
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Enable IPv6 networking (needs an IPv6 --subnet)
    #[arg(long)]
    pub ipv6: bool,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Set metadata on a network
    #[arg(long)]
    pub label: Vec<String>,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Pretty-print networks using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Provide filter values (name=, id=, driver=)
    #[arg(short, long)]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkInspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct NetworkDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

fn fail(message: String) -> anyhow::Error {
    StatusError { code: 1, message }.into()
}

pub fn run(engine: &mut Engine, cmd: NetworkCommand) -> Result<()> {
    match cmd {
        NetworkCommand::Create(a) => create(engine, a),
        NetworkCommand::Ls(a) => ls(engine, a),
        NetworkCommand::Inspect(a) => inspect(engine, a),
        NetworkCommand::Rm(a) => rm(engine, a),
        NetworkCommand::Prune(a) => prune(engine, a),
        NetworkCommand::Connect(a) => engine
            .network_connect(&a.network, &a.container, &a.alias, a.ip.as_deref())
            .map_err(|e| fail(e.to_string())),
        NetworkCommand::Disconnect(a) => engine
            .network_disconnect(&a.network, &a.container)
            .map_err(|e| fail(e.to_string())),
    }
}

fn create(engine: &mut Engine, a: NetworkCreateArgs) -> Result<()> {
    if a.driver != "bridge" {
        return Err(fail(format!(
            "plugin \"{}\" not found: berth supports the bridge driver only",
            a.driver
        )));
    }
    let labels = a
        .label
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let mut req = CreateNetwork {
        name: a.name,
        internal: a.internal,
        labels,
        ipv6: a.ipv6,
        ..Default::default()
    };
    req.set_pools(&a.subnet, &a.gateway)
        .map_err(|e| fail(e.to_string()))?;
    let n = engine
        .network_create(&req)
        .map_err(|e| fail(e.to_string()))?;
    println!("{}", n.id);
    Ok(())
}

fn ls(engine: &mut Engine, a: NetworkLsArgs) -> Result<()> {
    let nets = engine
        .network_list_filtered(&a.filter)
        .map_err(|e| fail(e.to_string()))?;
    let mut rows = Vec::new();
    let mut row_labels = Vec::new();
    for n in &nets {
        let id = if a.no_trunc {
            n.id.clone()
        } else {
            n.id[..12.min(n.id.len())].to_string()
        };
        row_labels.push(&n.labels);
        rows.push(json!({
            "ID": id, "Name": n.name, "Driver": n.driver, "Scope": "local",
            "IPv6": n.ipv6.to_string(), "Internal": n.internal.to_string(), "CreatedAt": n.created,
            "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        }));
    }
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        a.format
            .clone()
            .filter(|f| f != "table")
            .unwrap_or_else(|| "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".into())
    };
    let header = |f: &str| match f {
        "ID" => "NETWORK ID".to_string(),
        other => default_header(other),
    };
    let text = crate::output::render_rows_with_methods(&format, &rows, &header, &|i, m, args| {
        crate::output::label_method(row_labels[i])(m, args)
    })?;
    print!("{text}");
    Ok(())
}

fn inspect(engine: &mut Engine, a: NetworkInspectArgs) -> Result<()> {
    crate::output::inspect_each(&a.names, a.format.as_deref(), "Error", |n| {
        engine.network_inspect(n)
    })
}

fn rm(engine: &mut Engine, a: NetworkRmArgs) -> Result<()> {
    let mut failed = false;
    for n in &a.names {
        match engine.network_remove(n) {
            Ok(name) => println!("{name}"),
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(exit_status(1));
    }
    Ok(())
}

fn prune(engine: &mut Engine, a: NetworkPruneArgs) -> Result<()> {
    if !a.force
        && !super::confirm(
            "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?",
        )
    {
        return Ok(());
    }
    let removed = engine
        .network_prune(&a.filter)
        .map_err(|e| fail(e.to_string()))?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in removed {
            println!("{n}");
        }
    }
    Ok(())
}

/// `ps`'s PORTS column from the API's port objects: `0.0.0.0:8080->80/tcp, …`; IPv6 as
/// Docker 20.10's CLI prints it, without brackets (`:::8080->80/tcp`).
pub fn ps_ports(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let ip = p["IP"].as_str().unwrap_or("");
            let ty = p["Type"].as_str().unwrap_or("tcp");
            let private = p["PrivatePort"].as_u64().unwrap_or(0);
            match p["PublicPort"].as_u64() {
                Some(public) => format!("{ip}:{public}->{private}/{ty}"),
                None => format!("{private}/{ty}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
