//! One module per command family; each turns parsed arguments into engine calls and prints.

pub(crate) mod build;
pub(crate) mod cdi;
mod containers;
pub(crate) mod containers_extra;
mod images;
pub(crate) mod kube;
pub(crate) mod network;
pub(crate) mod pods;
mod registry;
mod stats;
mod system;

use crate::cli::{
    Cli, Command, ContainerCommand as C, ImageCommand, RegistryCommand, SystemCommand,
    VolumeCommand as V,
};
use anyhow::Result;
use berth_engine::{Engine, EngineConfig};

/// Where the NVIDIA driver and the CDI specs are: the host's, unless `BERTH_GPU_ROOT` names a
/// driver tree (its `dev/`, `proc/`, libraries; a test's fake one) or `BERTH_CDI_SPEC_DIRS`
/// (colon-separated, lowest priority first) other spec directories.
fn gpu_config() -> berth_engine::gpu::GpuConfig {
    let mut g = berth_engine::gpu::GpuConfig::default();
    if let Some(root) = std::env::var_os("BERTH_GPU_ROOT").filter(|v| !v.is_empty()) {
        let root = std::path::PathBuf::from(root);
        g.proc_root = root.join("proc");
        g.driver_root = root;
    }
    if let Some(dirs) = std::env::var_os("BERTH_CDI_SPEC_DIRS").filter(|v| !v.is_empty()) {
        g.cdi_dirs = std::env::split_paths(&dirs).collect();
    }
    g
}

pub fn run(cli: Cli) -> Result<()> {
    // Where the helper programs are, for test harnesses and split installs; unset, the
    // engine finds them from this executable.
    let path_env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    };
    let config = EngineConfig {
        root: cli.root.clone(),
        runroot: cli.runroot.clone(),
        monitor: path_env("BERTH_MONITOR"),
        netproxy: path_env("BERTH_NETPROXY"),
        exit_hook: None,
        init_path: path_env("BERTH_INIT_PATH"),
        gpu: gpu_config(),
    };
    let open = || -> Result<Engine> {
        let e = Engine::open(config.clone())?;
        berth_engine::trace("cli: engine open");
        Ok(e)
    };
    match cli.command {
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::list(&open()?, a),
        Command::Image(ImageCommand::Inspect(a)) => {
            images::inspect(&open()?, &a.names, a.format.as_deref())
        }
        Command::Inspect(a) => images::inspect_any(&mut open()?, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(&mut open()?, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::remove(&mut open()?, a),
        Command::Image(ImageCommand::Prune(a)) => images::prune(&mut open()?, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            images::history(&open()?, a)
        }
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => {
            images::import(&mut open()?, a)
        }
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => images::load(&mut open()?, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => images::save(&open()?, a),
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => registry::pull(&mut open()?, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => registry::push(&mut open()?, a),
        Command::Login(a) => registry::login(&open()?, a),
        Command::Logout(a) => registry::logout(&open()?, a),
        Command::Registry(RegistryCommand::Serve(a)) => registry::serve(&cli.root, a),
        Command::Registry(RegistryCommand::Gc(a)) => registry::gc(&cli.root, a),
        Command::Run(a) | Command::Container(C::Run(a)) => containers::run(&mut open()?, a),
        Command::Create(a) | Command::Container(C::Create(a)) => {
            containers::create(&mut open()?, a)
        }
        Command::Start(a) | Command::Container(C::Start(a)) => containers::start(&mut open()?, a),
        Command::Stop(a) | Command::Container(C::Stop(a)) => containers::stop(&mut open()?, a),
        Command::Restart(a) | Command::Container(C::Restart(a)) => {
            containers::restart(&mut open()?, a)
        }
        Command::Kill(a) | Command::Container(C::Kill(a)) => containers::kill(&mut open()?, a),
        Command::Rm(a) | Command::Container(C::Rm(a)) => containers::rm(&mut open()?, a),
        Command::Ps(a) | Command::Container(C::Ls(a)) => containers::ps(&mut open()?, a),
        Command::Logs(a) | Command::Container(C::Logs(a)) => containers::logs(&mut open()?, a),
        Command::Exec(a) | Command::Container(C::Exec(a)) => containers::exec(&mut open()?, a),
        Command::Attach(a) | Command::Container(C::Attach(a)) => {
            containers::attach(&mut open()?, a)
        }
        Command::Wait(a) | Command::Container(C::Wait(a)) => containers::wait(&mut open()?, a),
        Command::Rename(a) | Command::Container(C::Rename(a)) => {
            containers::rename(&mut open()?, a)
        }
        Command::Pause(a) | Command::Container(C::Pause(a)) => containers::pause(&mut open()?, a),
        Command::Update(a) | Command::Container(C::Update(a)) => {
            containers::update(&mut open()?, a)
        }
        Command::Unpause(a) | Command::Container(C::Unpause(a)) => {
            containers::unpause(&mut open()?, a)
        }
        Command::Top(a) | Command::Container(C::Top(a)) => containers::top(&mut open()?, a),
        Command::Port(a) | Command::Container(C::Port(a)) => containers::port(&mut open()?, a),
        Command::Container(C::Inspect(a)) => containers::inspect(&mut open()?, a),
        Command::Container(C::Prune(a)) => containers_extra::container_prune(&mut open()?, a),
        Command::Cp(a) | Command::Container(C::Cp(a)) => containers_extra::cp(&mut open()?, a),
        Command::Commit(a) | Command::Container(C::Commit(a)) => {
            containers_extra::commit(&mut open()?, a)
        }
        Command::Diff(a) | Command::Container(C::Diff(a)) => {
            containers_extra::diff(&mut open()?, a)
        }
        Command::Export(a) | Command::Container(C::Export(a)) => {
            containers_extra::export(&mut open()?, a)
        }
        Command::Stats(a) | Command::Container(C::Stats(a)) => {
            containers_extra::stats(&mut open()?, a)
        }
        Command::ContainerExited(a) => containers_extra::container_exited(&mut open()?, a),
        Command::System(SystemCommand::Prune(a)) => containers_extra::system_prune(&mut open()?, a),
        Command::System(SystemCommand::Df(a)) => containers_extra::system_df(&mut open()?, a),
        Command::Volume(V::Create(a)) => containers::volume_create(&mut open()?, a),
        Command::Volume(V::Ls(a)) => containers::volume_ls(&mut open()?, a),
        Command::Volume(V::Inspect(a)) => containers::volume_inspect(&mut open()?, a),
        Command::Volume(V::Rm(a)) => containers::volume_rm(&mut open()?, a),
        Command::Volume(V::Prune(a)) => containers::volume_prune(&mut open()?, a),
        Command::Network(c) => network::run(&mut open()?, c),
        Command::Kube(c) => kube::run(&mut open()?, c),
        Command::Pod(c) => pods::run(&mut open()?, c),
        Command::Cdi(c) => cdi::run(&config.gpu, c),
        Command::Build(a) => build::build(&mut open()?, a),
        Command::Builder(build::BuilderCommand::Prune(a)) => build::prune(&mut open()?, a),
        Command::Lock(a) => build::lock(&open()?, a),
        Command::Version(a) => system::version(&open()?, a),
        Command::Completion(a) => system::completion(a),
        Command::Events(a) => system::events(&open()?, a),
        Command::Serve(a) => system::serve(config, a),
        Command::ManPages(a) => system::man_pages(a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => system::info(&open()?, a),
    }
}

/// Asks a y/N question on the terminal, as Docker's prune commands do.
pub fn confirm(prompt: &str) -> bool {
    use std::io::{BufRead, Write};
    print!("{prompt} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "Yes")
}
