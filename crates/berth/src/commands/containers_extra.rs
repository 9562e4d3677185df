//! More container commands: `cp`, `commit`, `diff`, `export`, `stats`, `system prune`,
//! `system df`, and `container prune` with filters.

use crate::output::human_size;
use anyhow::Result;
use berth_engine::containers::cp::{archive_host_path, ContainerRoot, TarOptions};
use berth_engine::{Engine, EngineError};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::containers::status;

fn daemon(e: EngineError) -> anyhow::Error {
    status(1, format!("Error response from daemon: {e}"))
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH or -
    pub source: String,
    /// DEST_PATH or - or CONTAINER:DEST_PATH
    pub destination: String,
}

/// Docker's `splitCpArg`: `CONTAINER:PATH`, unless the argument is an absolute path or starts
/// with `.` (so local paths with colons can be written `./a:b`).
fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) => (Some(c), p),
        None => (None, arg),
    }
}

/// `a/b/.` (copy the contents of b): the path without `/.`, and true.
fn contents_only(path: &str) -> (&str, bool) {
    if path == "." {
        return (".", true);
    }
    match path.strip_suffix("/.") {
        Some("") => ("/", true),
        Some(p) => (p, true),
        None => (path, false),
    }
}

fn base_name(path: &str) -> String {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        return ".".into();
    }
    match t.rsplit_once('/') {
        Some((_, b)) => b.to_string(),
        None => t.to_string(),
    }
}

fn parent_of(path: &str) -> String {
    let t = path.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((p, _)) => p.into(),
        None => ".".into(),
    }
}

/// A container path relative to the container's working directory.
fn container_path(root: &ContainerRoot, p: &str) -> String {
    if p.starts_with('/') {
        return p.to_string();
    }
    let wd = root.spec.config["WorkingDir"].as_str().unwrap_or("");
    let wd = if wd.is_empty() { "/" } else { wd };
    format!("{}/{}", wd.trim_end_matches('/'), p)
}

pub fn cp(engine: &mut Engine, a: CpArgs) -> Result<()> {
    let (src_ctr, src) = split_cp_arg(&a.source);
    let (dst_ctr, dst) = split_cp_arg(&a.destination);
    match (src_ctr, dst_ctr) {
        (Some(_), Some(_)) => Err(status(1, "copying between containers is not supported")),
        (None, None) => Err(status(1, "must specify at least one container source")),
        (Some(c), None) => copy_from(engine, &a, c, src, dst),
        (None, Some(c)) => copy_to(engine, &a, src, c, dst),
    }
}

fn copy_from(engine: &mut Engine, a: &CpArgs, ctr: &str, src: &str, dst: &str) -> Result<()> {
    if src.is_empty() {
        return Err(status(1, "filepath cannot be empty"));
    }
    let root = engine.open_container_root(ctr).map_err(daemon)?;
    let src = container_path(&root, src);
    let (src_path, contents) = contents_only(&src);
    let st = root
        .stat(src_path, a.follow_link)
        .map_err(daemon)?
        .ok_or_else(|| {
            status(
                1,
                format!("Error response from daemon: Could not find the file {src_path} in container {ctr}"),
            )
        })?;
    if contents && !st.is_dir {
        return Err(status(1, format!("{src}: not a directory")));
    }
    if dst == "-" {
        let top = if contents {
            String::new()
        } else {
            base_name(src_path)
        };
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        root.archive(
            src_path,
            a.follow_link,
            &top,
            TarOptions::default(),
            &mut out,
        )
        .map_err(daemon)?;
        out.flush()?;
        return Ok(());
    }
    let dst_path = Path::new(dst);
    let (target_dir, top) = match std::fs::metadata(dst_path) {
        Ok(m) if m.is_dir() => (
            dst_path.to_path_buf(),
            if contents {
                String::new()
            } else {
                base_name(src_path)
            },
        ),
        Ok(_) => {
            if st.is_dir {
                return Err(status(
                    1,
                    format!("cannot overwrite non-directory \"{dst}\" with directory \"{src}\""),
                ));
            }
            (PathBuf::from(parent_of(dst)), base_name(dst))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dst.ends_with('/') && !st.is_dir {
                return Err(status(
                    1,
                    format!("destination directory \"{dst}\" does not exist"),
                ));
            }
            let parent = PathBuf::from(parent_of(dst));
            if !parent.is_dir() {
                return Err(status(
                    1,
                    format!("lstat {}: no such file or directory", parent.display()),
                ));
            }
            (parent, base_name(dst))
        }
        Err(e) => return Err(status(1, format!("{dst}: {e}"))),
    };
    let owner = if a.archive {
        None
    } else {
        Some(unsafe { (libc::geteuid(), libc::getegid()) })
    };
    let (reader, mut writer) = std::io::pipe()?;
    let extract = std::thread::spawn(move || {
        berth_engine::containers::cp::apply_archive(reader, &target_dir)
    });
    let made = root.archive(
        src_path,
        a.follow_link,
        &top,
        TarOptions { owner },
        &mut writer,
    );
    drop(writer);
    let applied = extract.join().map_err(|_| status(1, "copy failed"))?;
    made.map_err(daemon)?;
    let stats = applied.map_err(|e| status(1, format!("copying to {dst}: {e}")))?;
    report(a, stats.size, dst);
    Ok(())
}

fn report(a: &CpArgs, size: u64, to: &str) {
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!("Successfully copied {} to {to}", human_size(size as f64));
    }
}

fn copy_to(engine: &mut Engine, a: &CpArgs, src: &str, ctr: &str, dst: &str) -> Result<()> {
    if dst.is_empty() {
        return Err(status(1, "filepath cannot be empty"));
    }
    let root = engine.open_container_root(ctr).map_err(daemon)?;
    let dst = container_path(&root, dst);
    if src == "-" {
        match root.stat(&dst, true).map_err(daemon)? {
            Some(s) if s.is_dir => {}
            _ => {
                return Err(status(
                    1,
                    format!("destination \"{ctr}:{dst}\" must be a directory"),
                ))
            }
        }
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        root.extract(&dst, &mut input).map_err(daemon)?;
        return Ok(());
    }
    let (src_path, contents) = contents_only(src);
    let meta = if a.follow_link {
        std::fs::metadata(src_path)
    } else {
        std::fs::symlink_metadata(src_path)
    }
    .map_err(|e| status(1, format!("lstat {src_path}: {}", strip_os(&e))))?;
    if contents && !meta.is_dir() {
        return Err(status(1, format!("{src}: not a directory")));
    }
    let (dir, top) = match root.stat(&dst, true).map_err(daemon)? {
        Some(s) if s.is_dir => (
            dst.clone(),
            if contents {
                String::new()
            } else {
                base_name(src_path)
            },
        ),
        Some(_) => {
            if meta.is_dir() {
                return Err(status(1, format!("Error response from daemon: cannot overwrite non-directory \"{dst}\" with directory \"{src}\"")));
            }
            (parent_of(&dst), base_name(&dst))
        }
        None => {
            if dst.ends_with('/') && !meta.is_dir() {
                return Err(status(
                    1,
                    format!("destination directory \"{dst}\" does not exist"),
                ));
            }
            let parent = parent_of(&dst);
            match root.stat(&parent, true).map_err(daemon)? {
                Some(s) if s.is_dir => {}
                _ => {
                    return Err(status(
                        1,
                        format!("Error response from daemon: Could not find the file {parent} in container {ctr}"),
                    ))
                }
            }
            (parent, base_name(&dst))
        }
    };
    let owner = if a.archive { None } else { Some((0, 0)) };
    let (mut reader, mut writer) = std::io::pipe()?;
    let follow = a.follow_link;
    let src_owned = PathBuf::from(src_path);
    let size = meta.len();
    let producer = std::thread::spawn(move || {
        archive_host_path(&src_owned, follow, &top, TarOptions { owner }, &mut writer)
    });
    let extracted = root.extract(&dir, &mut reader);
    drop(reader);
    let made = producer.join().map_err(|_| status(1, "copy failed"))?;
    extracted.map_err(daemon)?;
    made.map_err(|e| status(1, format!("copying {src}: {e}")))?;
    report(a, size, &format!("{ctr}:{dst}"));
    Ok(())
}

fn strip_os(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => e.to_string(),
    }
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub pause: bool,
    pub container: String,
    /// REPOSITORY[:TAG]
    pub repository: Option<String>,
}

pub fn commit(engine: &mut Engine, a: CommitArgs) -> Result<()> {
    let id = engine
        .commit_container(
            &a.container,
            &berth_engine::containers::commit::CommitOptions {
                reference: a.repository.clone(),
                changes: a.change.clone(),
                message: a.message.clone(),
                author: a.author.clone(),
                pause: a.pause,
                source_date_epoch: crate::commands::build::source_date_epoch_env()?,
            },
        )
        .map_err(daemon)?;
    println!("{id}");
    Ok(())
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub container: String,
}

pub fn diff(engine: &mut Engine, a: DiffArgs) -> Result<()> {
    let changes = engine.container_changes(&a.container).map_err(daemon)?;
    let mut out = String::new();
    for c in changes {
        let k = match c.kind {
            0 => 'C',
            1 => 'A',
            _ => 'D',
        };
        out.push_str(&format!("{k} {}\n", c.path));
    }
    print!("{out}");
    Ok(())
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    pub container: String,
}

pub fn export(engine: &mut Engine, a: ExportArgs) -> Result<()> {
    match &a.output {
        None => {
            if std::io::stdout().is_terminal() {
                return Err(status(
                    1,
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                ));
            }
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            engine
                .export_container(&a.container, &mut out)
                .map_err(daemon)?;
            out.flush()?;
        }
        Some(path) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let mut tmp = tempfile::NamedTempFile::new_in(&dir)
                .map_err(|e| status(1, format!("failed to export container: {e}")))?;
            {
                let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
                engine
                    .export_container(&a.container, &mut out)
                    .map_err(daemon)?;
                out.flush()?;
            }
            tmp.as_file().sync_all()?;
            tmp.persist(path)
                .map_err(|e| status(1, format!("failed to export container: {e}")))?;
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

pub fn stats(engine: &mut Engine, a: StatsArgs) -> Result<()> {
    crate::commands::stats::stats(engine, a)
}

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

pub fn system_prune(engine: &mut Engine, a: SystemPruneArgs) -> Result<()> {
    // Docker's system prune takes `until` and `label` (and `label!`); checked before anything
    // is removed.
    let prune_filters =
        berth_engine::containers::network::PruneFilters::parse(&a.filter).map_err(daemon)?;
    if !a.force {
        let mut w = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
        if a.volumes {
            w.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        if a.all {
            w.push_str("  - all images without at least one container associated to them\n");
        } else {
            w.push_str("  - all dangling images\n");
        }
        w.push_str("  - unused build cache\n\nAre you sure you want to continue?");
        if !super::confirm(&w) {
            return Ok(());
        }
    }
    let mut total = 0u64;
    let c = engine.prune_containers(&a.filter).map_err(daemon)?;
    total += c.space_reclaimed;
    if !c.containers_deleted.is_empty() {
        println!("Deleted Containers:");
        for id in &c.containers_deleted {
            println!("{id}");
        }
        println!();
    }
    let nets = engine.network_prune(&a.filter).map_err(daemon)?;
    if !nets.is_empty() {
        println!("Deleted Networks:");
        for n in &nets {
            println!("{n}");
        }
        println!();
    }
    if a.volumes && prune_filters.has_until() {
        // As Docker's volume prune.
        return Err(daemon(berth_engine::EngineError::InvalidArgument(
            "invalid filter 'until'".into(),
        )));
    }
    if a.volumes && prune_filters.has_labels() {
        return Err(daemon(berth_engine::EngineError::InvalidArgument(
            "system prune --volumes --filter label=: volumes have no labels in berth yet; prune them with volume prune".into(),
        )));
    }
    if a.volumes {
        let v = engine.prune_volumes(false).map_err(daemon)?;
        total += v.space_reclaimed;
        if !v.volumes_deleted.is_empty() {
            println!("Deleted Volumes:");
            for n in &v.volumes_deleted {
                println!("{n}");
            }
            println!();
        }
    }
    let image_filters: Vec<String> = a.filter.clone();
    let filters = berth_engine::images::ImageFilters::parse(&image_filters).map_err(daemon)?;
    let i = engine.prune_images(a.all, &filters).map_err(daemon)?;
    total += i.space_reclaimed;
    if !i.images_deleted.is_empty() {
        println!("Deleted Images:");
        for item in &i.images_deleted {
            match item {
                berth_engine::types::DeleteItem::Untagged(n) => println!("untagged: {n}"),
                berth_engine::types::DeleteItem::Deleted(n) => println!("deleted: {n}"),
            }
        }
        println!();
    }
    // Build cache entries carry no labels: a label filter keeps them all, as in Docker.
    if !prune_filters.has_labels() {
        let older = prune_filters.until().map(|u| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            (now - u).max(0.0) as u64
        });
        let b = engine.prune_build_cache(older, a.all).map_err(daemon)?;
        total += b.space_reclaimed;
    }
    println!("Total reclaimed space: {}", human_size(total as f64));
    Ok(())
}

#[derive(Debug, Args)]
pub struct SystemDfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        return human_size(part as f64);
    }
    format!(
        "{} ({}%)",
        human_size(part as f64),
        (part as f64 * 100.0 / total as f64) as u64
    )
}

pub fn system_df(engine: &mut Engine, a: SystemDfArgs) -> Result<()> {
    let du = engine.disk_usage().map_err(daemon)?;
    let rows: Vec<serde_json::Value> = du
        .totals()
        .iter()
        .map(|t| {
            // The docker CLI shows the reclaimable share of the size, except for the cache.
            let reclaimable = if t.kind == "Build Cache" {
                human_size(t.reclaimable as f64)
            } else {
                percent(t.reclaimable, t.size)
            };
            serde_json::json!({"Type": t.kind, "TotalCount": t.total_count.to_string(), "Active": t.active.to_string(), "Size": human_size(t.size as f64), "Reclaimable": reclaimable})
        })
        .collect();
    let (images, containers, cache_size) = (&du.images, &du.containers, du.build_cache_size);
    if !a.verbose {
        let format = a.format.clone().unwrap_or_else(|| {
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".into()
        });
        let header = |f: &str| match f {
            "TotalCount" => "TOTAL".to_string(),
            other => crate::output::default_header(other),
        };
        print!("{}", crate::output::render_rows(&format, &rows, &header)?);
        return Ok(());
    }
    let mut text = String::from("Images space usage:\n\n");
    let mut t = String::from(
        "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n",
    );
    for i in images {
        let (repo, tag) = i
            .repo_tags
            .first()
            .and_then(|t| t.rsplit_once(':'))
            .map(|(r, t)| (r.to_string(), t.to_string()))
            .unwrap_or(("<none>".into(), "<none>".into()));
        let short =
            i.id.trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect::<String>();
        let n = containers.iter().filter(|c| c.image_id == i.id).count();
        t.push_str(&format!(
            "{repo}\t{tag}\t{short}\t{}\t{}\t0B\t{}\t{n}\n",
            crate::output::since(i.created),
            human_size(i.size as f64),
            human_size(i.size as f64)
        ));
    }
    text.push_str(&crate::output::tabwrite(&t));
    text.push_str("\nContainers space usage:\n\n");
    let mut t =
        String::from("CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n");
    for c in containers {
        t.push_str(&format!(
            "{}\t{}\t\"{}\"\t{}\t{}\t{}\t{}\t{}\n",
            &c.id[..12],
            c.image,
            c.command.chars().take(20).collect::<String>(),
            c.mounts.len(),
            human_size(c.size_rw.unwrap_or(0) as f64),
            crate::output::since(c.created),
            c.status,
            c.names
                .first()
                .map(|n| n.trim_start_matches('/'))
                .unwrap_or("")
        ));
    }
    text.push_str(&crate::output::tabwrite(&t));
    text.push_str("\nLocal Volumes space usage:\n\n");
    let mut t = String::from("VOLUME NAME\tLINKS\tSIZE\n");
    for v in &du.volumes {
        t.push_str(&format!(
            "{}\t{}\t{}\n",
            v.volume.name,
            v.ref_count,
            human_size(v.size as f64)
        ));
    }
    text.push_str(&crate::output::tabwrite(&t));
    text.push_str("\nBuild cache usage: ");
    text.push_str(&human_size(cache_size as f64));
    text.push('\n');
    print!("{text}");
    Ok(())
}

pub fn container_prune(engine: &mut Engine, a: crate::cli::PruneArgs) -> Result<()> {
    if !a.force
        && !super::confirm(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
        )
    {
        return Ok(());
    }
    let report = engine.prune_containers(&a.filter).map_err(daemon)?;
    if !report.containers_deleted.is_empty() {
        println!("Deleted Containers:");
        for id in &report.containers_deleted {
            println!("{id}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(report.space_reclaimed as f64)
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct ExitedArgs {
    pub id: String,
}

/// The exit hook a container's monitor runs: `--rm` and the restart policy.
pub fn container_exited(engine: &mut Engine, a: ExitedArgs) -> Result<()> {
    engine.container_exited(&a.id)?;
    Ok(())
}
