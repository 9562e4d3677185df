//! # berth-build
//!
//! The builder behind `berth build`: a parsed Dockerfile (berth-dockerfile) becomes an image in
//! the store.
//!
//! - Stages: FROM a local image (pulled through the [`Host`] when missing or with `--pull`),
//!   `scratch` or an earlier stage; only the stages the target needs are built (`--target`).
//! - RUN runs as a real container (berth-runtime) on an overlay of the parent's layers and a
//!   fresh upper dir, which becomes the step's layer ([`run`]). Network: its own namespace on
//!   the default bridge with outbound NAT, as BuildKit (the host's only with `build --network
//!   host`; `--network=none` and `RUN --network=none` give an empty namespace).
//! - COPY/ADD with Docker's path rules ([`copy`]), sources from the context (`.dockerignore`
//!   honoured, symlinks never followed out of it — [`context`]), another stage or an image;
//!   ADD extracts local archives and downloads URLs (`--checksum`).
//! - Cache: every layer step's key is a digest of its parent's key, `SOURCE_DATE_EPOCH` and its
//!   real inputs (COPY/ADD: content and mode of the files, their mtimes only with an epoch; RUN:
//!   the command, environment, user, workdir, network and mounts). Keys live in the store's `build_cache` table, which keeps the layers
//!   they name alive; a cached rebuild only hashes the context and re-tags, and with
//!   [`BuildOptions::keep_hashes`] it reads only the files whose stamps changed (`hashes`).
//! - Layers are deterministic ([`layer`]); with `SOURCE_DATE_EPOCH` every timestamp (layer
//!   mtimes, history, `created`) is clamped to it and it is exported into RUN steps, so the
//!   same inputs give the same image ID on any machine. Without one the layers get the base
//!   image's time and only `created`/history get the git HEAD's commit time (`Epoch`), so a
//!   new commit changes the config, not the cache keys.
//! - Crash safety: the whole build is one store operation; each step's layer and cache row are
//!   committed together, the image last. An interrupted build leaves no image and a consistent
//!   cache.

pub mod context;
pub mod copy;
mod finish;
mod git;
mod hashes;
pub mod layer;
pub mod overlay;
pub mod progress;
pub mod run;

pub use finish::{Attachment, Finish, Finished};
pub use progress::{Progress, ProgressMode, Step};

use berth_dockerfile::instructions::{Copy, Healthcheck, HealthcheckTest, Run};
use berth_dockerfile::scope::{platform_args, BuildInputs, GlobalScope, Platform, StageScope};
use berth_dockerfile::{
    parse_dockerfile, Dockerfile, Instruction, InstructionKind, Lexer, MountType, ShellOrExec,
    Stage,
};
use berth_oci::image::{ContainerConfig, Descriptor, History, ImageConfig, Manifest, RootFs};
use berth_oci::reference::Reference;
use berth_oci::{media, Digest};
use berth_runtime::MountSpec;
use berth_store::{BlobCommit, ImageCommit, LayerCommit, LayerRow, Op, Store, StoreError};
use context::{Context, Entry, Kind};
use copy::{Copier, CopySpec, SourceItem};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Why a build failed. Each variant carries the message users see; [`BuildError::class`]
/// says which kind of failure it is, for front ends that map kinds to codes.
#[derive(Debug)]
pub enum BuildError {
    /// Anything else: I/O, the store, a stored record that does not parse. The message says
    /// what went wrong and what to do.
    Failed(String),
    /// The request or the Dockerfile is wrong: a parse error, a bad flag value, an option
    /// that needs a value it lacks, an unknown target stage.
    Invalid(String),
    /// Something the Dockerfile names does not exist: a COPY source, a secret.
    NotFound(String),
    /// A RUN step exited with a non-zero code (`exit_code`); the message is Docker's "The
    /// command '…' returned a non-zero code: N" with the step's last output.
    StepFailed { message: String, exit_code: i32 },
    /// Ctrl-C (the cancel flag): nothing half-written was kept.
    Interrupted,
}

/// The kinds of [`BuildError`], for mapping to exit or status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildErrorClass {
    Invalid,
    NotFound,
    StepFailed,
    Canceled,
    Internal,
}

impl BuildError {
    pub fn io(context: String, e: std::io::Error) -> Self {
        BuildError::Failed(format!("{context}: {e}"))
    }

    pub fn class(&self) -> BuildErrorClass {
        match self {
            BuildError::Failed(_) => BuildErrorClass::Internal,
            BuildError::Invalid(_) => BuildErrorClass::Invalid,
            BuildError::NotFound(_) => BuildErrorClass::NotFound,
            BuildError::StepFailed { .. } => BuildErrorClass::StepFailed,
            BuildError::Interrupted => BuildErrorClass::Canceled,
        }
    }

    /// The message of a failure (None for an interruption).
    pub fn message(&self) -> Option<&str> {
        match self {
            BuildError::Failed(m) | BuildError::Invalid(m) | BuildError::NotFound(m) => Some(m),
            BuildError::StepFailed { message, .. } => Some(message),
            BuildError::Interrupted => None,
        }
    }

    /// The same error with its message rewritten (a prefix naming the line), class kept.
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            BuildError::Failed(m) => BuildError::Failed(f(m)),
            BuildError::Invalid(m) => BuildError::Invalid(f(m)),
            BuildError::NotFound(m) => BuildError::NotFound(f(m)),
            BuildError::StepFailed { message, exit_code } => BuildError::StepFailed {
                message: f(message),
                exit_code,
            },
            BuildError::Interrupted => BuildError::Interrupted,
        }
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.message() {
            Some(m) => f.write_str(m),
            None => f.write_str("build interrupted: no image was written"),
        }
    }
}

impl std::error::Error for BuildError {}

impl From<StoreError> for BuildError {
    fn from(e: StoreError) -> Self {
        BuildError::Failed(e.to_string())
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, BuildError> {
    Err(BuildError::Failed(msg.into()))
}

/// Something the Dockerfile names that does not exist.
fn not_found<T>(msg: impl Into<String>) -> Result<T, BuildError> {
    Err(BuildError::NotFound(msg.into()))
}

/// A failure of the request or the Dockerfile itself.
fn invalid<T>(msg: impl Into<String>) -> Result<T, BuildError> {
    Err(BuildError::Invalid(msg.into()))
}

/// Hex SHA-256 of a string.
pub fn sha(s: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// A base image as the host resolved it.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// `sha256:…`
    pub id: String,
    pub config: ImageConfig,
    /// Bottom first.
    pub layers: Vec<LayerRow>,
}

/// The network of one RUN step on the default bridge: its own namespace, an address, outbound
/// NAT; the files the step sees as `/etc/hosts` and `/etc/resolv.conf`.
#[derive(Debug, Clone)]
pub struct StepNetwork {
    pub netns: PathBuf,
    pub hosts: String,
    pub resolv_conf: String,
}

/// What the builder needs from the engine.
pub trait Host {
    fn store(&mut self) -> &mut Store;
    /// Finds `name` locally (pulling when it is missing, or always with `pull`).
    fn resolve_image(&mut self, name: &str, pull: bool) -> Result<BaseImage, String>;
    /// Connects a new namespace for the RUN step `id` (64 hex digits) to the default bridge,
    /// the way `run` connects a container. Held until [`Host::step_network_down`]; a build
    /// killed meanwhile leaves what the next network cleanup of any command releases.
    fn step_network_up(&mut self, id: &str) -> Result<StepNetwork, String>;
    /// Releases what `step_network_up` made (idempotent).
    fn step_network_down(&mut self, id: &str);
    /// Looks at the finished image before it is written: warnings for the user, records to
    /// store with it; an error stops the build without writing the image.
    fn finish(&mut self, _image: &Finished) -> Result<Finish, BuildError> {
        Ok(Finish::default())
    }
}

/// `berth build`'s options.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The context directory; `None` for a build without context.
    pub context: Option<PathBuf>,
    /// The Dockerfile's path (default: `<context>/Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile's text when it came from stdin.
    pub dockerfile_text: Option<String>,
    /// Names to tag the image with, as the user gave them.
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// `default`/`host` (the host's network) or `none`.
    pub network: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `--secret id=…,src=…`.
    pub secrets: BTreeMap<String, PathBuf>,
    pub platform: Option<String>,
    /// `SOURCE_DATE_EPOCH`: stamps `created` and the history, clamps every mtime of the new
    /// layers, and is exported into RUN steps. Without it (and without a `SOURCE_DATE_EPOCH`
    /// build arg) the build picks one by the default rule ([`default_epoch`]).
    pub source_date_epoch: Option<i64>,
    /// `--timestamp now`: no epoch at all — `created`, the history and new files' mtimes come
    /// from the clock, as in Docker, and no two builds give the same image ID.
    pub timestamp_now: bool,
    /// Look for the git work tree in the directories above the context too (the CLI, whose
    /// context is a directory of the user's checkout). Off for a context unpacked from a tar
    /// (the Engine API), whose parents are the engine's own.
    pub git_above_context: bool,
    /// Keep the context files' digests between builds (`$ROOT/build-hashes/`), so a rebuild
    /// reads only the files that changed: for a context directory that persists (the CLI's),
    /// not one unpacked afresh for each build (the Engine API's).
    pub keep_hashes: bool,
    /// `RUN --mount=type=cache` directories start empty and go with the build, as on a fresh
    /// root (`--check-reproducible`'s second build: what an earlier build left in a cache
    /// mount must not make two builds look alike, or different).
    pub fresh_cache_mounts: bool,
    /// Runtime state directory (`$RUNROOT`).
    pub runroot: PathBuf,
    /// The `berth-monitor` binary for RUN containers (default: the runtime's search).
    pub monitor: Option<PathBuf>,
    /// Set (e.g. by a SIGINT handler) to stop the build.
    pub cancel: Option<Arc<AtomicBool>>,
    /// `--strict`: the host's checks of the finished image ([`Host::finish`]) fail the build
    /// instead of warning.
    pub strict: bool,
}

/// The built image.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    pub id: Digest,
    /// Normalised names it was tagged with.
    pub tags: Vec<String>,
    /// What the host's check of the finished image found ([`Host::finish`]).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
struct LayerInfo {
    chain_id: Digest,
    diff_id: Digest,
    size: u64,
    blob: Option<(Digest, String, u64)>,
}

impl LayerInfo {
    fn from_row(r: &LayerRow) -> Result<LayerInfo, BuildError> {
        let parse = |s: &str| -> Result<Digest, BuildError> {
            s.parse()
                .map_err(|_| BuildError::Failed(format!("corrupt layer id {s}")))
        };
        let blob = match (&r.blob_digest, &r.blob_media_type, r.blob_size) {
            (Some(d), Some(m), Some(s)) => Some((parse(d)?, m.clone(), s)),
            _ => None,
        };
        Ok(LayerInfo {
            chain_id: parse(&r.chain_id)?,
            diff_id: parse(&r.diff_id)?,
            size: r.size,
            blob,
        })
    }
}

#[derive(Clone)]
struct State {
    config: ImageConfig,
    layers: Vec<LayerInfo>,
    key: String,
    created: String,
    scope: StageScope,
    cmd_set: bool,
    /// The stage's ARG names in declaration order (BuildKit records their values in RUN's
    /// history: `RUN |2 A=1 B=2 /bin/sh -c …`).
    arg_names: Vec<String>,
    /// The image the stage (or the stage it builds on) starts from: reference and image ID.
    base: Option<(String, String)>,
}

impl State {
    fn cc(&mut self) -> &mut ContainerConfig {
        self.config.config.get_or_insert_with(Default::default)
    }
    fn workdir(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }
    fn user(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.user.clone())
            .unwrap_or_default()
    }
    fn shell(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }
    fn top(&self) -> Option<&Digest> {
        self.layers.last().map(|l| &l.chain_id)
    }
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Joins a (possibly relative) container path onto `base` and cleans it; keeps a trailing `/`.
fn join_container(base: &str, p: &str) -> String {
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{p}", base.trim_end_matches('/'))
    };
    let mut out = berth_runtime::paths::clean(&joined);
    if (p.ends_with('/') || p.ends_with("/.") || p == ".") && out != "/" {
        out.push('/');
    }
    out
}

struct Builder<'a> {
    host: &'a mut dyn Host,
    opts: &'a BuildOptions,
    progress: &'a mut Progress,
    op: Op,
    ctx: Context,
    ctx_loaded: bool,
    df: Dockerfile,
    lex: Lexer,
    global: GlobalScope,
    inputs: BuildInputs,
    built: HashMap<usize, State>,
    cancel: Arc<AtomicBool>,
    /// [`Epoch::clamp`]: mtimes, RUN's `SOURCE_DATE_EPOCH`, cache keys.
    sde: Option<i64>,
    /// [`Epoch::stamp`]: `created` and the history.
    stamp: Option<i64>,
    /// Base images already resolved (for the epoch), by the name FROM gave.
    bases: HashMap<String, BaseImage>,
    layer_root: PathBuf,
    cache_mounts: PathBuf,
    progress_step: Option<Step>,
    dockerfile_text: String,
    dockerfile_name: String,
}

/// The earlier stage a FROM names, if it is one (by name or index): a FROM can only build
/// on a stage above it (a later name is an image, as in BuildKit).
fn stage_ref(df: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    df.stages[..before]
        .iter()
        .rev()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(|s| s.index)
        .or_else(|| name.parse::<usize>().ok().filter(|&i| i < before))
}

/// The build's two uses of an epoch. With `SOURCE_DATE_EPOCH` (the option or the build arg)
/// both are it, as in BuildKit; with `--timestamp now` both are none (the clock). With the
/// default rule ([`default_epoch`]) they differ when the context is in a git work tree:
/// HEAD's commit time only stamps, so a new commit does not rerun every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Epoch {
    /// Clamps every mtime of the new layers, is exported into RUN steps (and so is a build
    /// arg) and is part of every layer step's cache key: what the layers' bytes depend on.
    clamp: Option<i64>,
    /// Stamps the config's `created` and the history: the image's date, in the config only.
    stamp: Option<i64>,
}

/// The build's epoch: `SOURCE_DATE_EPOCH` (the option, else the build arg, as BuildKit),
/// none with `--timestamp now`, else [`default_epoch`].
fn epoch(
    host: &mut dyn Host,
    opts: &BuildOptions,
    df: &Dockerfile,
    global: &GlobalScope,
    lex: &Lexer,
    target: usize,
    bases: &mut HashMap<String, BaseImage>,
) -> Result<Epoch, BuildError> {
    let both = |e: Option<i64>| Epoch { clamp: e, stamp: e };
    if opts.timestamp_now {
        return Ok(both(None));
    }
    if let Some(e) = opts.source_date_epoch {
        return Ok(both(Some(e)));
    }
    if let Some(v) = opts.build_args.get("SOURCE_DATE_EPOCH") {
        return v.trim().parse().map(|e| both(Some(e))).map_err(|_| {
            BuildError::Invalid(format!(
                "--build-arg SOURCE_DATE_EPOCH={v:?} is not a number of seconds since 1970"
            ))
        });
    }
    default_epoch(host, opts, df, global, lex, target, bases)
}

/// The epoch of a build that names none — reproducible by default, never the clock:
///
/// - the layers are clamped to (and RUN steps see as `SOURCE_DATE_EPOCH`) the `created` time
///   of the image the target stage starts from (following FROM through earlier stages) — 0
///   (1970-01-01) for FROM scratch or a base without one. It does not change from commit to
///   commit, so neither do the cache keys: a commit that touches one file reruns only the
///   steps that read it (an early `pip install` stays cached);
/// - the config's `created` and history are stamped with the commit time of HEAD when the
///   context is in a git work tree (the context directory itself, or a directory above it
///   with [`BuildOptions::git_above_context`]), else with the base's time as well. A dirty
///   tree still gets HEAD's time; a repository without commits falls through.
fn default_epoch(
    host: &mut dyn Host,
    opts: &BuildOptions,
    df: &Dockerfile,
    global: &GlobalScope,
    lex: &Lexer,
    target: usize,
    bases: &mut HashMap<String, BaseImage>,
) -> Result<Epoch, BuildError> {
    let base = base_created(host, opts, df, global, lex, target, bases)?;
    let mut head = None;
    if let Some(ctx) = &opts.context {
        head = git::head_commit_time(ctx, opts.git_above_context).map_err(|e| {
            BuildError::Failed(format!(
                "reading the commit time of the context's git HEAD (the default SOURCE_DATE_EPOCH): {e} — repair the repository, or set SOURCE_DATE_EPOCH, or build with --timestamp now"
            ))
        })?;
    }
    Ok(Epoch {
        clamp: Some(base),
        stamp: Some(head.unwrap_or(base)),
    })
}

/// The `created` time, in seconds, of the image the target stage starts from (following FROM
/// through earlier stages); 0 for FROM scratch or a base without one.
fn base_created(
    host: &mut dyn Host,
    opts: &BuildOptions,
    df: &Dockerfile,
    global: &GlobalScope,
    lex: &Lexer,
    target: usize,
    bases: &mut HashMap<String, BaseImage>,
) -> Result<i64, BuildError> {
    let mut stage = &df.stages[target];
    loop {
        let (base, _) = global
            .expand_from(stage, lex)
            .map_err(|e| BuildError::Invalid(format!("FROM: {e}")))?;
        if base.eq_ignore_ascii_case("scratch") {
            return Ok(0);
        }
        if let Some(i) = stage_ref(df, &base, stage.index) {
            stage = &df.stages[i];
            continue;
        }
        let img = host
            .resolve_image(&base, opts.pull)
            .map_err(BuildError::Failed)?;
        let created = img
            .config
            .created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.timestamp())
            .unwrap_or(0);
        bases.insert(base, img);
        return Ok(created);
    }
}

/// Builds the image the options describe.
pub fn build(
    host: &mut dyn Host,
    opts: &BuildOptions,
    progress: &mut Progress,
) -> Result<BuildOutput, BuildError> {
    // The Dockerfile.
    let s = progress.begin("[internal] load build definition from Dockerfile");
    let (text, df_path) = match (&opts.dockerfile_text, &opts.dockerfile, &opts.context) {
        (Some(t), _, _) => (t.clone(), None),
        (None, Some(p), _) => (
            std::fs::read_to_string(p)
                .map_err(|e| BuildError::Failed(format!("failed to read {}: {e}", p.display())))?,
            Some(p.clone()),
        ),
        (None, None, Some(c)) => {
            let p = c.join("Dockerfile");
            let t = std::fs::read_to_string(&p).map_err(|e| {
                BuildError::NotFound(format!(
                    "failed to read dockerfile: open {}: {e} — add a Dockerfile to the context or name one with -f",
                    p.display()
                ))
            })?;
            (t, Some(p))
        }
        (None, None, None) => return invalid("no Dockerfile and no context given"),
    };
    progress.detail(s, &format!("transferring dockerfile: {}B done", text.len()));
    let name = df_path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "Dockerfile".into());
    let df = match parse_dockerfile(&text) {
        Ok(df) => df,
        Err(e) => {
            progress.error(s, &e.summary());
            return invalid(format!("failed to parse {name}: {e}"));
        }
    };
    progress.done(s);

    // .dockerignore: `<Dockerfile>.dockerignore` beside the Dockerfile first.
    let mut ignore = berth_dockerfile::ignore::DockerIgnore::default();
    let mut ignore_file = None;
    if let Some(ctx) = &opts.context {
        let s = progress.begin("[internal] load .dockerignore");
        let mut candidates = Vec::new();
        if let Some(p) = &df_path {
            let mut n = p.as_os_str().to_owned();
            n.push(".dockerignore");
            candidates.push(PathBuf::from(n));
        }
        candidates.push(ctx.join(".dockerignore"));
        let mut size = 0;
        for c in candidates {
            if let Ok(t) = std::fs::read_to_string(&c) {
                size = t.len();
                ignore = berth_dockerfile::ignore::DockerIgnore::parse(&t);
                ignore_file = Some(c.display().to_string());
                break;
            }
        }
        progress.detail(
            s,
            &format!(
                "transferring context: {} done",
                progress::human_size(size as u64)
            ),
        );
        progress.done(s);
    }

    let target_platform = match &opts.platform {
        Some(p) => Platform::parse(p).ok_or_else(|| {
            BuildError::Invalid(format!(
                "invalid platform {p:?}: expected os/arch[/variant]"
            ))
        })?,
        None => Platform::host(),
    };
    if target_platform.arch != Platform::host().arch {
        return invalid(format!(
            "building for {target_platform} is not supported on this {} machine (no emulation): drop --platform or use {}",
            Platform::host(),
            Platform::host()
        ));
    }
    let mut inputs = BuildInputs {
        build_args: opts.build_args.clone(),
        builtins: platform_args(&Platform::host(), &target_platform),
    };
    let lex = df.lexer();
    let mut global = GlobalScope::new(&df.meta_args, &inputs, &lex)
        .map_err(|e| BuildError::Invalid(format!("failed to parse {name}: {e}")))?;

    let target = match &opts.target {
        Some(t) => df.stage(t).map(|s| s.index).ok_or_else(|| {
            let names: Vec<String> = df.stages.iter().filter_map(|s| s.name.clone()).collect();
            BuildError::Invalid(format!(
                "target stage {t:?} could not be found — the stages are: {}",
                if names.is_empty() {
                    "(none named)".to_string()
                } else {
                    names.join(", ")
                }
            ))
        })?,
        None => df.stages.len() - 1,
    };

    // The epoch, and with it SOURCE_DATE_EPOCH as a build arg (BuildKit's): the global scope
    // is made again so an `ARG SOURCE_DATE_EPOCH` before FROM sees it.
    let mut bases = HashMap::new();
    let epoch = epoch(host, opts, &df, &global, &lex, target, &mut bases)?;
    if let Some(e) = epoch.clamp {
        if !inputs.build_args.contains_key("SOURCE_DATE_EPOCH") {
            inputs
                .build_args
                .insert("SOURCE_DATE_EPOCH".into(), e.to_string());
            global = GlobalScope::new(&df.meta_args, &inputs, &lex)
                .map_err(|e| BuildError::Invalid(format!("failed to parse {name}: {e}")))?;
        }
    }

    let mut op = host.store().begin_op()?;
    let root = host.store().root().to_path_buf();
    let cache_mounts = if opts.fresh_cache_mounts {
        // In the operation's staging area, removed with it.
        op.scratch_path("cache-mounts")
    } else {
        root.join("build-mounts")
    };
    let mut b = Builder {
        host,
        opts,
        progress,
        op,
        ctx: Context::new(
            opts.context
                .as_ref()
                .map(|c| c.canonicalize().unwrap_or(c.clone())),
            ignore,
            ignore_file,
        ),
        ctx_loaded: false,
        df,
        lex,
        global,
        inputs,
        built: HashMap::new(),
        cancel: opts.cancel.clone().unwrap_or_default(),
        sde: epoch.clamp,
        stamp: epoch.stamp,
        bases,
        layer_root: root.join("layers"),
        cache_mounts,
        progress_step: None,
        dockerfile_text: text,
        dockerfile_name: df_path
            .as_ref()
            .and_then(|p| {
                let ctx = opts.context.as_ref()?;
                p.strip_prefix(ctx).ok().map(|r| r.display().to_string())
            })
            .unwrap_or_else(|| name.clone()),
    };
    if opts.keep_hashes {
        if let Some(ctx) = b.ctx.root.clone() {
            b.ctx
                .set_hash_cache(hashes::HashCache::open(&root.join("build-hashes"), &ctx));
        }
    }
    let order = b.plan(target)?;
    let stages: Vec<Stage> = b.df.stages.clone();
    for &i in &order {
        let stage = &stages[i];
        b.check_cancel()?;
        let st = b.build_stage(stage, stages.len() > 1)?;
        b.built.insert(stage.index, st);
    }
    let st = b.built.remove(&target).expect("target built");
    let out = b.export(st)?;
    // Only a cache: one that cannot be written costs the next build a re-read, nothing else.
    let _ = b.ctx.save_hashes();
    b.op.finish();
    Ok(out)
}

impl Builder<'_> {
    fn check_cancel(&self) -> Result<(), BuildError> {
        if self.cancel.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(BuildError::Interrupted);
        }
        Ok(())
    }

    /// The earlier stage a FROM names, if it is one (by name or index): a FROM can only build
    /// on a stage above it (a later name is an image, as in BuildKit).
    fn stage_ref(&self, name: &str, before: usize) -> Option<usize> {
        stage_ref(&self.df, name, before)
    }

    /// The stage a `COPY --from`/`RUN --mount=from=` names: any stage of the file, by name
    /// (the last one so named) or by index, as in BuildKit. `None`: an image reference.
    fn source_stage(&self, name: &str) -> Result<Option<usize>, BuildError> {
        let lower = name.to_ascii_lowercase();
        if let Some(s) = self
            .df
            .stages
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Ok(Some(s.index));
        }
        match name.parse::<i64>() {
            Ok(i) if i >= 0 && (i as usize) < self.df.stages.len() => Ok(Some(i as usize)),
            Ok(i) => invalid(format!(
                "invalid stage index {i}: this Dockerfile has stages 0 to {} — name a stage or an image",
                self.df.stages.len() - 1
            )),
            Err(_) => Ok(None),
        }
    }

    /// The stages each stage needs: its FROM stage and its `--from` stages.
    fn stage_deps(&self) -> Result<Vec<Vec<(usize, String)>>, BuildError> {
        let mut all = Vec::new();
        for stage in &self.df.stages {
            let i = stage.index;
            let mut deps = Vec::new();
            let base = self
                .global
                .expand_from(stage, &self.lex)
                .map(|b| b.0)
                .unwrap_or_else(|_| stage.base.clone());
            if let Some(d) = self.stage_ref(&base, i) {
                deps.push((d, stage.original.trim().to_string()));
            }
            for inst in &stage.instructions {
                let froms: Vec<String> = match &inst.kind {
                    InstructionKind::Copy(c) | InstructionKind::Add(c) => {
                        c.from.iter().cloned().collect()
                    }
                    InstructionKind::Run(r) => {
                        r.mounts.iter().filter_map(|m| m.from.clone()).collect()
                    }
                    _ => Vec::new(),
                };
                for f in froms {
                    let f = self.lex.process_word(&f, &self.global).unwrap_or(f.clone());
                    let at = || {
                        let text = inst.original.lines().next().unwrap_or_default().trim();
                        format!("line {}: {text}", inst.start_line)
                    };
                    if let Some(d) = self
                        .source_stage(&f)
                        .map_err(|e| e.map_message(|m| format!("{}: {m}", at())))?
                    {
                        deps.push((d, at()));
                    }
                }
            }
            all.push(deps);
        }
        Ok(all)
    }

    /// The stages to build for `target`, each after the stages it needs. A cycle of `--from`
    /// references (a stage copying from itself, a ← b ← a) is refused with BuildKit's message,
    /// naming the first stage in the file that is part of one, whether or not the target needs
    /// it (as BuildKit checks every stage).
    fn plan(&self, target: usize) -> Result<Vec<usize>, BuildError> {
        let deps = self.stage_deps()?;
        let stage_name = |i: usize| {
            self.df.stages[i]
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{i}"))
        };
        // Depth-first, in file order: 0 unvisited, 1 on the current path, 2 done.
        let mut mark = vec![0u8; deps.len()];
        for start in 0..deps.len() {
            if mark[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            mark[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some((d, at)) = deps[node].get(*next) {
                    *next += 1;
                    match mark[*d] {
                        0 => {
                            mark[*d] = 1;
                            stack.push((*d, 0));
                        }
                        1 => {
                            return invalid(format!(
                                "circular dependency detected on stage: {} ({at} needs a stage that needs it — copy from an earlier stage or an image instead)",
                                stage_name(start)
                            ));
                        }
                        _ => {}
                    }
                } else {
                    mark[node] = 2;
                    stack.pop();
                }
            }
        }
        // Post-order from the target: every stage after those it needs.
        let mut order = Vec::new();
        let mut done = vec![false; deps.len()];
        fn visit(
            i: usize,
            deps: &[Vec<(usize, String)>],
            done: &mut [bool],
            order: &mut Vec<usize>,
        ) {
            if done[i] {
                return;
            }
            done[i] = true;
            let mut ds: Vec<usize> = deps[i].iter().map(|d| d.0).collect();
            ds.sort_unstable();
            for d in ds {
                visit(d, deps, done, order);
            }
            order.push(i);
        }
        visit(target, &deps, &mut done, &mut order);
        Ok(order)
    }

    fn label(&self, stage: &Stage, multi: bool, n: usize, total: usize, text: &str) -> String {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if multi {
            let name = stage
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{}", stage.index));
            format!("[{name} {n}/{total}] {text}")
        } else {
            format!("[{n}/{total}] {text}")
        }
    }

    fn resolve_image(&mut self, name: &str) -> Result<BaseImage, BuildError> {
        if let Some(img) = self.bases.get(name) {
            return Ok(img.clone());
        }
        let pull = self.opts.pull;
        self.host
            .resolve_image(name, pull)
            .map_err(BuildError::Failed)
    }

    /// The image a `--from` that names no stage means: a reference (normalised, so the store
    /// never matches it as a short ID prefix of some unrelated image), or a full image ID.
    fn resolve_from_image(&mut self, name: &str) -> Result<BaseImage, BuildError> {
        let full_id = name
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let name = if full_id {
            name.to_string()
        } else {
            Reference::parse_with_default_tag(name)
                .map(|r| r.to_string())
                .map_err(|e| {
                    BuildError::Invalid(format!(
                        "--from={name}: no stage is named {name:?} and it is no valid image reference ({e}) — name a stage of this Dockerfile or an image"
                    ))
                })?
        };
        self.resolve_image(&name)
    }

    fn build_stage(&mut self, stage: &Stage, multi: bool) -> Result<State, BuildError> {
        let (base, _platform) = self
            .global
            .expand_from(stage, &self.lex)
            .map_err(|e| BuildError::Invalid(format!("FROM: {e}")))?;
        let total = 1 + stage
            .instructions
            .iter()
            .filter(|i| {
                matches!(
                    i.kind,
                    InstructionKind::Run(_)
                        | InstructionKind::Copy(_)
                        | InstructionKind::Add(_)
                        | InstructionKind::Workdir(_)
                )
            })
            .count();
        let mut n = 1;
        let mut total = total;
        let mut st = if base.eq_ignore_ascii_case("scratch") {
            let p = berth_oci::image::host_platform();
            State {
                config: ImageConfig {
                    architecture: p.architecture,
                    os: p.os,
                    variant: p.variant,
                    rootfs: RootFs {
                        kind: "layers".into(),
                        diff_ids: Vec::new(),
                    },
                    ..Default::default()
                },
                layers: Vec::new(),
                key: sha("scratch"),
                created: self.stamp.map(rfc3339).unwrap_or_default(),
                scope: StageScope::new(&[]),
                cmd_set: false,
                arg_names: Vec::new(),
                base: None,
            }
        } else if let Some(i) = self.stage_ref(&base, stage.index) {
            let mut st = self
                .built
                .get(&i)
                .cloned()
                .ok_or_else(|| BuildError::Failed(format!("stage {base} was not built")))?;
            st.scope = StageScope::new(&self.image_env(&st.config));
            st.cmd_set = false;
            st.arg_names.clear();
            st
        } else {
            let reference = Reference::parse_with_default_tag(&base)
                .map(|r| r.to_string())
                .unwrap_or(base.clone());
            let s = self
                .progress
                .begin(&format!("[internal] load metadata for {reference}"));
            let img = match self.resolve_image(&base) {
                Ok(i) => i,
                Err(e) => {
                    self.progress.error(s, &e.to_string());
                    return Err(e);
                }
            };
            self.progress.done(s);
            let s = self.progress.begin(&self.label(
                stage,
                multi,
                1,
                total,
                &format!("FROM {reference}"),
            ));
            self.progress.done(s);
            let layers = img
                .layers
                .iter()
                .map(LayerInfo::from_row)
                .collect::<Result<Vec<_>, _>>()?;
            let mut config = img.config.clone();
            let created = self
                .stamp
                .map(rfc3339)
                .or(config.created.clone())
                .unwrap_or_default();
            config.created = None;
            State {
                scope: StageScope::new(&self.image_env(&config)),
                arg_names: Vec::new(),
                config,
                layers,
                key: sha(&format!("from {}", img.id)),
                created,
                cmd_set: false,
                base: Some((reference.clone(), img.id.clone())),
            }
        };
        if base.eq_ignore_ascii_case("scratch") || self.stage_ref(&base, stage.index).is_some() {
            let s = self
                .progress
                .begin(&self.label(stage, multi, 1, total, &stage.original));
            self.progress.done(s);
        }
        // Every stage has a PATH: Docker's default when the base has none (BuildKit).
        let env = self.image_env(&st.config);
        if !env.iter().any(|e| e.split('=').next() == Some("PATH")) {
            let mut env = env;
            env.push(format!("PATH={DEFAULT_PATH}"));
            st.cc().env = Some(env.clone());
            st.scope = StageScope::new(&env);
        }
        // ONBUILD triggers of the base run first.
        let triggers = st
            .config
            .config
            .as_mut()
            .and_then(|c| c.on_build.take())
            .unwrap_or_default();
        total += triggers
            .iter()
            .filter(|t| {
                let w = t
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                matches!(w.as_str(), "RUN" | "COPY" | "ADD" | "WORKDIR")
            })
            .count();
        for t in triggers {
            let df = parse_dockerfile(&format!("FROM scratch\n{t}\n"))
                .map_err(|e| BuildError::Invalid(format!("ONBUILD trigger {t:?}: {e}")))?;
            for inst in &df.stages[0].instructions {
                self.instruction(stage, multi, &mut st, inst, &mut n, total)?;
            }
        }
        for inst in &stage.instructions {
            self.check_cancel()?;
            self.instruction(stage, multi, &mut st, inst, &mut n, total)?;
        }
        Ok(st)
    }

    fn image_env(&self, c: &ImageConfig) -> Vec<String> {
        c.config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    fn history(&self, st: &mut State, created_by: String, empty: bool) {
        st.config.history.push(History {
            created: Some(st.created.clone()).filter(|c| !c.is_empty()),
            created_by: Some(created_by),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer: empty,
            ..Default::default()
        });
    }

    fn instruction(
        &mut self,
        stage: &Stage,
        multi: bool,
        st: &mut State,
        inst: &Instruction,
        n: &mut usize,
        total: usize,
    ) -> Result<(), BuildError> {
        let line = inst.start_line;
        let e = st
            .scope
            .step(inst, &self.lex, &self.global, &self.inputs)
            .map_err(|e| BuildError::Invalid(format!("Dockerfile:{line}: {e}")))?;
        let orig = inst.original.trim().to_string();
        match e.kind {
            InstructionKind::Env(_) => {
                let env = st.scope.image_env();
                st.cc().env = Some(env);
                let by = format!("ENV {}", orig[3..].trim());
                self.history(st, by, true);
            }
            InstructionKind::Arg(decls) => {
                // As BuildKit records it: each name with the value it has in this stage.
                let mut parts = Vec::new();
                for d in &decls {
                    let value = st
                        .scope
                        .args()
                        .iter()
                        .find(|(k, _)| *k == d.name)
                        .map(|(_, v)| v.clone());
                    parts.push(match value {
                        Some(v) => format!("{}={v}", d.name),
                        None => d.name.clone(),
                    });
                    if !st.arg_names.contains(&d.name) {
                        st.arg_names.push(d.name.clone());
                    }
                }
                self.history(st, format!("ARG {}", parts.join(" ")), true);
            }
            InstructionKind::Label(kv) => {
                let labels = st.cc().labels.get_or_insert_with(Default::default);
                for (k, v) in kv {
                    labels.insert(k, v);
                }
                self.history(st, format!("LABEL {}", orig[5..].trim()), true);
            }
            InstructionKind::Maintainer(m) => {
                st.config.author = Some(m.clone());
                self.history(st, format!("MAINTAINER {m}"), true);
            }
            InstructionKind::Expose(ports) => {
                let ex = st.cc().exposed_ports.get_or_insert_with(Default::default);
                for p in &ports {
                    let p = if p.contains('/') {
                        p.to_ascii_lowercase()
                    } else {
                        format!("{p}/tcp")
                    };
                    ex.insert(p, serde_json::json!({}));
                }
                self.history(st, format!("EXPOSE map[{}]", ports.join(" ")), true);
            }
            InstructionKind::User(u) => {
                st.cc().user = Some(u.clone());
                self.history(st, format!("USER {u}"), true);
            }
            InstructionKind::Volume(v) => {
                let vols = st.cc().volumes.get_or_insert_with(Default::default);
                for p in &v {
                    vols.insert(p.clone(), serde_json::json!({}));
                }
                self.history(st, format!("VOLUME {v:?}"), true);
            }
            InstructionKind::Stopsignal(s) => {
                st.cc().stop_signal = Some(s.clone());
                self.history(st, format!("STOPSIGNAL {s}"), true);
            }
            InstructionKind::Shell(sh) => {
                st.cc().shell = Some(sh.clone());
                self.history(st, format!("SHELL {sh:?}"), true);
            }
            InstructionKind::Onbuild(t) => {
                st.cc()
                    .on_build
                    .get_or_insert_with(Default::default)
                    .push(t.clone());
                self.history(st, format!("ONBUILD {t}"), true);
            }
            InstructionKind::Cmd(c) => {
                let shell = st.shell();
                let argv = c.to_argv(&shell);
                st.cc().cmd = Some(argv.clone());
                st.cmd_set = true;
                self.history(st, format!("CMD {}", serde_json::json!(argv)), true);
            }
            InstructionKind::Entrypoint(c) => {
                let shell = st.shell();
                let argv = c.to_argv(&shell);
                st.cc().entrypoint = Some(argv.clone());
                if !st.cmd_set {
                    // Docker: ENTRYPOINT resets a CMD inherited from the base image.
                    st.cc().cmd = None;
                }
                self.history(st, format!("ENTRYPOINT {}", serde_json::json!(argv)), true);
            }
            InstructionKind::Healthcheck(h) => {
                let shell = st.shell();
                st.cc().healthcheck = Some(healthcheck_json(&h, &shell));
                self.history(st, format!("HEALTHCHECK {}", orig[11..].trim()), true);
            }
            InstructionKind::Workdir(w) => {
                *n += 1;
                // BuildKit keeps an absolute path as written (`/app/`); a relative one is
                // joined to the current directory and cleaned.
                let wd = if w.starts_with('/') {
                    w.clone()
                } else {
                    berth_runtime::paths::clean(&join_container(&st.workdir(), &w))
                };
                st.cc().working_dir = Some(wd.clone());
                let title = self.label(stage, multi, *n, total, &orig);
                self.layer_step(
                    st,
                    &title,
                    &format!("WORKDIR {wd}"),
                    &format!("WORKDIR {wd}"),
                    |b, st, dir| {
                        let lowers = b.lowers(st);
                        let merged = overlay::Merged::mount(dir, &lowers)
                            .map_err(|e| BuildError::io("mounting the step's root".into(), e))?;
                        Copier::new(&merged.root, CopySpec::default())
                            .ensure_dir(&berth_runtime::paths::clean(&wd))
                            .map_err(|e| BuildError::io(format!("creating {wd}"), e))?;
                        Ok(())
                    },
                )?;
            }
            InstructionKind::Run(r) => {
                *n += 1;
                let title = self.label(stage, multi, *n, total, &orig);
                self.run_step(st, &title, &r, line)?;
            }
            InstructionKind::Copy(c) => {
                *n += 1;
                let title = self.label(stage, multi, *n, total, &orig);
                self.copy_step(st, &title, &c, false, &orig)?;
            }
            InstructionKind::Add(c) => {
                *n += 1;
                let title = self.label(stage, multi, *n, total, &orig);
                self.copy_step(st, &title, &c, true, &orig)?;
            }
        }
        Ok(())
    }

    fn lowers(&self, st: &State) -> Vec<PathBuf> {
        st.layers
            .iter()
            .map(|l| self.layer_root.join(l.chain_id.hex()))
            .collect()
    }

    /// One step that may make a layer: a cache hit reuses the recorded layer; otherwise `work`
    /// fills `<dir>/upper`, which becomes the layer, recorded with the key.
    fn layer_step(
        &mut self,
        st: &mut State,
        title: &str,
        inputs: &str,
        created_by: &str,
        work: impl FnOnce(&mut Self, &State, &Path) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        // The epoch clamps every mtime in the layer and stamps the history: a layer made
        // without it (or with another) must never stand in for one made with it.
        let sde = self.sde.map(|e| format!("sde {e}\n")).unwrap_or_default();
        let key = format!("sha256:{}", sha(&format!("{}\n{inputs}{sde}", st.key)));
        let s = self.progress.begin(title);
        self.progress_step = Some(s);
        if !self.opts.no_cache {
            if let Some(row) = self.host.store().cache_get(&key)? {
                let top = st.top().map(|d| d.to_string());
                let hit = match &row.layer {
                    None if top.is_none() => Some(None),
                    Some(c) if Some(c) == top.as_ref() => Some(None),
                    Some(c) => {
                        let d: Digest = c
                            .parse()
                            .map_err(|_| BuildError::Failed(format!("corrupt cache row {c}")))?;
                        match self.host.store().layer(&d)? {
                            Some(l) if l.parent == top => Some(Some(LayerInfo::from_row(&l)?)),
                            _ => None,
                        }
                    }
                    None => None,
                };
                if let Some(layer) = hit {
                    let empty = layer.is_none();
                    if let Some(l) = layer {
                        st.layers.push(l);
                    }
                    st.key = key;
                    if self.stamp.is_none() {
                        st.created = row.created;
                    }
                    self.history(st, created_by.to_string(), empty);
                    self.progress.cached(s);
                    return Ok(());
                }
            }
        }
        let dir = self.op.scratch_path("step");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return Err(BuildError::io(format!("creating {}", dir.display()), e));
        }
        let cur: &State = st;
        let snapshot = cur.clone();
        if let Err(e) = work(self, &snapshot, &dir) {
            if let Some(m) = e.message() {
                self.progress.error(s, m);
            }
            return Err(e);
        }
        self.check_cancel()?;
        let created = self.stamp.map(rfc3339).unwrap_or_else(now_rfc3339);
        let nl = layer::make_layer(&mut self.op, &dir.join("upper"), self.sde)?;
        let parent = st.top().cloned();
        match nl {
            Some(nl) => {
                let chain = match &parent {
                    None => nl.diff_id.clone(),
                    Some(p) => Digest::of(format!("{p} {}", nl.diff_id).as_bytes()),
                };
                let lc = LayerCommit {
                    chain_id: chain.clone(),
                    diff_id: nl.diff_id.clone(),
                    parent: parent.clone(),
                    size: nl.size,
                    blob: Some((nl.blob.digest.clone(), nl.media_type.into(), nl.blob.size)),
                    staged: Some(nl.dir),
                };
                let bc = BlobCommit {
                    digest: nl.blob.digest.clone(),
                    size: nl.blob.size,
                    media_type: Some(nl.media_type.into()),
                    staged: Some(nl.blob.clone()),
                };
                self.host.store().commit_cache(
                    &mut self.op,
                    Some((&lc, &bc)),
                    &key,
                    Some(&chain),
                    &created,
                )?;
                st.layers.push(LayerInfo {
                    chain_id: chain,
                    diff_id: nl.diff_id,
                    size: nl.size,
                    blob: Some((nl.blob.digest, nl.media_type.into(), nl.blob.size)),
                });
                st.created = created;
                st.key = key;
                self.history(st, created_by.to_string(), false);
            }
            None => {
                self.host.store().commit_cache(
                    &mut self.op,
                    None,
                    &key,
                    parent.as_ref(),
                    &created,
                )?;
                st.key = key;
                self.history(st, created_by.to_string(), true);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        self.progress.done(s);
        Ok(())
    }

    fn load_context(&mut self) -> Result<(), BuildError> {
        if self.ctx_loaded {
            return Ok(());
        }
        self.ctx_loaded = true;
        let s = self.progress.begin("[internal] load build context");
        let (count, bytes) = self
            .ctx
            .load()
            .map_err(|e| BuildError::io("reading the build context".into(), e))?;
        self.progress.detail(
            s,
            &format!(
                "transferring context: {count} files, {} done",
                progress::human_size(bytes)
            ),
        );
        self.progress.done(s);
        Ok(())
    }

    /// COPY/ADD; an error found before the step runs (a missing source, a bad `--chmod`) is
    /// still shown under the step's title, as a failed RUN is.
    fn copy_step(
        &mut self,
        st: &mut State,
        title: &str,
        c: &Copy,
        is_add: bool,
        orig: &str,
    ) -> Result<(), BuildError> {
        self.progress_step = None;
        let res = self.copy_step_inner(st, title, c, is_add, orig);
        if let Some(m) = res.as_ref().err().and_then(BuildError::message) {
            if self.progress_step.is_none() {
                let s = self.progress.begin(title);
                self.progress.error(s, m);
            }
        }
        res
    }

    fn copy_step_inner(
        &mut self,
        st: &mut State,
        title: &str,
        c: &Copy,
        is_add: bool,
        orig: &str,
    ) -> Result<(), BuildError> {
        let kw = if is_add { "ADD" } else { "COPY" };
        let dest = join_container(&st.workdir(), &c.dest);
        let mut key = format!(
            "{kw} dest={dest} chown={:?} chmod={:?} unpack={:?}\n",
            c.chown, c.chmod, c.unpack
        );
        let chmod = match &c.chmod {
            Some(m) => Some(u32::from_str_radix(m, 8).map_err(|_| {
                BuildError::Invalid(format!(
                    "{kw} --chmod={m:?}: expected an octal mode such as 0755"
                ))
            })?),
            None => None,
        };
        // Where the sources come from.
        enum From {
            Context,
            Layers(Vec<PathBuf>),
        }
        let from = match &c.from {
            None => From::Context,
            Some(f) => match self.source_stage(f)? {
                Some(i) => {
                    let src = self.built.get(&i).ok_or_else(|| {
                        BuildError::Failed(format!("COPY --from={f}: stage was not built"))
                    })?;
                    key.push_str(&format!("from-stage {}\n", src.key));
                    From::Layers(self.lowers(src))
                }
                None => {
                    let img = self.resolve_from_image(f)?;
                    key.push_str(&format!("from-image {}\n", img.id));
                    let layers: Vec<PathBuf> = img
                        .layers
                        .iter()
                        .map(|l| {
                            self.layer_root
                                .join(l.chain_id.trim_start_matches("sha256:"))
                        })
                        .collect();
                    From::Layers(layers)
                }
            },
        };
        let mut urls = Vec::new();
        let mut local = Vec::new();
        for s in &c.sources {
            if is_add && (s.starts_with("http://") || s.starts_with("https://")) {
                urls.push(s.clone());
            } else if is_add && (s.starts_with("git@") || s.ends_with(".git")) {
                return invalid(format!(
                    "ADD {s}: git sources are not supported yet — clone it into the context and COPY it"
                ));
            } else {
                local.push(s.clone());
            }
        }
        if matches!(from, From::Context) && !local.is_empty() {
            self.load_context()?;
            for s in &local {
                let rels = self
                    .ctx
                    .matches(s)
                    .map_err(|m| BuildError::NotFound(format!("{kw} failed: {m}")))?;
                for r in rels {
                    let h = self
                        .ctx
                        .content_key(&r, self.sde)
                        .map_err(|e| BuildError::io(format!("reading {r}"), e))?;
                    key.push_str(&format!("src {s} {r} {h}\n"));
                }
            }
        } else {
            for s in &local {
                key.push_str(&format!("src {s}\n"));
            }
        }
        for sc in &c.source_contents {
            key.push_str(&format!("heredoc {} {}\n", sc.path, sha(&sc.data)));
        }
        // URLs: the checksum when given, else the content (downloaded now).
        let mut downloads: Vec<(String, PathBuf)> = Vec::new();
        let dl_dir = self.op.scratch_path("download");
        for u in &urls {
            match &c.checksum {
                Some(sum) => key.push_str(&format!("url {u} {sum}\n")),
                None => {
                    let p = download(u, &dl_dir, None)?;
                    let h = context::hash_file(&p)
                        .map_err(|e| BuildError::io(format!("reading {}", p.display()), e))?;
                    key.push_str(&format!("url {u} sha256:{h}\n"));
                    downloads.push((u.clone(), p));
                }
            }
        }
        let created_by = format!("{orig} # buildkit");
        let contents = c.source_contents.clone();
        let title = title.to_string();
        let checksum = c.checksum.clone();
        let chown = c.chown.clone();
        let unpack = c.unpack;
        let res = self.layer_step(st, &title, &key, &created_by, |b, st, dir| {
            let lowers = b.lowers(st);
            let merged = overlay::Merged::mount(dir, &lowers)
                .map_err(|e| BuildError::io("mounting the step's root".into(), e))?;
            let owner = match &chown {
                None => None,
                Some(u) => Some(resolve_chown(&merged.root, u)?),
            };
            let mut items: Vec<SourceItem> = Vec::new();
            let mut src_merged = None;
            match &from {
                From::Context => {
                    let root = b.ctx.root.clone().unwrap_or_default();
                    for s in &local {
                        for r in b.ctx.matches(s).map_err(BuildError::Failed)? {
                            let top = if r.is_empty() {
                                dir_entry(&root)
                            } else {
                                b.ctx.get(&r).cloned().ok_or_else(|| {
                                    BuildError::Failed(format!("{r} vanished from the context"))
                                })?
                            };
                            let children = if top.kind == Kind::Dir {
                                b.ctx.children(&r)
                            } else {
                                Vec::new()
                            };
                            items.push(SourceItem {
                                host: root.join(&r),
                                name: r.rsplit('/').next().unwrap_or_default().to_string(),
                                top: Entry {
                                    rel: String::new(),
                                    ..top
                                },
                                children,
                                keep_owner: false,
                            });
                        }
                    }
                }
                From::Layers(layers) => {
                    let sdir = dir.join("from");
                    let m = overlay::Merged::mount(&sdir, layers)
                        .map_err(|e| BuildError::io("mounting the source stage".into(), e))?;
                    for s in &local {
                        items.extend(items_in_root(&m.root, s)?);
                    }
                    src_merged = Some(m);
                }
            }
            let tmp = dir.join("inline");
            std::fs::create_dir_all(&tmp).map_err(|e| BuildError::io("staging".into(), e))?;
            for sc in &contents {
                let host = tmp.join(sc.path.replace('/', "_"));
                std::fs::write(&host, sc.data.as_bytes())
                    .map_err(|e| BuildError::io("staging".into(), e))?;
                let inline = InlineSource {
                    host,
                    name: sc.path.clone(),
                };
                items.push(inline.clone_item());
            }
            for (u, p) in &downloads {
                items.push(url_item(u, p));
            }
            for u in &urls {
                if downloads.iter().any(|(d, _)| d == u) {
                    continue;
                }
                let p = download(u, &tmp, checksum.as_deref())?;
                items.push(url_item(u, &p));
            }
            // ADD: local archives are extracted into the destination.
            let mut extracted = Vec::new();
            if is_add && unpack != Some(false) {
                let mut keep = Vec::new();
                for (i, it) in items.into_iter().enumerate() {
                    if it.top.kind == Kind::File && !it.host.starts_with(&tmp) && is_archive(&it.host) {
                        let xdir = dir.join(format!("extract-{i}"));
                        std::fs::create_dir_all(&xdir)
                            .map_err(|e| BuildError::io("staging".into(), e))?;
                        let f = std::fs::File::open(&it.host)
                            .map_err(|e| BuildError::io(format!("opening {}", it.host.display()), e))?;
                        let r = berth_oci::layer::decompress(std::io::BufReader::new(f))
                            .map_err(|e| BuildError::io(format!("reading {}", it.host.display()), e))?;
                        berth_oci::layer::apply_layer(r, &xdir).map_err(|e| {
                            BuildError::Failed(format!("ADD: extracting {}: {e}", it.name))
                        })?;
                        let children = context::walk(&xdir, None)
                            .map_err(|e| BuildError::io("reading extracted archive".into(), e))?;
                        extracted.push(SourceItem {
                            host: xdir.clone(),
                            name: it.name.clone(),
                            top: dir_entry(&xdir),
                            children,
                            keep_owner: true,
                        });
                    } else {
                        keep.push(it);
                    }
                }
                items = keep;
            }
            let dest_is_dir = dest.ends_with('/') || items.len() + extracted.len() > 1;
            if items.len() + extracted.len() > 1 && !dest.ends_with('/') {
                return invalid(format!(
                    "When using {kw} with more than one source file, the destination must be a directory and end with a / — write `{}/`",
                    c.dest.trim_end_matches('/')
                ));
            }
            let spec = CopySpec { chown: owner, chmod };
            let mut copier = Copier::new(&merged.root, spec);
            copier
                .copy(&items, &dest, dest_is_dir)
                .map_err(|e| BuildError::Failed(format!("{kw} failed: {e}")))?;
            if !extracted.is_empty() {
                let d = if dest.ends_with('/') {
                    dest.clone()
                } else {
                    format!("{dest}/")
                };
                copier
                    .copy(&extracted, &d, true)
                    .map_err(|e| BuildError::Failed(format!("{kw} failed: {e}")))?;
            }
            drop(src_merged);
            drop(merged);
            Ok(())
        });
        res
    }
}

/// The heredoc sources of the COPY being executed, written as files.
struct InlineSource {
    host: PathBuf,
    name: String,
}

impl InlineSource {
    fn clone_item(&self) -> SourceItem {
        let md = std::fs::symlink_metadata(&self.host).ok();
        SourceItem {
            host: self.host.clone(),
            name: self.name.clone(),
            top: Entry {
                rel: String::new(),
                kind: Kind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: md.map(|m| m.len()).unwrap_or(0),
                mtime: 0,
            },
            children: Vec::new(),
            keep_owner: false,
        }
    }
}

fn dir_entry(p: &Path) -> Entry {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = std::fs::metadata(p).ok();
    Entry {
        rel: String::new(),
        kind: Kind::Dir,
        mode: md
            .as_ref()
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o755),
        uid: md.as_ref().map(|m| m.uid()).unwrap_or(0),
        gid: md.as_ref().map(|m| m.gid()).unwrap_or(0),
        size: 0,
        mtime: md.as_ref().map(|m| m.mtime()).unwrap_or(0),
    }
}

fn url_item(url: &str, p: &Path) -> SourceItem {
    let name = url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && !n.contains(':'))
        .unwrap_or("download")
        .to_string();
    let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    SourceItem {
        host: p.to_path_buf(),
        name,
        top: Entry {
            rel: String::new(),
            kind: Kind::File,
            mode: 0o600,
            uid: 0,
            gid: 0,
            size,
            mtime: 0,
        },
        children: Vec::new(),
        keep_owner: false,
    }
}

fn is_archive(p: &Path) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(p) else {
        return false;
    };
    let n = f.read(&mut buf).unwrap_or(0);
    if n >= 4 && (buf[..2] == [0x1f, 0x8b] || buf[..4] == [0x28, 0xb5, 0x2f, 0xfd]) {
        return true;
    }
    n >= 262 && &buf[257..262] == b"ustar"
}

/// Downloads `url` into `dir`, checking `checksum` (`sha256:<hex>`) when given.
fn download(url: &str, dir: &Path, checksum: Option<&str>) -> Result<PathBuf, BuildError> {
    std::fs::create_dir_all(dir).map_err(|e| BuildError::io("staging".into(), e))?;
    let path = dir.join(format!("url-{}", &sha(url)[..16]));
    let resp = ureq::get(url)
        .call()
        .map_err(|e| BuildError::Failed(format!("ADD {url}: downloading: {e}")))?;
    let mut body = resp.into_body().into_reader();
    let mut f = std::fs::File::create(&path).map_err(|e| BuildError::io("staging".into(), e))?;
    std::io::copy(&mut body, &mut f)
        .map_err(|e| BuildError::Failed(format!("ADD {url}: downloading: {e}")))?;
    if let Some(sum) = checksum {
        let want = sum.strip_prefix("sha256:").ok_or_else(|| {
            BuildError::Invalid(format!(
                "ADD --checksum={sum}: only sha256:<hex> checksums are supported"
            ))
        })?;
        let got = context::hash_file(&path).map_err(|e| BuildError::io("hashing".into(), e))?;
        if got != want.to_ascii_lowercase() {
            return fail(format!(
                "ADD {url}: digest mismatch: --checksum says sha256:{want}, the download is sha256:{got}"
            ));
        }
    }
    Ok(path)
}

/// `--chown=user[:group]` resolved in the destination root.
fn resolve_chown(root: &Path, spec: &str) -> Result<(u32, u32), BuildError> {
    if !spec.contains(':') {
        if let Ok(n) = spec.parse::<u32>() {
            return Ok((n, n));
        }
    }
    berth_runtime::spec::resolve_user(root, spec, &[])
        .map(|u| (u.uid, u.gid))
        .map_err(|e| BuildError::Invalid(format!("--chown={spec}: {e}")))
}

/// Sources inside a mounted stage or image root (for `COPY --from`).
fn items_in_root(root: &Path, src: &str) -> Result<Vec<SourceItem>, BuildError> {
    let clean = berth_runtime::paths::clean(&format!("/{}", src.trim_start_matches('/')));
    let mut hosts: Vec<(String, PathBuf)> = Vec::new();
    if context::is_glob(&clean) {
        let (dirpart, pat) = clean.rsplit_once('/').unwrap_or(("", &clean));
        let dirpart = if dirpart.is_empty() { "/" } else { dirpart };
        let hdir = berth_runtime::paths::host_path(root, dirpart)
            .map_err(|e| BuildError::io(format!("resolving {dirpart}"), e))?;
        let p = glob::Pattern::new(pat).map_err(|e| BuildError::Invalid(format!("{src}: {e}")))?;
        let mut names: Vec<String> = std::fs::read_dir(&hdir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| p.matches(n))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        for n in names {
            hosts.push((n.clone(), hdir.join(n)));
        }
    } else {
        let h = berth_runtime::paths::host_path(root, &clean)
            .map_err(|e| BuildError::io(format!("resolving {clean}"), e))?;
        let name = clean.rsplit('/').next().unwrap_or_default().to_string();
        if std::fs::symlink_metadata(&h).is_ok() {
            hosts.push((name, h));
        }
    }
    if hosts.is_empty() {
        return not_found(format!(
            "COPY --from failed: {src:?} not found in the source stage or image"
        ));
    }
    let mut out = Vec::new();
    for (name, h) in hosts {
        let md = std::fs::symlink_metadata(&h).map_err(|e| BuildError::io(src.to_string(), e))?;
        let mut top = dir_entry(&h);
        if !md.is_dir() {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            top.kind = if md.file_type().is_symlink() {
                Kind::Symlink(
                    std::fs::read_link(&h)
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            } else {
                Kind::File
            };
            top.mode = md.permissions().mode() & 0o7777;
            top.size = md.len();
            top.mtime = md.mtime();
        }
        let children = if md.is_dir() {
            context::walk(&h, None).map_err(|e| BuildError::io(format!("reading {src}"), e))?
        } else {
            Vec::new()
        };
        out.push(SourceItem {
            host: h,
            name,
            top,
            children,
            keep_owner: false,
        });
    }
    Ok(out)
}

/// Docker's default PATH, which every stage has when its base sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The network a RUN step gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepNet {
    /// Its own namespace on the default bridge, NATed outbound (the default, as BuildKit).
    Bridge,
    /// The host's (`build --network host` only).
    Host,
    /// Loopback only.
    None,
}

impl StepNet {
    fn name(self) -> &'static str {
        match self {
            StepNet::Bridge => "bridge",
            StepNet::Host => "host",
            StepNet::None => "none",
        }
    }
}

/// The step's network from `RUN --network` and `build --network`. As in Docker, a Dockerfile
/// cannot give itself the host's network: `RUN --network=host` needs `build --network host`.
fn step_net_mode(
    run: Option<&str>,
    build: Option<&str>,
    line: usize,
) -> Result<StepNet, BuildError> {
    let parse = |v: &str, what: &str| match v {
        "" | "default" | "bridge" => Ok(StepNet::Bridge),
        "host" => Ok(StepNet::Host),
        "none" => Ok(StepNet::None),
        other => invalid(format!(
            "{what}: network mode {other:?} is not supported: use default, host or none"
        )),
    };
    let build_mode = match build {
        Some(b) => parse(b, "--network")?,
        None => StepNet::Bridge,
    };
    match run {
        None => Ok(build_mode),
        Some(r) => match parse(r, &format!("Dockerfile:{line}: RUN --network"))? {
            StepNet::Host if build_mode != StepNet::Host => invalid(format!(
                "Dockerfile:{line}: RUN --network=host: network.host is not allowed — the host's network must be granted on the command line with `berth build --network host`"
            )),
            m => Ok(m),
        },
    }
}

/// Where a RUN heredoc with a shebang is mounted (BuildKit's path).
const HEREDOC_DIR: &str = "/dev/pipes";

/// How a RUN with heredocs runs, as BuildKit's dispatcher decides it.
struct HeredocCommand {
    /// The shell's script (`sh -c <script>`).
    script: String,
    /// A script file to mount at `/dev/pipes/<name>`: (name, content).
    file: Option<(String, String)>,
    /// The first line of a lone heredoc's body, for the progress title.
    summary: Option<String>,
}

/// BuildKit's rules: a line that is only one heredoc (`RUN <<EOF`) runs its body as the shell's
/// script, or, when the body starts with `#!`, as an executable file; any other line with
/// heredocs (`RUN python3 <<EOF`, several heredocs) is handed to the shell with the bodies
/// put back, so the shell feeds them to the command.
fn heredoc_command(r: &Run, line: usize) -> Result<Option<HeredocCommand>, BuildError> {
    if r.heredocs.is_empty() {
        return Ok(None);
    }
    let cmd = match &r.cmd {
        ShellOrExec::Shell(c) => c,
        ShellOrExec::Exec(_) => {
            return invalid(format!(
                "Dockerfile:{line}: a heredoc needs RUN's shell form, not the JSON (exec) form"
            ))
        }
    };
    let lone = match berth_dockerfile::heredoc::parse_heredoc(cmd.trim()) {
        Ok(Some(_)) => r.heredocs.first(),
        _ => None,
    };
    let Some(h) = lone else {
        let mut script = cmd.clone();
        for h in &r.heredocs {
            script.push('\n');
            script.push_str(&h.content);
            script.push_str(&h.name);
        }
        return Ok(Some(HeredocCommand {
            script,
            file: None,
            summary: None,
        }));
    };
    let body = h.body();
    let summary = {
        let t = body.trim().replace("\r\n", "\n");
        let mut lines = t.split('\n');
        let first = lines.next().unwrap_or_default().to_string();
        if lines.next().is_some() {
            format!("{first}...")
        } else {
            first
        }
    };
    if body.starts_with("#!") {
        if h.name.is_empty() || h.name.contains('/') || h.name == "." || h.name == ".." {
            return invalid(format!(
                "Dockerfile:{line}: the heredoc name {:?} cannot name a script file — use a plain word such as EOF",
                h.name
            ));
        }
        return Ok(Some(HeredocCommand {
            script: format!("{HEREDOC_DIR}/{}", h.name),
            file: Some((h.name.clone(), body)),
            summary: Some(summary),
        }));
    }
    Ok(Some(HeredocCommand {
        script: body,
        file: None,
        summary: Some(summary),
    }))
}

fn healthcheck_json(h: &Healthcheck, shell: &[String]) -> serde_json::Value {
    let _ = shell;
    let test: Vec<String> = match &h.test {
        HealthcheckTest::None => vec!["NONE".into()],
        HealthcheckTest::Cmd(ShellOrExec::Shell(s)) => vec!["CMD-SHELL".into(), s.clone()],
        HealthcheckTest::Cmd(ShellOrExec::Exec(v)) => {
            let mut t = vec!["CMD".to_string()];
            t.extend(v.iter().cloned());
            t
        }
    };
    let mut m = serde_json::Map::new();
    m.insert("Test".into(), serde_json::json!(test));
    let mut dur = |k: &str, d: Option<std::time::Duration>| {
        if let Some(d) = d {
            m.insert(k.into(), serde_json::json!(d.as_nanos() as u64));
        }
    };
    dur("Interval", h.interval);
    dur("Timeout", h.timeout);
    dur("StartPeriod", h.start_period);
    dur("StartInterval", h.start_interval);
    if let Some(r) = h.retries {
        m.insert("Retries".into(), serde_json::json!(r));
    }
    serde_json::Value::Object(m)
}

impl Builder<'_> {
    fn run_step(
        &mut self,
        st: &mut State,
        title: &str,
        r: &Run,
        line: usize,
    ) -> Result<(), BuildError> {
        let shell = st.shell();
        let hd = heredoc_command(r, line)?;
        let argv = match (&r.cmd, &hd) {
            (_, Some(h)) => shell.iter().cloned().chain([h.script.clone()]).collect(),
            (ShellOrExec::Shell(cmd), None) => shell
                .iter()
                .cloned()
                .chain([cmd.clone()])
                .collect::<Vec<_>>(),
            (ShellOrExec::Exec(v), None) => v.clone(),
        };
        if argv.is_empty() {
            return invalid(format!("Dockerfile:{line}: RUN has no command"));
        }
        let title = match hd.as_ref().and_then(|h| h.summary.as_deref()) {
            Some(sum) => format!("{title} ({sum})"),
            None => title.to_string(),
        };
        let title = title.as_str();
        let mut env = st.scope.run_env(&self.inputs);
        if let Some(e) = self.sde {
            if !env.iter().any(|v| v.starts_with("SOURCE_DATE_EPOCH=")) {
                env.push(format!("SOURCE_DATE_EPOCH={e}"));
            }
        }
        let net = step_net_mode(r.network.as_deref(), self.opts.network.as_deref(), line)?;
        let workdir = st.workdir();
        let user = st.user();
        let mut key = format!(
            "RUN {}\nenv {}\nuser {user}\nworkdir {workdir}\nnet {}\n",
            serde_json::json!(argv),
            serde_json::json!(env),
            net.name()
        );
        // Mounts.
        let mut mounts: Vec<MountSpec> = Vec::new();
        let mut bind_layers: Vec<(PathBuf, Vec<PathBuf>, String, String, bool)> = Vec::new();
        // Context binds: (context-relative source, target, read-only).
        let mut ctx_binds: Vec<(String, String, bool)> = Vec::new();
        for m in &r.mounts {
            let target = m.target.as_deref().map(|t| join_container(&workdir, t));
            match m.typ {
                MountType::Cache => {
                    let target = target.ok_or_else(|| {
                        BuildError::Invalid("RUN --mount=type=cache needs target=".into())
                    })?;
                    let id = m.id.clone().unwrap_or_else(|| target.clone());
                    let host = self.cache_mounts.join(&sha(&id)[..32]);
                    std::fs::create_dir_all(&host)
                        .map_err(|e| BuildError::io(format!("creating {}", host.display()), e))?;
                    key.push_str(&format!("mount cache {id} {target}\n"));
                    mounts.push(MountSpec::Bind {
                        source: host,
                        target,
                        readonly: m.readonly,
                    });
                }
                MountType::Tmpfs => {
                    let target = target.ok_or_else(|| {
                        BuildError::Invalid("RUN --mount=type=tmpfs needs target=".into())
                    })?;
                    key.push_str(&format!("mount tmpfs {target}\n"));
                    mounts.push(MountSpec::Tmpfs {
                        target,
                        size: m.size,
                        mode: None,
                        options: Vec::new(),
                    });
                }
                MountType::Secret => {
                    let id =
                        m.id.clone()
                            .or_else(|| {
                                m.target
                                    .as_deref()
                                    .and_then(|t| t.rsplit('/').next())
                                    .map(str::to_string)
                            })
                            .ok_or_else(|| {
                                BuildError::Invalid("RUN --mount=type=secret needs id=".into())
                            })?;
                    let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                    match self.opts.secrets.get(&id) {
                        Some(src) => {
                            key.push_str(&format!("mount secret {id} {target}\n"));
                            mounts.push(MountSpec::Bind {
                                source: src.clone(),
                                target,
                                readonly: true,
                            });
                        }
                        None if m.required => {
                            return not_found(format!(
                                "secret {id} not found: pass it with --secret id={id},src=<file>"
                            ))
                        }
                        None => {}
                    }
                }
                MountType::Bind => {
                    let target = target.ok_or_else(|| {
                        BuildError::Invalid("RUN --mount=type=bind needs target=".into())
                    })?;
                    let src = m.source.clone().unwrap_or_else(|| "/".into());
                    match &m.from {
                        None => {
                            self.load_context()?;
                            let rels = self
                                .ctx
                                .matches(&src)
                                .map_err(|e| BuildError::NotFound(format!("RUN --mount: {e}")))?;
                            let rel = rels.into_iter().next().unwrap_or_default();
                            let h = self
                                .ctx
                                .content_key(&rel, self.sde)
                                .map_err(|e| BuildError::io("hashing the context".into(), e))?;
                            key.push_str(&format!(
                                "mount bind ctx {rel} {h} {target} ro={}\n",
                                m.readonly
                            ));
                            ctx_binds.push((rel, target, m.readonly));
                        }
                        Some(f) => {
                            let (lowers, k) = match self.source_stage(f)? {
                                Some(i) => {
                                    let s = self.built.get(&i).ok_or_else(|| {
                                        BuildError::Failed(format!(
                                            "RUN --mount from={f}: stage was not built"
                                        ))
                                    })?;
                                    (self.lowers(s), s.key.clone())
                                }
                                None => {
                                    let img = self.resolve_from_image(f)?;
                                    let l = img
                                        .layers
                                        .iter()
                                        .map(|l| {
                                            self.layer_root
                                                .join(l.chain_id.trim_start_matches("sha256:"))
                                        })
                                        .collect();
                                    (l, img.id.clone())
                                }
                            };
                            key.push_str(&format!("mount bind {k} {src} {target}\n"));
                            bind_layers.push((PathBuf::new(), lowers, src, target, m.readonly));
                        }
                    }
                }
                MountType::Ssh => {
                    return invalid("RUN --mount=type=ssh is not supported yet");
                }
            }
        }
        // A heredoc with a shebang is run as a file, mounted read-only at /dev/pipes/<name>.
        let script_file = hd.as_ref().and_then(|h| h.file.clone());
        if let Some((name, data)) = &script_file {
            key.push_str(&format!("heredoc-file {name} {}\n", sha(data)));
        }
        // BuildKit's history names the stage's ARGs with their values: `RUN |2 A=1 B= …`.
        let arg_prefix = if st.arg_names.is_empty() {
            String::new()
        } else {
            use berth_dockerfile::Env as _;
            let kv: Vec<String> = st
                .arg_names
                .iter()
                .map(|k| format!("{k}={}", st.scope.get_var(k).unwrap_or_default()))
                .collect();
            format!("|{} {} ", kv.len(), kv.join(" "))
        };
        let created_by = match (&r.cmd, &hd) {
            (_, Some(h)) => format!(
                "RUN {arg_prefix}{} {} # buildkit",
                shell.join(" "),
                h.script
            ),
            (ShellOrExec::Shell(c), None) => {
                format!("RUN {arg_prefix}{} {c} # buildkit", shell.join(" "))
            }
            (ShellOrExec::Exec(v), None) => {
                format!("RUN {arg_prefix}{} # buildkit", serde_json::json!(v))
            }
        };
        let cmd_text = match (&r.cmd, &hd) {
            (_, Some(h)) => format!("{} {}", shell.join(" "), h.script),
            (ShellOrExec::Shell(c), None) => format!("{} {c}", shell.join(" ")),
            (ShellOrExec::Exec(v), None) => serde_json::json!(v).to_string(),
        };
        let runroot = self.opts.runroot.clone();
        let cancel = self.cancel.clone();
        self.layer_step(st, title, &key, &created_by, |b, st, dir| {
            let lowers = b.lowers(st);
            let mut held = Vec::new();
            let mut mounts = mounts;
            for (i, (rel, target, ro)) in ctx_binds.into_iter().enumerate() {
                let (source, merged) = b.context_view(&dir.join(format!("ctx-{i}")), &rel, ro)?;
                mounts.push(MountSpec::Bind {
                    source,
                    target,
                    readonly: ro,
                });
                held.extend(merged);
            }
            if let Some((name, data)) = &script_file {
                use std::os::unix::fs::PermissionsExt;
                let f = dir.join("heredoc-script");
                std::fs::write(&f, data)
                    .and_then(|_| {
                        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755))
                    })
                    .map_err(|e| BuildError::io("staging the heredoc script".into(), e))?;
                mounts.push(MountSpec::Bind {
                    source: f,
                    target: format!("{HEREDOC_DIR}/{name}"),
                    readonly: true,
                });
            }
            for (i, (_, layers, src, target, ro)) in bind_layers.into_iter().enumerate() {
                let mdir = dir.join(format!("bind-{i}"));
                let m = overlay::Merged::mount(&mdir, &layers)
                    .map_err(|e| BuildError::io("mounting a bind source".into(), e))?;
                let h = berth_runtime::paths::host_path(&m.root, &src)
                    .map_err(|e| BuildError::io(format!("resolving {src}"), e))?;
                mounts.push(MountSpec::Bind {
                    source: h,
                    target,
                    readonly: ro,
                });
                held.push(m);
            }
            let mut step_net = None;
            match net {
                StepNet::Host => {
                    for f in ["/etc/resolv.conf", "/etc/hosts"] {
                        if Path::new(f).exists() {
                            mounts.push(MountSpec::Bind {
                                source: f.into(),
                                target: f.into(),
                                readonly: true,
                            });
                        }
                    }
                }
                StepNet::Bridge => {
                    let id = hex::encode(rand::random::<[u8; 32]>());
                    let n = b.host.step_network_up(&id).map_err(|e| {
                        b.host.step_network_down(&id);
                        BuildError::Failed(format!("giving the RUN step its network: {e}"))
                    })?;
                    for (name, data, target) in [
                        ("hosts", &n.hosts, "/etc/hosts"),
                        ("resolv.conf", &n.resolv_conf, "/etc/resolv.conf"),
                    ] {
                        let f = dir.join(name);
                        if let Err(e) = std::fs::write(&f, data) {
                            b.host.step_network_down(&id);
                            return Err(BuildError::io(format!("writing {name}"), e));
                        }
                        mounts.push(MountSpec::Bind {
                            source: f,
                            target: target.into(),
                            readonly: true,
                        });
                    }
                    step_net = Some((id, n.netns));
                }
                StepNet::None => {}
            }
            let network = match (&net, &step_net) {
                (StepNet::Host, _) => berth_runtime::NetworkMode::Host,
                (_, Some((_, ns))) => berth_runtime::NetworkMode::Path(ns.clone()),
                _ => berth_runtime::NetworkMode::None,
            };
            let s_id = b.progress_step;
            let spec = run::RunSpec {
                dir: &dir.join("c"),
                lowers: &lowers,
                argv,
                env,
                user,
                workdir,
                network,
                mounts,
                runroot: &runroot,
                monitor: b.opts.monitor.clone(),
                cancel: &cancel,
            };
            let progress = &mut *b.progress;
            let outcome = run::run(spec, &mut |l| {
                if let Some(s) = s_id {
                    progress.output(s, l);
                }
            });
            if let Some((id, _)) = &step_net {
                b.host.step_network_down(id);
            }
            let outcome = outcome?;
            drop(held);
            // The upper dir lives in the container directory; move it where the step wants it.
            std::fs::rename(dir.join("c/upper"), dir.join("upper"))
                .map_err(|e| BuildError::io("staging the step's changes".into(), e))?;
            if outcome.exit_code != 0 {
                let mut msg = format!(
                    "The command '{cmd_text}' returned a non-zero code: {}",
                    outcome.exit_code
                );
                if !outcome.tail.is_empty() {
                    msg.push_str("\nlast output:\n");
                    for l in &outcome.tail {
                        msg.push_str("  ");
                        msg.push_str(l);
                        msg.push('\n');
                    }
                    msg.pop();
                }
                return Err(BuildError::StepFailed {
                    message: msg,
                    exit_code: outcome.exit_code,
                });
            }
            Ok(())
        })
    }

    /// What a `RUN --mount=type=bind` of the context shows: the context as the build sees it
    /// (what `.dockerignore` excludes is not there), and with `rw` a copy-on-write view whose
    /// writes are dropped with the step, never the context itself — as BuildKit.
    /// Returns the host path to bind and the overlay to keep mounted while the step runs.
    fn context_view(
        &self,
        dir: &Path,
        rel: &str,
        readonly: bool,
    ) -> Result<(PathBuf, Option<overlay::Merged>), BuildError> {
        let root = self.ctx.root.clone().unwrap_or_default();
        let host = root.join(rel);
        let io = |what: &str| {
            let what = what.to_string();
            move |e: std::io::Error| BuildError::io(what, e)
        };
        let is_dir = rel.is_empty() || self.ctx.get(rel).is_some_and(|e| e.kind == Kind::Dir);
        if !is_dir {
            // One file (an excluded one is never matched): the file itself, or a copy.
            if readonly {
                return Ok((host, None));
            }
            std::fs::create_dir_all(dir).map_err(io("staging a bind mount"))?;
            let copy = dir.join("file");
            std::fs::copy(&host, &copy).map_err(io("copying a bind mount's source"))?;
            return Ok((copy, None));
        }
        let lower = if self.ctx.ignore.patterns.is_empty() {
            host
        } else {
            // The filtered tree: directories made, files hard-linked (copied across file
            // systems), links recreated. Read-only below the overlay or the read-only bind.
            let tree = dir.join("tree");
            std::fs::create_dir_all(&tree).map_err(io("staging a bind mount"))?;
            for e in self.ctx.children(rel) {
                let src = host.join(&e.rel);
                let dst = tree.join(&e.rel);
                match &e.kind {
                    Kind::Dir => {
                        std::fs::create_dir_all(&dst).map_err(io("staging a bind mount"))?;
                        use std::os::unix::fs::PermissionsExt;
                        let _ =
                            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(e.mode));
                    }
                    Kind::File => {
                        if std::fs::hard_link(&src, &dst).is_err() {
                            std::fs::copy(&src, &dst).map_err(io("staging a bind mount"))?;
                        }
                    }
                    Kind::Symlink(t) => {
                        std::os::unix::fs::symlink(t, &dst).map_err(io("staging a bind mount"))?
                    }
                    Kind::Other => {}
                }
            }
            tree
        };
        if readonly {
            return Ok((lower, None));
        }
        let m = overlay::Merged::mount(&dir.join("rw"), std::slice::from_ref(&lower))
            .map_err(io("mounting a bind mount's copy-on-write view"))?;
        Ok((m.root.clone(), Some(m)))
    }

    fn export(&mut self, st: State) -> Result<BuildOutput, BuildError> {
        let s = self.progress.begin("exporting to image");
        let mut config = st.config.clone();
        if !self.opts.labels.is_empty() {
            let labels = config
                .config
                .get_or_insert_with(Default::default)
                .labels
                .get_or_insert_with(Default::default);
            for (k, v) in &self.opts.labels {
                labels.insert(k.clone(), v.clone());
            }
        }
        if config
            .config
            .as_ref()
            .is_some_and(|c| c.on_build.as_ref().is_some_and(|o| o.is_empty()))
        {
            if let Some(c) = config.config.as_mut() {
                c.on_build = None;
            }
        }
        config.created = Some(st.created.clone()).filter(|c| !c.is_empty());
        config.rootfs = RootFs {
            kind: "layers".into(),
            diff_ids: st.layers.iter().map(|l| l.diff_id.clone()).collect(),
        };
        let tags: Vec<String> = self
            .opts
            .tags
            .iter()
            .map(|t| {
                Reference::parse_with_default_tag(t)
                    .map(|r| r.to_string())
                    .map_err(|e| BuildError::Invalid(format!("invalid tag {t:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let config_json = serde_json::to_string(&config)
            .map_err(|e| BuildError::Failed(format!("image config: {e}")))?;
        let id = Digest::of(config_json.as_bytes());
        let finish = self.finish_with_host(&st, &config, id.to_string())?;
        self.progress.detail(s, "exporting layers done");
        self.progress.detail(s, &format!("writing image {id} done"));
        let store = self.host.store();
        if store.image(&id.to_string())?.is_some() {
            for t in &tags {
                store.set_tag(t, &id.to_string())?;
            }
        } else {
            let config_blob = self.op.stage_bytes(config_json.as_bytes())?;
            let mut descs = Vec::new();
            let mut blobs = vec![BlobCommit {
                digest: config_blob.digest.clone(),
                size: config_blob.size,
                media_type: Some(media::OCI_CONFIG.into()),
                staged: Some(config_blob.clone()),
            }];
            let mut layers = Vec::new();
            for (i, l) in st.layers.iter().enumerate() {
                let Some((bd, bm, bs)) = &l.blob else {
                    return fail(format!(
                        "layer {} has no stored archive, so the image cannot be written",
                        l.chain_id
                    ));
                };
                descs.push(Descriptor::new(bm.clone(), bd.clone(), *bs));
                blobs.push(BlobCommit {
                    digest: bd.clone(),
                    size: *bs,
                    media_type: Some(bm.clone()),
                    staged: None,
                });
                layers.push(LayerCommit {
                    chain_id: l.chain_id.clone(),
                    diff_id: l.diff_id.clone(),
                    parent: if i == 0 {
                        None
                    } else {
                        Some(st.layers[i - 1].chain_id.clone())
                    },
                    size: l.size,
                    blob: Some((bd.clone(), bm.clone(), *bs)),
                    staged: None,
                });
            }
            for a in &finish.attachments {
                let staged = self.op.stage_bytes(&a.bytes)?;
                blobs.push(BlobCommit {
                    digest: staged.digest.clone(),
                    size: staged.size,
                    media_type: Some(a.media_type.clone()),
                    staged: Some(staged),
                });
            }
            let manifest = Manifest::oci(config_blob.digest.clone(), config_blob.size, descs);
            let mjson = serde_json::to_vec(&manifest)
                .map_err(|e| BuildError::Failed(format!("manifest: {e}")))?;
            let mblob = self.op.stage_bytes(&mjson)?;
            blobs.push(BlobCommit {
                digest: mblob.digest.clone(),
                size: mblob.size,
                media_type: Some(media::OCI_MANIFEST.into()),
                staged: Some(mblob.clone()),
            });
            let commit = ImageCommit {
                id: id.clone(),
                config_json,
                created: config.created.clone().unwrap_or_default(),
                manifest: Some((mblob.digest.clone(), media::OCI_MANIFEST.into())),
                blobs,
                layers,
                tags: tags.clone(),
                repo_digests: Vec::new(),
                parent: None,
            };
            self.host.store().commit_image(&mut self.op, &commit)?;
        }
        for t in &tags {
            self.progress.detail(s, &format!("naming to {t} done"));
        }
        self.progress.done(s);
        Ok(BuildOutput {
            id,
            tags,
            warnings: finish.warnings,
        })
    }
}
