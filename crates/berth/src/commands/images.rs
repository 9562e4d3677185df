//! `images`, `inspect`, `tag`, `rmi`, `image prune`, `history`, `import`, `load`, `save`.

use crate::cli::{
    HistoryArgs, ImagePruneArgs, ImagesArgs, ImportArgs, InspectArgs, LoadArgs, RmiArgs, SaveArgs,
    TagArgs,
};
use crate::output::{default_header, go_time, human_size, print_inspect, render_rows, since};
use crate::{exit_status, StatusError};
use anyhow::{bail, Context, Result};
use berth_engine::images::Reference;
use berth_engine::images::{short_id, ImageFilters, ImportOptions, ImportSource};
use berth_engine::types::{DeleteItem, LoadedImage};
use berth_engine::Engine;
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};

fn image_header(field: &str) -> String {
    match field {
        "ID" => "IMAGE ID".into(),
        other => default_header(other),
    }
}

pub fn list(engine: &Engine, args: ImagesArgs) -> Result<()> {
    let mut filter_args = args.filter.clone();
    if let Some(repo) = &args.repository {
        // `images busybox` lists every tag of that repository; `images busybox:1` that tag.
        let pattern = if repo.contains(':') && !repo.rsplit(':').next().unwrap_or("").contains('/')
        {
            repo.clone()
        } else {
            format!("{repo}:*")
        };
        filter_args.push(format!("reference={pattern}"));
    }
    let filters = ImageFilters::parse(&filter_args)?;
    let images = engine.list_images(args.all, &filters)?;
    struct Row<'a> {
        image: &'a berth_engine::types::ImageSummary,
        id: String,
        repo: String,
        tag: String,
        digest: String,
    }
    let mut rows: Vec<Row> = Vec::with_capacity(images.len());
    for image in &images {
        let id = if args.no_trunc {
            image.id.clone()
        } else {
            short_id(&image.id)
        };
        let digest_for = |repo: &str| -> String {
            image
                .repo_digests
                .iter()
                .find_map(|d| {
                    d.split_once('@')
                        .filter(|(r, _)| *r == repo)
                        .map(|(_, d)| d.to_string())
                })
                .unwrap_or_else(|| "<none>".into())
        };
        let before = rows.len();
        for tag in &image.repo_tags {
            let (repo, tag) = split_tag(tag);
            let digest = if args.digests {
                digest_for(&repo)
            } else {
                String::new()
            };
            rows.push(Row {
                image,
                id: id.clone(),
                repo,
                tag,
                digest,
            });
        }
        if rows.len() == before {
            for d in &image.repo_digests {
                let (repo, digest) = d.split_once('@').unwrap_or((d.as_str(), "<none>"));
                rows.push(Row {
                    image,
                    id: id.clone(),
                    repo: repo.into(),
                    tag: "<none>".into(),
                    digest: digest.into(),
                });
            }
        }
        if rows.len() == before {
            rows.push(Row {
                image,
                id,
                repo: "<none>".into(),
                tag: "<none>".into(),
                digest: "<none>".into(),
            });
        }
    }
    // The default table and -q skip the template engine: listing a thousand images is a hot
    // path (the figure is ≤ 10 ms) and the output is fixed.
    if args.quiet || matches!(args.format.as_deref(), None | Some("table")) {
        let mut text = String::with_capacity(rows.len() * 96);
        if !args.quiet {
            text.push_str(if args.digests {
                "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE\n"
            } else {
                "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n"
            });
        }
        for row in &rows {
            if args.quiet {
                text.push_str(&row.id);
                text.push('\n');
                continue;
            }
            let created = since(row.image.created);
            let size = human_size(row.image.size as f64);
            let mut cells: Vec<&str> = vec![&row.repo, &row.tag];
            if args.digests {
                cells.push(&row.digest);
            }
            cells.extend([row.id.as_str(), created.as_str(), size.as_str()]);
            text.push_str(&cells.join("\t"));
            text.push('\n');
        }
        let out = if args.quiet {
            text
        } else {
            crate::output::tabwrite(&text)
        };
        print!("{out}");
        return Ok(());
    }
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            let image = row.image;
            let digest = if row.digest.is_empty() {
                image
                    .repo_digests
                    .iter()
                    .find_map(|d| d.split_once('@').filter(|(r, _)| *r == row.repo).map(|(_, d)| d.to_string()))
                    .unwrap_or_else(|| "<none>".into())
            } else {
                row.digest
            };
            json!({
                "Containers": if image.containers < 0 { "N/A".to_string() } else { image.containers.to_string() },
                "CreatedAt": go_time(image.created),
                "CreatedSince": since(image.created),
                "Digest": digest,
                "ID": row.id,
                "Repository": row.repo,
                "SharedSize": "N/A",
                "Size": human_size(image.size as f64),
                "Tag": row.tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(image.size as f64),
            })
        })
        .collect();
    let format = if args.quiet {
        "{{.ID}}".to_string()
    } else {
        match args.format.as_deref() {
            Some("table") | None if args.digests => {
                "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
            }
            Some("table") | None => "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into(),
            Some(f) => f.to_string(),
        }
    };
    let text = render_rows(&format, &rows, &image_header)?;
    print!("{text}");
    Ok(())
}

/// `busybox:latest` → (`busybox`, `latest`); the tag is after the last colon that follows the
/// last slash (a registry port is not a tag).
fn split_tag(tag: &str) -> (String, String) {
    let slash = tag.rfind('/').map(|i| i + 1).unwrap_or(0);
    match tag[slash..].rfind(':') {
        Some(i) => (
            tag[..slash + i].to_string(),
            tag[slash + i + 1..].to_string(),
        ),
        None => (tag.to_string(), "<none>".to_string()),
    }
}

pub fn inspect(engine: &Engine, names: &[String], format: Option<&str>) -> Result<()> {
    crate::output::inspect_each(names, format, "Error", |n| engine.inspect_image(n))
}

/// `inspect`: containers first, then images, like Docker; `--type` narrows it.
pub fn inspect_any(engine: &mut Engine, args: InspectArgs) -> Result<()> {
    match args.kind.as_deref() {
        Some("image") => return inspect(engine, &args.names, args.format.as_deref()),
        None | Some("container") => {}
        Some(other) => bail!("\"{other}\" is not a valid value for --type"),
    }
    let mut values = Vec::new();
    let mut failed = false;
    for name in &args.names {
        match engine.inspect_container(name, args.size) {
            Ok(v) => values.push(v),
            Err(e) if e.is_not_found() && args.kind.is_none() => match engine.inspect_image(name) {
                Ok(i) => values.push(serde_json::to_value(i)?),
                Err(_) => {
                    eprintln!("Error: No such object: {name}");
                    failed = true;
                }
            },
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    if !values.is_empty() || !failed || crate::output::inspect_prints_json(args.format.as_deref()) {
        print_inspect(&values, args.format.as_deref())?;
    }
    if failed {
        return Err(exit_status(1));
    }
    Ok(())
}

pub fn tag(engine: &mut Engine, args: TagArgs) -> Result<()> {
    engine.tag_image(&args.source, &args.target)?;
    Ok(())
}

fn print_delete_items(items: &[DeleteItem], lower: bool) {
    for item in items {
        match (item, lower) {
            (DeleteItem::Untagged(n), false) => println!("Untagged: {n}"),
            (DeleteItem::Deleted(n), false) => println!("Deleted: {n}"),
            (DeleteItem::Untagged(n), true) => println!("untagged: {n}"),
            (DeleteItem::Deleted(n), true) => println!("deleted: {n}"),
        }
    }
}

pub fn remove(engine: &mut Engine, args: RmiArgs) -> Result<()> {
    let mut failed = false;
    for name in &args.images {
        match engine.remove_image(name, args.force) {
            Ok(items) => print_delete_items(&items, false),
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

pub fn prune(engine: &mut Engine, args: ImagePruneArgs) -> Result<()> {
    let filters = ImageFilters::parse(&args.filter)?;
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
        } else {
            "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
        };
        if !super::confirm(warning) {
            return Ok(());
        }
    }
    let report = engine.prune_images(args.all, &filters)?;
    if !report.images_deleted.is_empty() {
        println!("Deleted Images:");
        print_delete_items(&report.images_deleted, true);
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(report.space_reclaimed as f64)
    );
    Ok(())
}

pub fn history(engine: &Engine, args: HistoryArgs) -> Result<()> {
    let items = engine.image_history(&args.image)?;
    let rows: Vec<Value> = items
        .iter()
        .map(|h| {
            let id = if h.id == "<missing>" || args.no_trunc { h.id.clone() } else { short_id(&h.id) };
            let created_by = if args.no_trunc || h.created_by.chars().count() <= 45 {
                h.created_by.clone()
            } else {
                let mut s: String = h.created_by.chars().take(44).collect();
                s.push('…');
                s
            };
            json!({
                "Comment": h.comment,
                "CreatedAt": if h.created > 0 { chrono::DateTime::from_timestamp(h.created, 0).map(|t| t.to_rfc3339()).unwrap_or_default() } else { String::new() },
                "CreatedBy": created_by,
                "CreatedSince": if args.human { since(h.created) } else { h.created.to_string() },
                "ID": id,
                "Size": if args.human { human_size(h.size as f64) } else { h.size.to_string() },
            })
        })
        .collect();
    let format = if args.quiet {
        "{{.ID}}".to_string()
    } else {
        match args.format.as_deref() {
            Some("table") | None => {
                "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into()
            }
            Some(f) => f.to_string(),
        }
    };
    let header = |f: &str| match f {
        "ID" => "IMAGE".to_string(),
        "CreatedBy" => "CREATED BY".to_string(),
        other => default_header(other),
    };
    print!("{}", render_rows(&format, &rows, &header)?);
    Ok(())
}

pub fn import(engine: &mut Engine, args: ImportArgs) -> Result<()> {
    if let Some(p) = &args.platform {
        let host = berth_engine::images::host_platform();
        if p != &format!("linux/{}", host.architecture) && p != "linux" {
            bail!(
                "import --platform {p}: this host imports only linux/{} images",
                host.architecture
            );
        }
    }
    let source = ImportSource::from_arg(&args.source);
    let id = engine.import_image(
        &source,
        &ImportOptions {
            reference: args.reference.clone(),
            changes: args.change.clone(),
            message: args.message.clone(),
            source_date_epoch: crate::commands::build::source_date_epoch_env()?,
        },
    )?;
    println!("{id}");
    Ok(())
}

pub fn load(engine: &mut Engine, args: LoadArgs) -> Result<()> {
    let loaded = match &args.input {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
            engine.load_images(file)?
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(StatusError {
                    code: 1,
                    message: "requested load from stdin, but stdin is empty: use -i FILE or pipe an archive".into(),
                }
                .into());
            }
            engine.load_images(std::io::stdin().lock())?
        }
    };
    // `-q` only silences progress (berth prints none): scripts parse these lines, as Docker's.
    let _ = args.quiet;
    for image in loaded {
        match image {
            LoadedImage::Tag(t) => println!("Loaded image: {t}"),
            LoadedImage::Id(id) => println!("Loaded image ID: {id}"),
        }
    }
    Ok(())
}

pub fn save(engine: &Engine, args: SaveArgs) -> Result<()> {
    for name in &args.images {
        // Reject malformed names before creating any file.
        if Reference::parse(name).is_err() && engine.resolve_image(name).is_err() {
            engine.resolve_image(name)?;
        }
    }
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed, so a failed save leaves no partial file.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::Builder::new()
                .prefix(".berth-save-")
                .tempfile_in(dir)
                .with_context(|| {
                    format!("failed to save image: creating a file in {}", dir.display())
                })?;
            {
                let writer = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
                engine.save_images(&args.images, writer)?;
            }
            tmp.as_file().sync_all().context("syncing the archive")?;
            tmp.persist(path)
                .map_err(|e| e.error)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            engine.save_images(&args.images, &mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn splits_tags_after_registry_ports() {
        assert_eq!(
            split_tag("busybox:latest"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_tag("localhost:5000/x:1"),
            ("localhost:5000/x".into(), "1".into())
        );
        assert_eq!(
            split_tag("localhost:5000/x"),
            ("localhost:5000/x".into(), "<none>".into())
        );
    }
}
