//! One module per command family; each turns parsed arguments into engine calls and prints.

mod images;
mod registry;
mod system;

use crate::cli::{Cli, Command, ImageCommand, RegistryCommand, SystemCommand};
use anyhow::Result;
use berth_engine::{Engine, EngineConfig};

pub fn run(cli: Cli) -> Result<()> {
    let config = EngineConfig {
        root: cli.root.clone(),
        runroot: cli.runroot.clone(),
    };
    let open = || -> Result<Engine> { Ok(Engine::open(config.clone())?) };
    match cli.command {
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::list(&open()?, a),
        Command::Image(ImageCommand::Inspect(a)) => {
            images::inspect(&open()?, &a.names, a.format.as_deref())
        }
        Command::Inspect(a) => images::inspect_any(&open()?, a),
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
        Command::Version(a) => system::version(&open()?, a),
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
