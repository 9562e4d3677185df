//! The `run`/`create` flags about namespaces, devices, kernel parameters, resources, logging,
//! pulling and attaching (flattened into `RunArgs`). Values are only parsed here; the engine
//! validates them (`berth_engine::containers::host_opts`).

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct HostArgs {
    /// IPC mode to use (private, shareable, host, none, container:<name|id>)
    #[arg(long)]
    pub ipc: Option<String>,
    /// PID namespace to use (host, container:<name|id>)
    #[arg(long)]
    pub pid: Option<String>,
    /// UTS namespace to use (host)
    #[arg(long)]
    pub uts: Option<String>,
    /// Add a host device to the container
    #[arg(long)]
    pub device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long)]
    pub device_cgroup_rule: Vec<String>,
    /// GPU devices to add to the container ('all' to pass all GPUs)
    #[arg(long)]
    pub gpus: Vec<String>,
    /// Sysctl options
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Set platform if server is multi-platform capable (only the host's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Logging driver for the container (json-file, local, none)
    #[arg(long)]
    pub log_driver: Option<String>,
    /// Log driver options (max-size=, max-file=)
    #[arg(long)]
    pub log_opt: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long)]
    pub volumes_from: Vec<String>,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<PathBuf>,
    /// Memory soft limit
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swappiness: Option<String>,
    /// Disable OOM Killer
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long, allow_hyphen_values = true)]
    pub oom_score_adj: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// Read in a line delimited file of labels
    #[arg(long)]
    pub label_file: Vec<PathBuf>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long)]
    pub attach: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
        default_missing_value = "true")]
    pub sig_proxy: bool,
}
