//! ARG and ENV scoping, as the builder applies it:
//!
//! - ARGs before the first FROM form the global scope. They (and the
//!   predefined platform args) can be used in FROM lines, but are not visible
//!   inside a stage unless re-declared there with `ARG NAME` (no default
//!   needed: the global value is inherited).
//! - A build arg (`--build-arg NAME=value`) overrides the default of a
//!   declared ARG. Build args that are never declared are unused, except the
//!   predefined proxy args (`HTTP_PROXY` …), which reach RUN without a
//!   declaration and are kept out of the image.
//! - Platform args (`TARGETPLATFORM`, `BUILDARCH` …) are set automatically in
//!   the global scope, and in a stage once declared with `ARG`.
//! - ENV overrides an ARG of the same name. An instruction is expanded with
//!   the environment in effect before it, so `ENV A=1 B=$A` sees the old `A`:
//!   ENV takes effect on the next instruction.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use crate::instructions::{Instruction, InstructionKind, Stage};
use crate::shell::{Env, Lexer};

/// Build args that are predefined: usable without an ARG declaration and
/// never written into the image.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The automatic platform args.
pub const PLATFORM_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// Whether `name` is one of the predefined proxy args.
pub fn is_proxy_arg(name: &str) -> bool {
    PROXY_ARGS.contains(&name)
}

/// An OS/architecture/variant triple (`linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64` …
    pub arch: String,
    /// `v7`, `v8` … or empty.
    pub variant: String,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?.to_ascii_lowercase();
        let arch = parts.next().filter(|p| !p.is_empty())?.to_ascii_lowercase();
        let variant = parts.next().unwrap_or_default().to_ascii_lowercase();
        if parts.next().is_some() {
            return None;
        }
        Some(Platform { os, arch, variant })
    }

    /// The platform of the machine this runs on (Linux assumed).
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            arch: berth_oci::image::host_architecture().into(),
            variant: String::new(),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// The values of the platform args for a build.
pub fn platform_args(build: &Platform, target: &Platform) -> Vec<(String, String)> {
    vec![
        ("BUILDPLATFORM".into(), build.to_string()),
        ("BUILDOS".into(), build.os.clone()),
        ("BUILDARCH".into(), build.arch.clone()),
        ("BUILDVARIANT".into(), build.variant.clone()),
        ("TARGETPLATFORM".into(), target.to_string()),
        ("TARGETOS".into(), target.os.clone()),
        ("TARGETARCH".into(), target.arch.clone()),
        ("TARGETVARIANT".into(), target.variant.clone()),
    ]
}

/// What the builder was given: build args and the platform args.
#[derive(Debug, Clone, Default)]
pub struct BuildInputs {
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Platform arg values (see [`platform_args`]).
    pub builtins: Vec<(String, String)>,
}

impl BuildInputs {
    fn builtin(&self, name: &str) -> Option<String> {
        self.builtins.as_slice().get_var(name)
    }
}

/// The global (pre-FROM) ARG scope.
#[derive(Debug, Clone, Default)]
pub struct GlobalScope {
    values: Vec<(String, String)>,
    declared: BTreeSet<String>,
    used_build_args: BTreeSet<String>,
}

impl Env for GlobalScope {
    fn get_var(&self, name: &str) -> Option<String> {
        self.values.as_slice().get_var(name)
    }
}

impl GlobalScope {
    /// Evaluates the meta ARGs (each expanded with the args before it).
    pub fn new(
        meta_args: &[Instruction],
        inputs: &BuildInputs,
        lex: &Lexer,
    ) -> Result<Self, Error> {
        let mut scope = GlobalScope {
            values: inputs.builtins.clone(),
            ..Default::default()
        };
        for inst in meta_args {
            let inst = inst.expand(lex, &scope)?;
            if let InstructionKind::Arg(decls) = &inst.kind {
                for d in decls {
                    scope.declared.insert(d.name.clone());
                    let value = match inputs.build_args.get(&d.name) {
                        Some(v) => {
                            scope.used_build_args.insert(d.name.clone());
                            Some(v.clone())
                        }
                        None => d.default.clone(),
                    };
                    if let Some(v) = value {
                        scope.values.push((d.name.clone(), v));
                    }
                }
            }
        }
        Ok(scope)
    }

    /// Whether `name` was declared before the first FROM.
    pub fn is_declared(&self, name: &str) -> bool {
        self.declared.contains(name)
    }

    /// Build args consumed by the global scope.
    pub fn used_build_args(&self) -> &BTreeSet<String> {
        &self.used_build_args
    }

    /// The stage's base and platform with global args expanded.
    pub fn expand_from(
        &self,
        stage: &Stage,
        lex: &Lexer,
    ) -> Result<(String, Option<String>), Error> {
        let fail = |e| {
            let mut err = Error::new(crate::ErrorKind::Shell(e));
            err.line = stage.start_line;
            err.end_line = stage.end_line;
            err.column = 1;
            err.source_line = stage.original.clone();
            err
        };
        let base = lex.process_word(&stage.base, self).map_err(fail)?;
        let platform = match &stage.platform {
            Some(p) => Some(lex.process_word(p, self).map_err(fail)?),
            None => None,
        };
        Ok((base, platform))
    }
}

/// The variables in effect inside one stage.
#[derive(Debug, Clone, Default)]
pub struct StageScope {
    env: Vec<(String, String)>,
    args: Vec<(String, String)>,
    declared: BTreeSet<String>,
    used_build_args: BTreeSet<String>,
}

/// Lookup order: ENV first, then ARG.
impl Env for StageScope {
    fn get_var(&self, name: &str) -> Option<String> {
        self.env
            .as_slice()
            .get_var(name)
            .or_else(|| self.args.as_slice().get_var(name))
    }
}

fn set(list: &mut Vec<(String, String)>, k: &str, v: String) {
    match list.iter_mut().find(|(n, _)| n == k) {
        Some(e) => e.1 = v,
        None => list.push((k.to_string(), v)),
    }
}

impl StageScope {
    /// A stage starting from its base image's `Env` (`KEY=value` strings).
    pub fn new(image_env: &[String]) -> Self {
        let mut s = StageScope::default();
        for kv in image_env {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            set(&mut s.env, k, v.to_string());
        }
        s
    }

    /// Expands `inst` with the current scope, then applies its effect (ENV,
    /// ARG) so that it is visible from the next instruction on. Returns the
    /// expanded instruction.
    pub fn step(
        &mut self,
        inst: &Instruction,
        lex: &Lexer,
        global: &GlobalScope,
        inputs: &BuildInputs,
    ) -> Result<Instruction, Error> {
        let expanded = inst.expand(lex, self)?;
        match &expanded.kind {
            InstructionKind::Env(pairs) => {
                for (k, v) in pairs {
                    set(&mut self.env, k, v.clone());
                }
            }
            InstructionKind::Arg(decls) => {
                for d in decls {
                    self.declared.insert(d.name.clone());
                    let value = if let Some(v) = inputs.build_args.get(&d.name) {
                        self.used_build_args.insert(d.name.clone());
                        Some(v.clone())
                    } else if d.default.is_some() {
                        d.default.clone()
                    } else if global.is_declared(&d.name) {
                        global.get_var(&d.name)
                    } else {
                        inputs.builtin(&d.name)
                    };
                    match value {
                        Some(v) => set(&mut self.args, &d.name, v),
                        None => self.args.retain(|(n, _)| n != &d.name),
                    }
                }
            }
            _ => {}
        }
        Ok(expanded)
    }

    /// ENV values: what goes into the image config.
    pub fn image_env(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// The environment of a RUN: ARG values, then ENV (which wins), plus any
    /// proxy build args given (used, but not committed to the image).
    pub fn run_env(&self, inputs: &BuildInputs) -> Vec<String> {
        let mut all: Vec<(String, String)> = Vec::new();
        for (k, v) in &inputs.build_args {
            if is_proxy_arg(k) && !self.declared.contains(k) {
                set(&mut all, k, v.clone());
            }
        }
        for (k, v) in self.args.iter().chain(self.env.iter()) {
            set(&mut all, k, v.clone());
        }
        all.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// The ARG values in scope (they change RUN's cache key).
    pub fn args(&self) -> &[(String, String)] {
        &self.args
    }

    /// Build args consumed by ARG declarations in this stage.
    pub fn used_build_args(&self) -> &BTreeSet<String> {
        &self.used_build_args
    }
}

/// Build args that no ARG consumed (neither global nor in the given
/// stages), proxy args excepted: BuildKit warns about these.
pub fn unused_build_args<'a>(
    inputs: &'a BuildInputs,
    global: &GlobalScope,
    stages: &[&StageScope],
) -> Vec<&'a str> {
    inputs
        .build_args
        .keys()
        .filter(|k| {
            !is_proxy_arg(k)
                && !global.used_build_args.contains(*k)
                && !stages.iter().any(|s| s.used_build_args.contains(*k))
        })
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_dockerfile;

    fn inputs(args: &[(&str, &str)]) -> BuildInputs {
        BuildInputs {
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            builtins: platform_args(
                &Platform::parse("linux/amd64").unwrap(),
                &Platform::parse("linux/arm64/v8").unwrap(),
            ),
        }
    }

    fn run_stage(src: &str, args: &[(&str, &str)]) -> (GlobalScope, StageScope, Vec<Instruction>) {
        let df = parse_dockerfile(src).unwrap();
        let lex = df.lexer();
        let inp = inputs(args);
        let global = GlobalScope::new(&df.meta_args, &inp, &lex).unwrap();
        let mut scope = StageScope::new(&["PATH=/bin".to_string()]);
        let mut out = Vec::new();
        for i in &df.stages[0].instructions {
            out.push(scope.step(i, &lex, &global, &inp).unwrap());
        }
        (global, scope, out)
    }

    #[test]
    fn global_args_expand_from_and_need_redeclaring() {
        let src = "ARG TAG=3.19\nARG IMG=alpine:${TAG}\nFROM --platform=$BUILDPLATFORM $IMG\nRUN x\nENV A=$TAG\nARG TAG\nENV B=$TAG\n";
        let df = parse_dockerfile(src).unwrap();
        let lex = Lexer::new('\\');
        let inp = inputs(&[]);
        let global = GlobalScope::new(&df.meta_args, &inp, &lex).unwrap();
        let (base, platform) = global.expand_from(&df.stages[0], &lex).unwrap();
        assert_eq!(base, "alpine:3.19");
        assert_eq!(platform.as_deref(), Some("linux/amd64"));
        let (_, scope, _) = run_stage(src, &[]);
        assert_eq!(scope.image_env(), vec!["PATH=/bin", "A=", "B=3.19"]);
    }

    #[test]
    fn build_args_override_defaults() {
        let (_, scope, _) = run_stage(
            "ARG V=1\nFROM a\nARG V\nARG W=2\nENV X=$V$W\n",
            &[("V", "9"), ("W", "8")],
        );
        assert_eq!(scope.image_env(), vec!["PATH=/bin", "X=98"]);
    }

    #[test]
    fn env_takes_effect_on_next_instruction() {
        let (_, scope, out) = run_stage("FROM a\nENV A=1\nENV A=2 B=$A\nWORKDIR /$B\n", &[]);
        assert_eq!(scope.image_env(), vec!["PATH=/bin", "A=2", "B=1"]);
        assert_eq!(out[2].kind, InstructionKind::Workdir("/1".into()));
    }

    #[test]
    fn env_overrides_arg() {
        let (_, scope, out) = run_stage(
            "FROM a\nARG X=arg\nENV X=env\nWORKDIR /$X\n",
            &[("X", "cli")],
        );
        assert_eq!(out[2].kind, InstructionKind::Workdir("/env".into()));
        assert!(scope.run_env(&inputs(&[])).contains(&"X=env".to_string()));
    }

    #[test]
    fn platform_args_need_declaration_in_stage() {
        let (_, _, out) = run_stage(
            "FROM a\nWORKDIR /$TARGETARCH\nARG TARGETARCH\nWORKDIR /$TARGETARCH\n",
            &[],
        );
        assert_eq!(out[0].kind, InstructionKind::Workdir("/".into()));
        assert_eq!(out[2].kind, InstructionKind::Workdir("/arm64".into()));
    }

    #[test]
    fn proxy_args_reach_run_only() {
        let inp = inputs(&[("HTTP_PROXY", "http://p:3128"), ("UNUSED", "1")]);
        let (global, scope, _) = run_stage("FROM a\nRUN true\n", &[]);
        assert!(scope
            .run_env(&inp)
            .contains(&"HTTP_PROXY=http://p:3128".to_string()));
        assert!(!scope
            .image_env()
            .iter()
            .any(|e| e.starts_with("HTTP_PROXY")));
        assert_eq!(unused_build_args(&inp, &global, &[&scope]), vec!["UNUSED"]);
    }

    #[test]
    fn platform_parsing() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!(Platform::parse("linux").is_none());
    }
}
