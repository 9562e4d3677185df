//! The typed layer: raw [`Node`]s → build [`Stage`]s of validated
//! [`Instruction`]s. Values stay unexpanded here (expansion happens per
//! instruction with the environment in effect at that point; see
//! [`Instruction::expand`] and [`crate::scope`]).

mod flags;
mod mount;

use std::time::Duration;

use crate::directives::Directives;
use crate::error::{nearest, nth_line, Error, ErrorKind};
use crate::heredoc::{parse_heredoc, Heredoc};
use crate::parser::{parse, Node, Warning, INSTRUCTIONS};
use crate::shell::{Env, Lexer, ShellError};

pub use flags::{parse_duration, Flags};
pub use mount::{Mount, MountType, Sharing};

/// A whole Dockerfile, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives.
    pub directives: Directives,
    /// ARG instructions before the first FROM (the global scope); each is
    /// an [`InstructionKind::Arg`].
    pub meta_args: Vec<Instruction>,
    /// The build stages in order.
    pub stages: Vec<Stage>,
    /// Non-fatal findings from the parser.
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// The lexer for expanding this file's instructions (honours `# escape=`).
    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.directives.escape)
    }

    /// The stage called `name` (case-insensitive) or with that index.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().and_then(|i| self.stages.get(i)))
    }
}

/// One build stage: `FROM [--platform=p] image [AS name]` and what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The stage's name, lower-cased, if it has one.
    pub name: Option<String>,
    /// The base: an image reference or an earlier stage's name (unexpanded).
    pub base: String,
    /// `--platform` value (unexpanded).
    pub platform: Option<String>,
    /// Position among the stages, from 0.
    pub index: usize,
    /// Line of the FROM instruction.
    pub start_line: usize,
    /// Last line of the FROM instruction.
    pub end_line: usize,
    /// The FROM line as written.
    pub original: String,
    /// Comments directly above FROM.
    pub comments: Vec<String>,
    /// The stage's instructions.
    pub instructions: Vec<Instruction>,
}

/// An instruction with its place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// What it does.
    pub kind: InstructionKind,
    /// First line, 1-based.
    pub start_line: usize,
    /// Last line, 1-based (continuations and heredocs included).
    pub end_line: usize,
    /// Column of the keyword, 1-based.
    pub column: usize,
    /// The logical line as written.
    pub original: String,
}

/// Shell form (run through the stage's SHELL) or exec form (JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellOrExec {
    /// `RUN echo hi`: one command line.
    Shell(String),
    /// `RUN ["echo", "hi"]`: the argv.
    Exec(Vec<String>),
}

impl ShellOrExec {
    /// The argv to execute, given the stage's shell (`["/bin/sh", "-c"]` by default).
    pub fn to_argv(&self, shell: &[String]) -> Vec<String> {
        match self {
            ShellOrExec::Shell(s) => shell.iter().cloned().chain([s.clone()]).collect(),
            ShellOrExec::Exec(v) => v.clone(),
        }
    }
}

/// RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// `--mount` options, in order.
    pub mounts: Vec<Mount>,
    /// `--network=default|none|host`.
    pub network: Option<String>,
    /// `--security=sandbox|insecure`.
    pub security: Option<String>,
    /// `--device` values.
    pub devices: Vec<String>,
    /// The command.
    pub cmd: ShellOrExec,
    /// Heredocs opened on the line (bodies as written; see [`Heredoc::body`]).
    pub heredocs: Vec<Heredoc>,
}

/// Inline file content for COPY/ADD (a heredoc source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContent {
    /// The file name (the heredoc delimiter).
    pub path: String,
    /// The content, `<<-` tabs already stripped.
    pub data: String,
    /// Whether variables in `data` are expanded.
    pub expand: bool,
}

/// COPY and ADD. Options an instruction does not take stay at their default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copy {
    /// Source paths (or URLs / git refs for ADD), unexpanded.
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub source_contents: Vec<SourceContent>,
    /// Destination.
    pub dest: String,
    /// `--from` (COPY): a stage name, index or image.
    pub from: Option<String>,
    /// `--chown=user:group`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// `--checksum` (ADD).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD).
    pub keep_git_dir: bool,
    /// `--unpack` (ADD), when given.
    pub unpack: Option<bool>,
    /// Whether the paths came in JSON form.
    pub json: bool,
}

/// ADD takes the same shape as COPY.
pub type Add = Copy;

/// One `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default, unexpanded (quotes still in place).
    pub default: Option<String>,
}

/// What HEALTHCHECK tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthcheckTest {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK CMD ...`.
    Cmd(ShellOrExec),
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// The test.
    pub test: HealthcheckTest,
    /// `--interval`.
    pub interval: Option<Duration>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--start-period`.
    pub start_period: Option<Duration>,
    /// `--start-interval`.
    pub start_interval: Option<Duration>,
    /// `--retries`.
    pub retries: Option<u32>,
}

/// The typed instructions (FROM starts a [`Stage`] and is not one of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    /// RUN.
    Run(Run),
    /// COPY.
    Copy(Copy),
    /// ADD.
    Add(Add),
    /// ENV, as (name, value) pairs, values unexpanded.
    Env(Vec<(String, String)>),
    /// ARG.
    Arg(Vec<ArgDecl>),
    /// LABEL, as (key, value) pairs, unexpanded.
    Label(Vec<(String, String)>),
    /// EXPOSE ports (`80`, `53/udp`), unexpanded.
    Expose(Vec<String>),
    /// USER.
    User(String),
    /// WORKDIR.
    Workdir(String),
    /// VOLUME.
    Volume(Vec<String>),
    /// ENTRYPOINT.
    Entrypoint(ShellOrExec),
    /// CMD.
    Cmd(ShellOrExec),
    /// HEALTHCHECK.
    Healthcheck(Healthcheck),
    /// STOPSIGNAL.
    Stopsignal(String),
    /// SHELL (always exec form).
    Shell(Vec<String>),
    /// ONBUILD: the wrapped instruction's text, validated but kept raw.
    Onbuild(String),
    /// MAINTAINER (deprecated).
    Maintainer(String),
}

impl InstructionKind {
    /// The instruction keyword, upper-case.
    pub fn keyword(&self) -> &'static str {
        match self {
            InstructionKind::Run(_) => "RUN",
            InstructionKind::Copy(_) => "COPY",
            InstructionKind::Add(_) => "ADD",
            InstructionKind::Env(_) => "ENV",
            InstructionKind::Arg(_) => "ARG",
            InstructionKind::Label(_) => "LABEL",
            InstructionKind::Expose(_) => "EXPOSE",
            InstructionKind::User(_) => "USER",
            InstructionKind::Workdir(_) => "WORKDIR",
            InstructionKind::Volume(_) => "VOLUME",
            InstructionKind::Entrypoint(_) => "ENTRYPOINT",
            InstructionKind::Cmd(_) => "CMD",
            InstructionKind::Healthcheck(_) => "HEALTHCHECK",
            InstructionKind::Stopsignal(_) => "STOPSIGNAL",
            InstructionKind::Shell(_) => "SHELL",
            InstructionKind::Onbuild(_) => "ONBUILD",
            InstructionKind::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// Parses and validates a Dockerfile into stages.
pub fn parse_dockerfile(source: &str) -> Result<Dockerfile, Error> {
    let ast = parse(source)?;
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &ast.children {
        let at = |e: ErrorKind, column: usize| {
            Error::new(e).at(source, node.start_line, node.end_line, column)
        };
        let cmd = node.command();
        if cmd == "from" {
            let stage = parse_from(node, stages.len()).map_err(|(e, c)| at(e, c))?;
            if let Some(name) = &stage.name {
                if let Some(prev) = stages.iter().find(|s| s.name.as_ref() == Some(name)) {
                    return Err(at(
                        ErrorKind::Invalid(format!(
                            "duplicate stage name {name:?} (first used on line {}) — give each stage a unique name",
                            prev.start_line
                        )),
                        node.column,
                    ));
                }
            }
            stages.push(stage);
            continue;
        }
        let kind = parse_instruction(node, source).map_err(|(e, c)| at(e, c))?;
        let inst = Instruction {
            kind,
            start_line: node.start_line,
            end_line: node.end_line,
            column: node.column,
            original: node.original.clone(),
        };
        match stages.last_mut() {
            Some(stage) => stage.instructions.push(inst),
            None if cmd == "arg" => meta_args.push(inst),
            None => {
                return Err(at(
                    ErrorKind::Invalid(format!(
                        "{} before FROM — a build stage must start with FROM (only ARG may come before it)",
                        node.keyword.to_ascii_uppercase()
                    )),
                    node.column,
                ))
            }
        }
    }
    if stages.is_empty() {
        let line = ast.children.last().map_or(1, |n| n.start_line);
        return Err(Error::new(ErrorKind::Invalid(
            "no FROM instruction — add `FROM <image>` to start a build stage".into(),
        ))
        .at(source, line, line, 0));
    }
    Ok(Dockerfile {
        directives: ast.directives,
        meta_args,
        stages,
        warnings: ast.warnings,
    })
}

type Fail = (ErrorKind, usize);

fn invalid(msg: impl Into<String>, column: usize) -> Fail {
    (ErrorKind::Invalid(msg.into()), column)
}

/// The column of `word` on the node's first line, or the keyword's column.
fn column_of(node: &Node, source: &str, word: &str) -> usize {
    let line = nth_line(source, node.start_line);
    match line.find(word) {
        Some(i) if !word.is_empty() => line[..i].chars().count() + 1,
        _ => node.column,
    }
}

/// The stage name rule: lower-case letter first, then letters, digits, `-_.`.
pub fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn parse_from(node: &Node, index: usize) -> Result<Stage, Fail> {
    let mut flags = Flags::parse("FROM", &node.flags, &[("platform", flags::Kind::String)])
        .map_err(|e| (e, node.column))?;
    let platform = flags.string("platform");
    let args = &node.args;
    let name = match args.len() {
        1 => None,
        3 if args[1].eq_ignore_ascii_case("as") => {
            let name = args[2].to_ascii_lowercase();
            if !is_valid_stage_name(&name) {
                return Err(invalid(
                    format!(
                        "invalid name for build stage: {:?}, name can't start with a number or contain symbols — use letters, digits, '-', '_' and '.'",
                        args[2]
                    ),
                    node.column,
                ));
            }
            Some(name)
        }
        _ => {
            return Err(invalid(
                "FROM requires either one or three arguments — write `FROM <image> [AS <name>]`",
                node.column,
            ))
        }
    };
    Ok(Stage {
        name,
        base: args[0].clone(),
        platform,
        index,
        start_line: node.start_line,
        end_line: node.end_line,
        original: node.original.clone(),
        comments: node.comments.clone(),
        instructions: Vec::new(),
    })
}

fn shell_or_exec(node: &Node) -> ShellOrExec {
    if node.json {
        ShellOrExec::Exec(node.args.clone())
    } else {
        ShellOrExec::Shell(node.args.join(" "))
    }
}

fn no_flags(node: &Node, name: &str) -> Result<(), Fail> {
    Flags::parse(name, &node.flags, &[])
        .map(|_| ())
        .map_err(|e| (e, node.column))
}

fn one_arg(node: &Node, name: &str, what: &str) -> Result<String, Fail> {
    no_flags(node, name)?;
    match node.args.first() {
        Some(a) if !a.is_empty() => Ok(a.clone()),
        _ => Err(invalid(
            format!("{name} needs {what} — write `{name} <{what}>`"),
            node.column,
        )),
    }
}

fn pairs(node: &Node) -> Vec<(String, String)> {
    node.args
        .chunks(3)
        .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
        .collect()
}

pub(crate) fn parse_instruction(node: &Node, source: &str) -> Result<InstructionKind, Fail> {
    let cmd = node.command();
    let upper = cmd.to_ascii_uppercase();
    Ok(match cmd.as_str() {
        "run" => InstructionKind::Run(parse_run(node)?),
        "copy" | "add" => {
            let c = parse_copy(node, source, cmd == "add")?;
            if cmd == "add" {
                InstructionKind::Add(c)
            } else {
                InstructionKind::Copy(c)
            }
        }
        "env" | "label" => {
            no_flags(node, &upper)?;
            if node.args.is_empty() {
                return Err(invalid(
                    format!("{upper} needs at least one name=value pair — write `{upper} <name>=<value>`"),
                    node.column,
                ));
            }
            if cmd == "env" {
                InstructionKind::Env(pairs(node))
            } else {
                InstructionKind::Label(pairs(node))
            }
        }
        "arg" => {
            no_flags(node, "ARG")?;
            if node.args.is_empty() {
                return Err(invalid(
                    "ARG needs a name — write `ARG <name>[=<default>]`",
                    node.column,
                ));
            }
            let mut decls = Vec::new();
            for w in &node.args {
                let (name, default) = match w.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (w.clone(), None),
                };
                if name.is_empty() {
                    return Err(invalid(
                        format!("ARG {w:?} has no name — write `ARG <name>=<default>`"),
                        column_of(node, source, w),
                    ));
                }
                decls.push(ArgDecl { name, default });
            }
            InstructionKind::Arg(decls)
        }
        "expose" => {
            no_flags(node, "EXPOSE")?;
            if node.args.is_empty() {
                return Err(invalid(
                    "EXPOSE needs at least one port — write `EXPOSE <port>[/<protocol>]`",
                    node.column,
                ));
            }
            InstructionKind::Expose(node.args.clone())
        }
        "user" => InstructionKind::User(one_arg(node, "USER", "user")?),
        "workdir" => InstructionKind::Workdir(one_arg(node, "WORKDIR", "path")?),
        "stopsignal" => InstructionKind::Stopsignal(one_arg(node, "STOPSIGNAL", "signal")?),
        "maintainer" => InstructionKind::Maintainer(one_arg(node, "MAINTAINER", "name")?),
        "volume" => {
            no_flags(node, "VOLUME")?;
            if node.args.is_empty() || node.args.iter().any(|a| a.trim().is_empty()) {
                return Err(invalid(
                    "VOLUME needs a non-empty path — write `VOLUME <path>` or `VOLUME [\"<path>\"]`",
                    node.column,
                ));
            }
            InstructionKind::Volume(node.args.clone())
        }
        "cmd" => {
            no_flags(node, "CMD")?;
            InstructionKind::Cmd(shell_or_exec(node))
        }
        "entrypoint" => {
            no_flags(node, "ENTRYPOINT")?;
            InstructionKind::Entrypoint(shell_or_exec(node))
        }
        "shell" => {
            no_flags(node, "SHELL")?;
            if !node.json || node.args.is_empty() {
                return Err(invalid(
                    "SHELL requires the arguments to be in JSON form — write `SHELL [\"/bin/sh\", \"-c\"]`",
                    node.column,
                ));
            }
            InstructionKind::Shell(node.args.clone())
        }
        "healthcheck" => InstructionKind::Healthcheck(parse_healthcheck(node)?),
        "onbuild" => {
            no_flags(node, "ONBUILD")?;
            let Some(sub) = &node.sub else {
                return Err(invalid(
                    "ONBUILD needs an instruction — write `ONBUILD <INSTRUCTION> ...`",
                    node.column,
                ));
            };
            let sub_cmd = sub.command();
            if matches!(sub_cmd.as_str(), "onbuild" | "from" | "maintainer") {
                return Err(invalid(
                    format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        sub.keyword.to_ascii_uppercase()
                    ),
                    column_of(node, source, &sub.keyword),
                ));
            }
            let mut sub_node = (**sub).clone();
            sub_node.heredocs = node.heredocs.clone();
            sub_node.start_line = node.start_line;
            sub_node.column = column_of(node, source, &sub.keyword);
            parse_instruction(&sub_node, source)?;
            let trimmed = node.original.trim_start();
            let rest = trimmed[node.keyword.len()..].trim_start();
            InstructionKind::Onbuild(rest.trim_end().to_string())
        }
        _ => {
            let upper_list: Vec<String> = INSTRUCTIONS.iter().map(|s| s.to_uppercase()).collect();
            let refs: Vec<&str> = upper_list.iter().map(String::as_str).collect();
            return Err((
                ErrorKind::UnknownInstruction {
                    word: node.keyword.clone(),
                    suggestion: nearest(&node.keyword, &refs).map(str::to_string),
                },
                node.column,
            ));
        }
    })
}

fn parse_run(node: &Node) -> Result<Run, Fail> {
    use flags::Kind::*;
    let mut f = Flags::parse(
        "RUN",
        &node.flags,
        &[
            ("mount", Strings),
            ("network", String),
            ("security", String),
            ("device", Strings),
        ],
    )
    .map_err(|e| (e, node.column))?;
    let mounts = f
        .strings("mount")
        .iter()
        .map(|m| Mount::parse(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (e, node.column))?;
    let network = f.string("network");
    if let Some(n) = &network {
        if !matches!(n.as_str(), "default" | "none" | "host") {
            return Err(invalid(
                format!("unsupported network mode {n:?} — use --network=default, none or host"),
                node.column,
            ));
        }
    }
    let security = f.string("security");
    if let Some(s) = &security {
        if !matches!(s.as_str(), "sandbox" | "insecure") {
            return Err(invalid(
                format!("unsupported security mode {s:?} — use --security=sandbox or insecure"),
                node.column,
            ));
        }
    }
    let cmd = shell_or_exec(node);
    if matches!(&cmd, ShellOrExec::Shell(s) if s.trim().is_empty()) {
        return Err(invalid(
            "RUN needs a command — write `RUN <command>` or `RUN [\"executable\", \"arg\"]`",
            node.column,
        ));
    }
    Ok(Run {
        mounts,
        network,
        security,
        devices: f.strings("device"),
        cmd,
        heredocs: node.heredocs.clone(),
    })
}

fn copy_hint(node: &Node, name: &str) -> String {
    if let [only] = node.args.as_slice() {
        for tail in ["./", "."] {
            if only.len() > tail.len() && only.ends_with(tail) {
                let src = &only[..only.len() - tail.len()];
                let fixed =
                    node.original
                        .trim()
                        .replacen(only.as_str(), &format!("{src} {tail}"), 1);
                return format!("did you mean `{fixed}`?");
            }
        }
    }
    format!("write `{name} <src>... <dest>`")
}

fn parse_copy(node: &Node, source: &str, is_add: bool) -> Result<Copy, Fail> {
    use flags::Kind::*;
    let name = if is_add { "ADD" } else { "COPY" };
    let spec: &[(&str, flags::Kind)] = if is_add {
        &[
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", Strings),
            ("checksum", String),
            ("keep-git-dir", Bool),
            ("unpack", Bool),
        ]
    } else {
        &[
            ("from", String),
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", Strings),
        ]
    };
    let mut f = Flags::parse(name, &node.flags, spec).map_err(|e| (e, node.column))?;
    if node.args.len() < 2 {
        let col = node
            .args
            .first()
            .map_or(node.column, |a| column_of(node, source, a));
        return Err((
            ErrorKind::NeedsSourceAndDest {
                instruction: name.to_string(),
                hint: copy_hint(node, name),
            },
            col,
        ));
    }
    let (srcs, dest) = node.args.split_at(node.args.len() - 1);
    let dest = dest[0].clone();
    if !node.json {
        if let Ok(Some(_)) = parse_heredoc(&dest) {
            return Err(invalid(
                format!("{name} cannot use a heredoc as the destination — put the heredoc before the destination path"),
                column_of(node, source, &dest),
            ));
        }
    }
    let mut sources = Vec::new();
    let mut source_contents = Vec::new();
    for s in srcs {
        let doc = if node.json {
            None
        } else {
            parse_heredoc(s).ok().flatten()
        };
        match doc {
            Some(doc) => {
                let body = node
                    .heredocs
                    .iter()
                    .find(|h| h.name == doc.name)
                    .map(|h| h.body())
                    .unwrap_or_default();
                source_contents.push(SourceContent {
                    path: doc.name,
                    data: body,
                    expand: doc.expand,
                });
            }
            None => sources.push(s.clone()),
        }
    }
    let chmod = f.string("chmod");
    Ok(Copy {
        sources,
        source_contents,
        dest,
        from: f.string("from"),
        chown: f.string("chown"),
        chmod,
        link: f.bool("link"),
        parents: f.bool("parents"),
        exclude: f.strings("exclude"),
        checksum: f.string("checksum"),
        keep_git_dir: f.bool("keep-git-dir"),
        unpack: f.opt_bool("unpack"),
        json: node.json,
    })
}

fn parse_healthcheck(node: &Node) -> Result<Healthcheck, Fail> {
    use flags::Kind::String;
    let mut f = Flags::parse(
        "HEALTHCHECK",
        &node.flags,
        &[
            ("interval", String),
            ("timeout", String),
            ("start-period", String),
            ("start-interval", String),
            ("retries", String),
        ],
    )
    .map_err(|e| (e, node.column))?;
    let Some(typ) = node.args.first() else {
        return Err(invalid(
            "HEALTHCHECK needs CMD or NONE — write `HEALTHCHECK [options] CMD <command>`",
            node.column,
        ));
    };
    let test = match typ.to_ascii_uppercase().as_str() {
        "NONE" => {
            if node.args.len() > 1 || !node.flags.is_empty() {
                return Err(invalid(
                    "HEALTHCHECK NONE takes no arguments — remove what follows NONE",
                    node.column,
                ));
            }
            HealthcheckTest::None
        }
        "CMD" => {
            let rest = &node.args[1..];
            if rest.is_empty() || (!node.json && rest.iter().all(|s| s.trim().is_empty())) {
                return Err(invalid(
                    "Missing command after HEALTHCHECK CMD — write `HEALTHCHECK CMD <command>`",
                    node.column,
                ));
            }
            HealthcheckTest::Cmd(if node.json {
                ShellOrExec::Exec(rest.to_vec())
            } else {
                ShellOrExec::Shell(rest.join(" "))
            })
        }
        other => {
            return Err(invalid(
                format!("unknown type {other:?} in HEALTHCHECK — use CMD or NONE"),
                node.column,
            ))
        }
    };
    let mut duration = |name: &str| -> Result<Option<Duration>, Fail> {
        let Some(v) = f.string(name) else {
            return Ok(None);
        };
        let d = parse_duration(&v).map_err(|e| {
            invalid(
                format!("invalid --{name}={v:?}: {e} — use a duration such as 30s or 1m30s"),
                node.column,
            )
        })?;
        if !d.is_zero() && d < Duration::from_millis(1) {
            return Err(invalid(
                format!("--{name} {v:?} cannot be less than 1ms"),
                node.column,
            ));
        }
        Ok(Some(d))
    };
    let interval = duration("interval")?;
    let timeout = duration("timeout")?;
    let start_period = duration("start-period")?;
    let start_interval = duration("start-interval")?;
    let retries = match f.string("retries") {
        None => None,
        Some(r) => Some(r.parse::<u32>().map_err(|_| {
            invalid(
                format!("invalid --retries={r:?} — use a whole number, 0 or more"),
                node.column,
            )
        })?),
    };
    Ok(Healthcheck {
        test,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    })
}

impl Instruction {
    /// Expands variables the way the builder does for this instruction,
    /// with `env` as the environment in effect before it: ENV/LABEL/ARG keys
    /// and values, COPY/ADD paths and options (and expandable heredoc
    /// sources), EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL and RUN mounts.
    /// RUN/CMD/ENTRYPOINT commands are left to the shell.
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> Result<Instruction, Error> {
        let kind = self.expand_kind(lex, env).map_err(|e| {
            let mut err = Error::new(ErrorKind::Shell(e));
            err.line = self.start_line;
            err.end_line = self.end_line;
            err.column = self.column;
            err.source_line = self.original.lines().next().unwrap_or_default().to_string();
            err
        })?;
        Ok(Instruction {
            kind,
            ..self.clone()
        })
    }

    fn expand_kind(&self, lex: &Lexer, env: &dyn Env) -> Result<InstructionKind, ShellError> {
        let w = |s: &str| lex.process_word(s, env);
        let ow = |s: &Option<String>| s.as_deref().map(w).transpose();
        let kv = |v: &[(String, String)]| {
            v.iter()
                .map(|(k, v)| Ok((w(k)?, w(v)?)))
                .collect::<Result<Vec<_>, ShellError>>()
        };
        Ok(match &self.kind {
            InstructionKind::Env(v) => InstructionKind::Env(kv(v)?),
            InstructionKind::Label(v) => InstructionKind::Label(kv(v)?),
            InstructionKind::Arg(v) => InstructionKind::Arg(
                v.iter()
                    .map(|a| {
                        Ok(ArgDecl {
                            name: w(&a.name)?,
                            default: ow(&a.default)?,
                        })
                    })
                    .collect::<Result<_, ShellError>>()?,
            ),
            InstructionKind::Copy(c) | InstructionKind::Add(c) => {
                let mut c = c.clone();
                c.sources = c.sources.iter().map(|s| w(s)).collect::<Result<_, _>>()?;
                c.dest = w(&c.dest)?;
                c.from = ow(&c.from)?;
                c.chown = ow(&c.chown)?;
                c.chmod = ow(&c.chmod)?;
                c.checksum = ow(&c.checksum)?;
                c.exclude = c.exclude.iter().map(|s| w(s)).collect::<Result<_, _>>()?;
                let mut body_lex = *lex;
                body_lex.skip_process_quotes = true;
                for sc in &mut c.source_contents {
                    if sc.expand {
                        sc.data = body_lex.process_word(&sc.data, env)?;
                    }
                }
                if matches!(self.kind, InstructionKind::Add(_)) {
                    InstructionKind::Add(c)
                } else {
                    InstructionKind::Copy(c)
                }
            }
            InstructionKind::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(lex.process_words(p, env)?);
                }
                InstructionKind::Expose(out)
            }
            InstructionKind::User(s) => InstructionKind::User(w(s)?),
            InstructionKind::Workdir(s) => InstructionKind::Workdir(w(s)?),
            InstructionKind::Stopsignal(s) => InstructionKind::Stopsignal(w(s)?),
            InstructionKind::Volume(v) => {
                InstructionKind::Volume(v.iter().map(|s| w(s)).collect::<Result<_, _>>()?)
            }
            InstructionKind::Run(r) => {
                let mut r = r.clone();
                for m in &mut r.mounts {
                    m.expand(&w)?;
                }
                InstructionKind::Run(r)
            }
            other => other.clone(),
        })
    }
}

#[cfg(test)]
mod tests;
