//! The command line, with Docker's command names, flags and defaults.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A daemonless, Docker-compatible container engine"
)]
pub struct Cli {
    // The global options are hidden from every command's option list and shown once, in the
    // top-level help (see `GLOBAL_OPTIONS`).
    /// Root of persistent state (images, layers, containers)
    #[arg(
        long,
        global = true,
        hide = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    pub root: PathBuf,
    /// Root of runtime state (sockets, pids); lost on reboot
    #[arg(
        long,
        global = true,
        hide = true,
        env = "BERTH_RUNROOT",
        default_value = "/run/berth"
    )]
    pub runroot: PathBuf,
    /// Enable debug output
    #[arg(short = 'D', long, global = true, hide = true)]
    pub debug: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List images
    Images(ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Return low-level information on berth objects
    Inspect(InspectArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Show the berth version information
    Version(FormatOnly),
    /// Display system-wide information
    Info(FormatOnly),
    /// Manage berth
    #[command(subcommand)]
    System(SystemCommand),
    /// Create and run a new container from an image
    #[command(disable_help_flag = true, after_help = examples::RUN)]
    Run(RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    #[command(after_help = examples::PS)]
    Ps(PsArgs),
    /// Fetch the logs of a container
    #[command(after_help = examples::LOGS)]
    Logs(LogsArgs),
    /// Execute a command in a running container
    #[command(after_help = examples::EXEC)]
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(crate::commands::containers_extra::CpArgs),
    /// Create a new image from a container's changes
    Commit(crate::commands::containers_extra::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(crate::commands::containers_extra::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(crate::commands::containers_extra::ExportArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(crate::commands::containers_extra::StatsArgs),
    /// Finishes a container that exited (run by its monitor: --rm, --restart)
    #[command(name = "__container-exited", hide = true)]
    ContainerExited(crate::commands::containers_extra::ExitedArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(crate::commands::network::NetworkCommand),
    /// Kubernetes manifests from containers
    #[command(subcommand)]
    Kube(crate::commands::kube::KubeCommand),
    /// Manage pods: containers that share a network namespace
    #[command(subcommand)]
    Pod(crate::commands::pods::PodCommand),
    /// Container Device Interface specs (GPUs and other devices)
    #[command(subcommand)]
    Cdi(crate::commands::cdi::CdiCommand),
    /// Download an image from a registry
    #[command(after_help = examples::PULL)]
    Pull(PullArgs),
    /// Upload an image to a registry
    #[command(after_help = examples::PUSH)]
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Run or maintain the built-in OCI registry
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Build an image from a Dockerfile
    #[command(after_help = examples::BUILD)]
    Build(crate::commands::build::BuildArgs),
    /// Manage builds
    #[command(subcommand)]
    Builder(crate::commands::build::BuilderCommand),
    /// Write a fully pinned requirements file of the Python packages an image installed
    Lock(crate::commands::build::LockArgs),
    /// Get real time events from berth
    Events(EventsArgs),
    /// Serve the Docker Engine API (for the docker CLI, docker-py, compose)
    Serve(ServeArgs),
    /// Generate the autocompletion script for the specified shell
    Completion(CompletionArgs),
    /// Write berth's manual pages (one per command) into a directory
    #[command(name = "__man-pages", hide = true)]
    ManPages(ManPagesArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Socket to listen on: unix:///PATH or tcp://ADDR:PORT (repeatable; default
    /// unix://$RUNROOT/berth.sock)
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Group of the unix sockets (default: docker when that group exists, else root)
    #[arg(short = 'G', long)]
    pub group: Option<String>,
    /// Serve TCP without TLS (anyone who can reach the port is root on this host)
    #[arg(long)]
    pub insecure_tcp: bool,
    /// Serve TLS on tcp:// hosts and require client certificates signed by --tlscacert
    #[arg(long)]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA (default with --tlsverify: $DOCKER_CERT_PATH/ca.pem,
    /// else ~/.docker/ca.pem)
    #[arg(long)]
    pub tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file (default with --tlsverify: $DOCKER_CERT_PATH/cert.pem, else
    /// ~/.docker/cert.pem)
    #[arg(long)]
    pub tlscert: Option<PathBuf>,
    /// Path to TLS key file (default with --tlsverify: $DOCKER_CERT_PATH/key.pem, else
    /// ~/.docker/key.pem)
    #[arg(long)]
    pub tlskey: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    pub filters: Vec<String>,
    /// Format output using a custom template ('json' prints each event as JSON)
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// bash, zsh, fish, elvish or powershell
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManPagesArgs {
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Remove unused images
    Prune(ImagePruneArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Display system-wide information
    Info(FormatOnly),
    /// Remove unused data
    Prune(crate::commands::containers_extra::SystemPruneArgs),
    /// Show berth disk usage
    Df(crate::commands::containers_extra::SystemDfArgs),
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long)]
    pub format: Option<String>,
    /// Repository to list ([REPOSITORY[:TAG]])
    pub repository: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImageInspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// file|URL|- (STDIN)
    pub source: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FormatOnly {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Registry server (Docker Hub by default)
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry server (Docker Hub by default)
    pub server: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serve an OCI distribution registry
    Serve(RegistryServeArgs),
    /// Remove blobs that no manifest references (run while the server is stopped or read-only)
    Gc(RegistryGcArgs),
}

#[derive(Debug, Args)]
pub struct RegistryServeArgs {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: String,
    /// Storage directory (default: the registry/ directory under --root)
    #[arg(long)]
    pub storage: Option<PathBuf>,
    /// htpasswd file with bcrypt entries (htpasswd -B); enables authentication
    #[arg(long)]
    pub htpasswd: Option<PathBuf>,
    /// Hand out bearer tokens from a built-in /token endpoint (needs --htpasswd, or --read-only)
    #[arg(long)]
    pub token_auth: bool,
    /// TLS certificate chain (PEM)
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Refuse every write
    #[arg(long)]
    pub read_only: bool,
    /// Allow deleting manifests, tags and blobs
    #[arg(long)]
    pub delete_enabled: bool,
}

#[derive(Debug, Args)]
pub struct RegistryGcArgs {
    /// Only report what would be removed
    #[arg(long)]
    pub dry_run: bool,
    /// Storage directory (default: the registry/ directory under --root)
    #[arg(long)]
    pub storage: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// List containers
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach to a running container
    Attach(AttachArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(crate::commands::containers_extra::CpArgs),
    /// Create a new image from a container's changes
    Commit(crate::commands::containers_extra::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(crate::commands::containers_extra::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(crate::commands::containers_extra::ExportArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(crate::commands::containers_extra::StatsArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(VolumeLsArgs),
    /// Display detailed information on one or more volumes
    Inspect(VolumeInspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove unused local volumes
    Prune(VolumePruneArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Add additional groups to join
    #[arg(long)]
    pub group_add: Vec<String>,
    /// Bind mount a volume
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Set meta data on a container
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Add Linux capabilities
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security Options
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long, allow_hyphen_values = true)]
    pub stop_timeout: Option<String>,
    /// Connect a container to a network
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Run the container in an existing pod (its network, IPC and UTS namespaces)
    #[arg(long)]
    pub pod: Option<String>,
    /// Runtime to use for this container
    #[arg(long)]
    pub runtime: Option<String>,
    /// Memory limit
    #[arg(short, long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long, allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short, long, allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Size of /dev/shm
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long, alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Command to run to check health
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long, allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long, allow_hyphen_values = true)]
    pub health_retries: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long, allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long, allow_hyphen_values = true)]
    pub health_start_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long, allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    #[command(flatten)]
    pub host: crate::cli_run::HostArgs,
    /// Image
    pub image: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short,
        long = "time",
        visible_alias = "timeout",
        allow_hyphen_values = true
    )]
    pub time: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, allow_hyphen_values = true)]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Add the POD ID and PODNAME columns (podman's --pod)
    #[arg(short = 'p', long)]
    pub pod: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Show logs since timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Number of CPUs
    #[arg(long, allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short, long, allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short, long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_options: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    pub container: String,
    pub private_port: Option<String>,
}

#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct VolumeLsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct VolumeInspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// Docker stops reading its own options at the first argument that is not one: for `run IMAGE
/// ARG…`, `create IMAGE ARG…` and `exec CONTAINER ARG…` everything from IMAGE (CONTAINER) on
/// belongs to the container, `-p`, `--help` and `--` included. clap would go on matching
/// options after IMAGE, so a `--` is inserted before it: everything after is then positional.
pub fn stop_options_at_first_operand(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory;
    let root = Cli::command();
    let mut i = 1;
    let mut cmd = &root;
    let mut path_len = 0;
    // Find the subcommand (through `container`), skipping the global options and their values.
    loop {
        let Some(tok) = args.get(i).and_then(|a| a.to_str()) else {
            return args;
        };
        if tok.starts_with('-') && tok != "-" {
            match option_value_tokens(cmd, &root, tok) {
                Some(n) => i += 1 + n,
                None => return args,
            }
            continue;
        }
        let Some(sub) = cmd.find_subcommand(tok) else {
            return args;
        };
        i += 1;
        path_len += 1;
        let name = sub.get_name();
        if path_len == 1 && name == "container" {
            cmd = sub;
            continue;
        }
        if !matches!(name, "run" | "create" | "exec") {
            return args;
        }
        cmd = sub;
        break;
    }
    // Skip the command's own options; the first operand starts the container's part.
    while let Some(tok) = args.get(i).and_then(|a| a.to_str()) {
        if tok == "--" {
            return args;
        }
        if !tok.starts_with('-') || tok == "-" {
            let mut out = args;
            out.insert(i, "--".into());
            return out;
        }
        match option_value_tokens(cmd, &root, tok) {
            Some(n) => i += 1 + n,
            None => return args,
        }
    }
    args
}

/// How many following tokens an option token consumes as its value (0 or 1), or None when the
/// option is unknown (clap reports it).
fn option_value_tokens(cmd: &clap::Command, root: &clap::Command, tok: &str) -> Option<usize> {
    let takes_value = |a: &clap::Arg| a.get_action().takes_values();
    let find_long = |name: &str| {
        cmd.get_arguments()
            .chain(root.get_arguments().filter(|a| a.is_global_set()))
            .find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            })
            .cloned()
    };
    let find_short = |c: char| {
        cmd.get_arguments()
            .chain(root.get_arguments().filter(|a| a.is_global_set()))
            .find(|a| {
                a.get_short() == Some(c)
                    || a.get_all_short_aliases().is_some_and(|al| al.contains(&c))
            })
            .cloned()
    };
    if let Some(long) = tok.strip_prefix("--") {
        if long.contains('=') {
            return Some(0);
        }
        if matches!(long, "help" | "version") {
            return Some(0);
        }
        let arg = find_long(long)?;
        return Some(usize::from(takes_value(&arg)));
    }
    let shorts = &tok[1..];
    for (at, c) in shorts.char_indices() {
        if c == 'h' && find_short('h').is_none() {
            return Some(0);
        }
        let arg = find_short(c)?;
        if takes_value(&arg) {
            // `-p8080` or `-p=8080` carries its value; a bare `-p` takes the next token.
            let rest = &shorts[at + c.len_utf8()..];
            return Some(usize::from(rest.is_empty()));
        }
    }
    Some(0)
}

/// The global options, listed once in the top-level help.
const GLOBAL_OPTIONS: &str = "\
Global Options:
      --root <ROOT>        Root of persistent state: images, layers, containers, volumes
                           [env: BERTH_ROOT] [default: /var/lib/berth]
      --runroot <RUNROOT>  Root of runtime state: sockets, pids; lost on reboot
                           [env: BERTH_RUNROOT] [default: /run/berth]
  -D, --debug              Enable debug output
  -h, --help               Print help
  -V, --version            Print version";

/// The commands people use most, first in the help, as the docker CLI lists them.
const COMMON_COMMANDS: [&str; 11] = [
    "run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "version", "info",
];

/// The command line, with the top-level help grouped as the docker CLI's: common commands,
/// management commands (those with subcommands), then every other command.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let visible: Vec<&clap::Command> = cmd.get_subcommands().filter(|c| !c.is_hide_set()).collect();
    let width = visible
        .iter()
        .map(|c| c.get_name().len())
        .max()
        .unwrap_or(0)
        + 2;
    let line = |c: &clap::Command| {
        let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
        format!("  {:<width$}{about}\n", c.get_name())
    };
    let mut common = String::new();
    for name in COMMON_COMMANDS {
        if let Some(c) = visible.iter().find(|c| c.get_name() == name) {
            common.push_str(&line(c));
        }
    }
    let mut management: Vec<&&clap::Command> =
        visible.iter().filter(|c| c.has_subcommands()).collect();
    management.sort_by_key(|c| c.get_name());
    let mut other: Vec<&&clap::Command> = visible
        .iter()
        .filter(|c| !c.has_subcommands() && !COMMON_COMMANDS.contains(&c.get_name()))
        .collect();
    other.sort_by_key(|c| c.get_name());
    let list = |cs: &[&&clap::Command]| cs.iter().map(|c| line(c)).collect::<String>();
    let template = format!(
        "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n\
         Common Commands:\n{common}\n\
         Management Commands:\n{}\n\
         Commands:\n{}\n\
         {GLOBAL_OPTIONS}\n\n\
         Run 'berth COMMAND --help' (or 'berth help COMMAND') for more information on a command.",
        list(&management),
        list(&other),
    );
    cmd.help_template(template)
        .override_usage("berth [OPTIONS] COMMAND")
}

/// Examples shown at the end of the most used commands' help.
mod examples {
    pub const RUN: &str = "\
Examples:
  berth run --rm -it python:3.11-slim python           an interactive Python, removed on exit
  berth run -d --name api -p 8000:8000 app             a server in the background, port published
  berth run --rm -v ./data:/data --memory 4g --cpus 2 trainer python train.py --epochs 5
                                                       a training job with data and limits";
    pub const PS: &str = "\
Examples:
  berth ps -a                                          running and stopped containers
  berth ps --filter status=exited -q                   IDs of stopped containers
  berth ps --format '{{.Names}}\\t{{.Status}}'          a custom table";
    pub const LOGS: &str = "\
Examples:
  berth logs -f --tail 20 api                          follow from the last 20 lines
  berth logs --since 10m -t api                        the last ten minutes, with timestamps";
    pub const EXEC: &str = "\
Examples:
  berth exec -it api sh                                a shell in a running container
  berth exec -e DEBUG=1 -w /app api python check.py    one command, with env and workdir";
    pub const PULL: &str = "\
Examples:
  berth pull registry.example.com/team/python:3.11     from a registry
  berth pull --platform linux/arm64 python:3.11        another platform's image";
    pub const PUSH: &str = "\
Examples:
  berth tag app localhost:5000/team/app:1.0            name it for the registry
  berth push localhost:5000/team/app:1.0               upload (only missing layers)";
    pub const BUILD: &str = "\
Examples:
  berth build -t app .                                 the Dockerfile in the current directory
  berth build -t app:test --target test -f docker/Dockerfile .
  SOURCE_DATE_EPOCH=0 berth build -t app .             the same image ID on every machine";
}
