//! `version` and `info`.

use crate::cli::FormatOnly;
use crate::output::{human_size, print_inspect};
use anyhow::Result;
use berth_engine::Engine;
use serde_json::json;

pub fn version(engine: &Engine, args: FormatOnly) -> Result<()> {
    let v = engine.version();
    let value = json!({
        "Client": {
            "Version": v.version,
            "ApiVersion": v.api_version,
            "Os": v.os,
            "Arch": v.arch,
        },
        "Server": v,
    });
    if let Some(f) = args.format.as_deref() {
        // `--format json` is the docker CLI's shorthand for `{{json .}}`.
        let f = if f == "json" { "{{json .}}" } else { f };
        let s = berth_gotemplate::Template::parse(f)?.execute(&value)?;
        println!("{s}");
        return Ok(());
    }
    println!("Client:");
    println!(" Version:           {}", v.version);
    println!(" API version:       {}", v.api_version);
    println!(" OS/Arch:           {}/{}", v.os, v.arch);
    println!();
    println!("Server: berth");
    println!(" Engine:");
    println!("  Version:          {}", v.version);
    println!(
        "  API version:      {} (minimum version {})",
        v.api_version, v.min_api_version
    );
    println!("  Git commit:       {}", v.git_commit);
    println!("  OS/Arch:          {}/{}", v.os, v.arch);
    println!("  Kernel:           {}", v.kernel_version);
    Ok(())
}

pub fn info(engine: &Engine, args: FormatOnly) -> Result<()> {
    let i = engine.info()?;
    if let Some(f) = args.format.as_deref() {
        let v = berth_engine::shape::info(serde_json::to_value(&i)?);
        if f == "json" || f == "{{json .}}" {
            println!("{}", serde_json::to_string(&v)?);
            return Ok(());
        }
        return print_inspect(&[v], Some(f));
    }
    println!("Server:");
    println!(" Containers: {}", i.containers);
    println!("  Running: {}", i.containers_running);
    println!("  Paused: {}", i.containers_paused);
    println!("  Stopped: {}", i.containers_stopped);
    println!(" Images: {}", i.images);
    println!(" Server Version: {}", i.server_version);
    println!(" Storage Driver: {}", i.driver);
    for [k, v] in &i.driver_status {
        println!("  {k}: {v}");
    }
    println!(" Cgroup Driver: {}", i.cgroup_driver);
    println!(" Cgroup Version: {}", i.cgroup_version);
    println!(
        " Runtimes: {}",
        i.runtimes.keys().cloned().collect::<Vec<_>>().join(" ")
    );
    println!(" Default Runtime: {}", i.default_runtime);
    println!(" Kernel Version: {}", i.kernel_version);
    println!(" Operating System: {}", i.operating_system);
    println!(" OSType: {}", i.os_type);
    println!(" Architecture: {}", i.architecture);
    println!(" CPUs: {}", i.ncpu);
    println!(" Total Memory: {}", human_size(i.mem_total as f64));
    println!(" Name: {}", i.name);
    println!(" Root Dir: {}", i.root_dir);
    println!(" Run Root: {}", i.run_root);
    Ok(())
}

/// `berth completion SHELL`: the completion script on stdout.
pub fn completion(a: crate::cli::CompletionArgs) -> Result<()> {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "berth", &mut std::io::stdout());
    Ok(())
}

/// Manual pages for berth and every subcommand (`berth-run.1`, `berth-image-ls.1`, …).
pub fn man_pages(a: crate::cli::ManPagesArgs) -> Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(&a.dir)?;
    let cmd = crate::cli::Cli::command();
    clap_mangen::generate_to(cmd, &a.dir)?;
    Ok(())
}
