//! # berth-dockerfile
//!
//! A pure Dockerfile parser for berth: it turns the text of a Dockerfile into
//! instructions with their line numbers, expands variables exactly as Docker's
//! shell lexer does, and matches `.dockerignore` patterns. It performs no I/O
//! beyond reading the strings it is given; the builder (a later crate)
//! consumes what it produces.
//!
//! Layers, bottom to top:
//!
//! - [`parse`] → [`Ast`]: BuildKit-compatible raw instructions ([`Node`]) with
//!   their line ranges. Handles parser directives (`# syntax=`, `# escape=`,
//!   `# check=`), line continuations with comments and blank lines inside
//!   them, JSON (exec) and shell forms, heredocs, ONBUILD and `--flags`.
//!   [`dump()`] renders an [`Ast`] in BuildKit's `Dump` format.
//! - [`parse_dockerfile`] → [`Dockerfile`]: typed [`Stage`]s of typed
//!   [`Instruction`]s (RUN with its mounts, COPY/ADD with their options,
//!   HEALTHCHECK with its durations …), validated, with errors that name the
//!   line and column, quote the line and say how to fix it.
//! - [`shell::Lexer`]: `$V`, `${V:-w}`, `${V#p}`, `${V/a/b}` … and word
//!   splitting, as BuildKit's `shell.Lex`.
//! - [`scope`]: ARG/ENV scoping rules a builder needs (global ARGs before
//!   FROM, re-declaration inside stages, build args, predefined proxy and
//!   platform args, ENV taking effect on the next instruction).
//! - [`ignore`]: `.dockerignore` matching.
//!
//! ```
//! let df = berth_dockerfile::parse_dockerfile("FROM alpine AS base\nRUN echo hi\n").unwrap();
//! assert_eq!(df.stages[0].name.as_deref(), Some("base"));
//! ```

pub mod directives;
pub mod dump;
pub mod error;
pub mod heredoc;
pub mod ignore;
pub mod instructions;
pub mod parser;
pub mod scope;
pub mod shell;

pub use directives::{CheckDirective, Directives};
pub use dump::dump;
pub use error::{Error, ErrorKind};
pub use heredoc::Heredoc;
pub use instructions::{
    parse_dockerfile, Add, ArgDecl, Copy, Dockerfile, Healthcheck, HealthcheckTest, Instruction,
    InstructionKind, Mount, MountType, Run, ShellOrExec, SourceContent, Stage,
};
pub use parser::{parse, Ast, Node, Warning};
pub use shell::{Env, Lexer, ShellError};
