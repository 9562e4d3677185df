//! What the builder hands its host once the image's layers and config are final, before the
//! image is written: the host may check the result (berth's engine runs the Python
//! requirement checks), report warnings, refuse the image (`--strict`), and attach records
//! to it (provenance, an SBOM) that are committed with the image.

use crate::{BuildError, Builder, State};
use berth_dockerfile::instructions::ShellOrExec;
use berth_dockerfile::InstructionKind;
use berth_oci::image::ImageConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The finished image, before it is written.
pub struct Finished<'a> {
    /// The image ID (`sha256:` of the config) the image will have.
    pub image_id: String,
    pub config: &'a ImageConfig,
    /// The image's unpacked layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    /// The final stage's base image as the Dockerfile named it (normalised) and its image ID;
    /// `None` for `FROM scratch`.
    pub base: Option<(String, String)>,
    /// Every RUN of the stages built, with its first line: the command (argv joined with
    /// spaces for the exec form) and its heredoc bodies.
    pub runs: Vec<(usize, String)>,
    pub context: Option<PathBuf>,
    /// The context's regular files as the build sees them (`.dockerignore` applied).
    pub context_files: Vec<String>,
    /// `sha256:` of the context as the build sees it: paths, types, modes, link targets and
    /// contents (never owners or mtimes).
    pub context_digest: Option<String>,
    pub dockerfile: &'a str,
    /// The Dockerfile's name for messages (`Dockerfile`, `docker/Dockerfile.prod`).
    pub dockerfile_name: &'a str,
    /// The build arguments the user gave (`--build-arg`); never secrets.
    pub build_args: &'a BTreeMap<String, String>,
}

/// A record stored with the image: its media type and bytes.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// The host's answer.
#[derive(Debug, Clone, Default)]
pub struct Finish {
    /// Lines the user should read (the build still succeeds).
    pub warnings: Vec<String>,
    pub attachments: Vec<Attachment>,
}

impl Builder<'_> {
    /// Asks the host about the finished image (see [`crate::Host::finish`]).
    pub(crate) fn finish_with_host(
        &mut self,
        st: &State,
        config: &ImageConfig,
        image_id: String,
    ) -> Result<Finish, BuildError> {
        let store_layers: Vec<PathBuf> = st
            .layers
            .iter()
            .map(|l| self.layer_root.join(l.chain_id.hex()))
            .collect();
        let mut runs = Vec::new();
        for stage in &self.df.stages {
            for inst in &stage.instructions {
                if let InstructionKind::Run(r) = &inst.kind {
                    let mut text = match &r.cmd {
                        ShellOrExec::Shell(s) => s.clone(),
                        ShellOrExec::Exec(v) => v.join(" "),
                    };
                    for h in &r.heredocs {
                        text.push('\n');
                        text.push_str(&h.content);
                    }
                    runs.push((inst.start_line, text));
                }
            }
        }
        let (context_files, context_digest) = if self.ctx.root.is_some() {
            self.ctx
                .load()
                .map_err(|e| BuildError::io("reading the build context".into(), e))?;
            let files = self
                .ctx
                .files()
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>();
            let digest = self
                .ctx
                .content_key("", None)
                .map_err(|e| BuildError::io("hashing the build context".into(), e))?;
            (files, Some(format!("sha256:{digest}")))
        } else {
            (Vec::new(), None)
        };
        let dockerfile = std::mem::take(&mut self.dockerfile_text);
        let name = std::mem::take(&mut self.dockerfile_name);
        let finished = Finished {
            image_id,
            config,
            layers: store_layers,
            base: st.base.clone(),
            runs,
            context: self.ctx.root.clone(),
            context_files,
            context_digest,
            dockerfile: &dockerfile,
            dockerfile_name: &name,
            build_args: &self.opts.build_args,
        };
        let out = self.host.finish(&finished);
        self.dockerfile_text = dockerfile;
        self.dockerfile_name = name;
        out
    }
}
