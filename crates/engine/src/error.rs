use berth_oci::layer::LayerError;
use berth_oci::reference::ReferenceError;
use berth_store::StoreError;

/// Everything an engine call can fail with. Messages are Docker's where Docker has one, and
/// otherwise name the thing that was wrong and what to do about it. Every variant has one
/// [`ErrorClass`] ([`EngineError::class`]); the typed variants keep what front ends need beyond
/// the class (the container a name is taken by, the registry's own error).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("No such image: {0}")]
    ImageNotFound(String),
    #[error("No such container: {0}")]
    ContainerNotFound(String),
    /// podman's words for a pod that does not exist (404).
    #[error("no pod with name or ID {0} found: no such pod")]
    PodNotFound(String),
    /// dockerd's words for a network that does not exist (404).
    #[error("network {0} not found")]
    NetworkNotFound(String),
    /// dockerd's words for a volume that does not exist (404).
    #[error("get {0}: no such volume")]
    VolumeNotFound(String),
    /// An exec ID that names no exec instance (404).
    #[error("No such exec instance: {0}")]
    ExecNotFound(String),
    /// Any other object that does not exist (a path in a container, a local tag to push);
    /// the message is Docker's.
    #[error("{0}")]
    NotFound(String),
    /// The container (full ID) must run for the request, and does not.
    #[error("Container {0} is not running")]
    NotRunning(String),
    /// Another container holds the name.
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    /// An image that containers use or several repositories reference; the message is
    /// Docker's "conflict: unable to …" line.
    #[error("{0}")]
    ImageInUse(String),
    /// A container runtime failure; [`berth_runtime::Error::exit_code`] gives Docker's code.
    #[error("{0}")]
    Runtime(berth_runtime::Error),
    /// The request conflicts with an object's state (a running container to remove, a port
    /// or endpoint taken).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// `--gpus` and CDI devices: no driver, an unknown GPU, a CDI spec that does not validate.
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
    /// The host or the object is not in a state the request needs (no init binary installed,
    /// a container paused or restarting).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller gave up (a cancelled pull).
    #[error("{0}")]
    Canceled(String),
    /// A broken invariant: a stored record that does not parse, a value that does not
    /// serialise. Not the user's doing.
    #[error("{0}")]
    Internal(String),
    #[error("{context}: {source}")]
    Layer {
        context: String,
        #[source]
        source: LayerError,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    /// A download that failed (a registry's content that does not verify, a URL that does not
    /// answer).
    #[error("{0}")]
    Download(String),
    /// A registry client error. `message` is the line users see (Docker's words); `cause` is
    /// the client's typed error, which decides the class (401, 403, 404, unreachable, …).
    /// `cause` is deliberately not the error's `source()`: its text is already in `message`,
    /// and front ends that print a cause chain would say it twice.
    #[error("{message}")]
    Registry {
        message: String,
        cause: berth_registry::client::ClientError,
    },
    /// `registry serve` / `registry gc`: configuration, storage.
    #[error(transparent)]
    RegistryServer(berth_registry::RegistryError),
    /// A network manager failure other than not-found / conflict / bad input, which map to
    /// those variants.
    #[error(transparent)]
    Network(berth_network::Error),
    /// A failed build, classed by [`berth_build::BuildError::class`].
    #[error(transparent)]
    Build(#[from] berth_build::BuildError),
    /// A bound on hostile input was hit: an image too deep, a layer that unpacks too far
    /// (see the `limits` module).
    #[error("{0}")]
    Limit(String),
}

/// The closed set of error classes at the engine boundary (containerd's `errdefs`). Front ends
/// map a class to their own codes in one place: the CLI to exit statuses, the Engine API server
/// to HTTP statuses (404, 409, 400, 412, 401/403, 503, 499, 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// No such container, image, network, volume, exec instance.
    NotFound,
    /// The name or object exists, or the request conflicts with the object's state
    /// (removing a running container without force, an image in use).
    Conflict,
    /// The request itself is wrong: a bad flag value, an invalid name or reference.
    InvalidArgument,
    /// The object is not in the state the request needs and no retry will help until it is
    /// (for example, not running).
    FailedPrecondition,
    /// A registry refused the credentials, or none were given.
    Unauthenticated,
    /// The caller may not do this (berth needs root; a registry denied access).
    PermissionDenied,
    /// Something berth depends on is out of reach: a registry, the disk (no space).
    Unavailable,
    /// The caller gave up (a cancelled pull, build or wait).
    Canceled,
    /// Anything else: a bug, corruption, an unexpected I/O error.
    Internal,
}

impl EngineError {
    /// The error's class, which front ends map to their codes.
    pub fn class(&self) -> ErrorClass {
        use berth_store::StoreError as S;
        match self {
            EngineError::ImageNotFound(_)
            | EngineError::ContainerNotFound(_)
            | EngineError::PodNotFound(_)
            | EngineError::NetworkNotFound(_)
            | EngineError::VolumeNotFound(_)
            | EngineError::ExecNotFound(_)
            | EngineError::NotFound(_) => ErrorClass::NotFound,
            EngineError::Store(S::ImageNotFound(_)) => ErrorClass::NotFound,
            EngineError::Store(S::NeedsRoot(_)) => ErrorClass::PermissionDenied,
            EngineError::Store(S::NoSpace(_)) => ErrorClass::Unavailable,
            EngineError::Store(_) => ErrorClass::Internal,
            EngineError::Reference(_) => ErrorClass::InvalidArgument,
            EngineError::NameInUse { .. }
            | EngineError::ImageInUse(_)
            | EngineError::Conflict(_) => ErrorClass::Conflict,
            EngineError::NotRunning(_) | EngineError::FailedPrecondition(_) => {
                ErrorClass::FailedPrecondition
            }
            EngineError::InvalidArgument(_) | EngineError::InvalidArchive(_) => {
                ErrorClass::InvalidArgument
            }
            EngineError::Limit(_) => ErrorClass::InvalidArgument,
            EngineError::Gpu(e) => match e {
                crate::gpu::GpuError::NoDriver { .. } | crate::gpu::GpuError::Driver { .. } => {
                    ErrorClass::FailedPrecondition
                }
                crate::gpu::GpuError::Invalid(_) | crate::gpu::GpuError::Cdi(_) => {
                    ErrorClass::InvalidArgument
                }
            },
            EngineError::Canceled(_) => ErrorClass::Canceled,
            EngineError::Internal(_) => ErrorClass::Internal,
            EngineError::Download(_) => ErrorClass::Unavailable,
            EngineError::Registry { cause, .. } => client_class(cause),
            EngineError::RegistryServer(e) => match e {
                berth_registry::RegistryError::Htpasswd { .. }
                | berth_registry::RegistryError::Tls(_)
                | berth_registry::RegistryError::Config(_) => ErrorClass::InvalidArgument,
                berth_registry::RegistryError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::AddrInUse =>
                {
                    ErrorClass::Conflict
                }
                _ => ErrorClass::Internal,
            },
            EngineError::Network(e) => match e {
                berth_network::Error::NotFound(_) => ErrorClass::NotFound,
                berth_network::Error::Conflict(_) | berth_network::Error::PortInUse(_) => {
                    ErrorClass::Conflict
                }
                berth_network::Error::Invalid(_) => ErrorClass::InvalidArgument,
                _ => ErrorClass::Internal,
            },
            EngineError::Build(e) => match e.class() {
                berth_build::BuildErrorClass::Invalid => ErrorClass::InvalidArgument,
                berth_build::BuildErrorClass::NotFound => ErrorClass::NotFound,
                berth_build::BuildErrorClass::StepFailed => ErrorClass::Internal,
                berth_build::BuildErrorClass::Canceled => ErrorClass::Canceled,
                berth_build::BuildErrorClass::Internal => ErrorClass::Internal,
            },
            EngineError::Runtime(berth_runtime::Error::NotRunning) => {
                ErrorClass::FailedPrecondition
            }
            EngineError::Runtime(berth_runtime::Error::Invalid(_)) => ErrorClass::InvalidArgument,
            EngineError::Runtime(_) | EngineError::Layer { .. } | EngineError::Io { .. } => {
                ErrorClass::Internal
            }
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        if source.raw_os_error() == Some(28) {
            return EngineError::Store(StoreError::NoSpace(context.into()));
        }
        EngineError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the error means "not found" (Docker's 404 class).
    pub fn is_not_found(&self) -> bool {
        self.class() == ErrorClass::NotFound
    }
}

/// The class of a registry client error: the registry's own status where it answered (401,
/// 403, 404, 429/5xx), Unavailable where it could not be reached or did not answer in time.
fn client_class(e: &berth_registry::client::ClientError) -> ErrorClass {
    use berth_registry::client::ClientError as C;
    match e {
        C::Unauthorized { .. } | C::AuthenticationRequired { .. } => ErrorClass::Unauthenticated,
        C::PushAccessDenied { .. } => ErrorClass::PermissionDenied,
        // dockerd answers a pull of a repository it may not read as "not found" (its
        // `notFoundError`), as it does an unknown manifest.
        C::PullAccessDenied { .. }
        | C::ManifestUnknown { .. }
        | C::BlobUnknown { .. }
        | C::NoMatchingPlatform(_) => ErrorClass::NotFound,
        C::Unreachable { .. } | C::Timeout { .. } | C::Refused { .. } => ErrorClass::Unavailable,
        C::InvalidResponse { .. } | C::Io(_) => ErrorClass::Unavailable,
        C::Registry { status, .. } => http_status_class(*status),
        C::Http(e) => match e.status() {
            Some(s) => http_status_class(s.as_u16()),
            None => ErrorClass::Unavailable,
        },
        C::InvalidArgument(_) => ErrorClass::InvalidArgument,
        C::DigestMismatch { .. } | C::Credentials(_) => ErrorClass::Internal,
    }
}

fn http_status_class(status: u16) -> ErrorClass {
    match status {
        401 => ErrorClass::Unauthenticated,
        403 => ErrorClass::PermissionDenied,
        404 => ErrorClass::NotFound,
        400 | 405 | 413 | 414 | 415 | 416 | 422 => ErrorClass::InvalidArgument,
        409 => ErrorClass::Conflict,
        408 | 429 | 500..=599 => ErrorClass::Unavailable,
        _ => ErrorClass::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_registry::client::ClientError;

    fn registry(cause: ClientError) -> EngineError {
        EngineError::Registry {
            message: cause.to_string(),
            cause,
        }
    }

    #[test]
    fn each_variant_has_its_class() {
        use ErrorClass as C;
        let cases: Vec<(EngineError, ErrorClass)> = vec![
            (EngineError::ImageNotFound("x".into()), C::NotFound),
            (EngineError::ContainerNotFound("x".into()), C::NotFound),
            (EngineError::NetworkNotFound("x".into()), C::NotFound),
            (EngineError::VolumeNotFound("x".into()), C::NotFound),
            (EngineError::ExecNotFound("x".into()), C::NotFound),
            (EngineError::NotFound("x".into()), C::NotFound),
            (StoreError::ImageNotFound("x".into()).into(), C::NotFound),
            (
                StoreError::NeedsRoot("/r".into()).into(),
                C::PermissionDenied,
            ),
            (StoreError::NoSpace("x".into()).into(), C::Unavailable),
            (StoreError::Corrupt("x".into()).into(), C::Internal),
            (
                berth_oci::reference::Reference::parse("UPPER")
                    .unwrap_err()
                    .into(),
                C::InvalidArgument,
            ),
            (
                EngineError::NameInUse {
                    name: "a".into(),
                    id: "b".into(),
                },
                C::Conflict,
            ),
            (EngineError::ImageInUse("x".into()), C::Conflict),
            (EngineError::Conflict("x".into()), C::Conflict),
            (EngineError::NotRunning("x".into()), C::FailedPrecondition),
            (
                EngineError::FailedPrecondition("x".into()),
                C::FailedPrecondition,
            ),
            (
                EngineError::Runtime(berth_runtime::Error::NotRunning),
                C::FailedPrecondition,
            ),
            (
                EngineError::Runtime(berth_runtime::Error::Invalid("x".into())),
                C::InvalidArgument,
            ),
            (
                EngineError::Runtime(berth_runtime::Error::Timeout),
                C::Internal,
            ),
            (EngineError::InvalidArgument("x".into()), C::InvalidArgument),
            (EngineError::InvalidArchive("x".into()), C::InvalidArgument),
            (EngineError::Limit("x".into()), C::InvalidArgument),
            (EngineError::Canceled("x".into()), C::Canceled),
            (EngineError::Internal("x".into()), C::Internal),
            (EngineError::Download("x".into()), C::Unavailable),
            (
                EngineError::io("x", std::io::Error::other("boom")),
                C::Internal,
            ),
            (
                EngineError::io("x", std::io::Error::from_raw_os_error(28)),
                C::Unavailable,
            ),
            (
                EngineError::RegistryServer(berth_registry::RegistryError::Config("x".into())),
                C::InvalidArgument,
            ),
            (
                EngineError::RegistryServer(berth_registry::RegistryError::Corrupt("x".into())),
                C::Internal,
            ),
            (
                EngineError::Network(berth_network::Error::NotFound("x".into())),
                C::NotFound,
            ),
            (
                EngineError::Network(berth_network::Error::PortInUse("x".into())),
                C::Conflict,
            ),
            (
                EngineError::Network(berth_network::Error::Netlink("x".into())),
                C::Internal,
            ),
            (
                berth_build::BuildError::Invalid("x".into()).into(),
                C::InvalidArgument,
            ),
            (
                berth_build::BuildError::NotFound("x".into()).into(),
                C::NotFound,
            ),
            (
                berth_build::BuildError::StepFailed {
                    message: "x".into(),
                    exit_code: 3,
                }
                .into(),
                C::Internal,
            ),
            (berth_build::BuildError::Interrupted.into(), C::Canceled),
            (
                berth_build::BuildError::Failed("x".into()).into(),
                C::Internal,
            ),
        ];
        for (e, class) in cases {
            assert_eq!(e.class(), class, "{e:?}");
            assert_eq!(e.is_not_found(), class == C::NotFound, "{e:?}");
        }
    }

    #[test]
    fn registry_errors_keep_their_cause_and_class() {
        use ErrorClass as C;
        let cases = [
            (
                ClientError::Unauthorized {
                    registry: "r".into(),
                    message: "bad".into(),
                },
                C::Unauthenticated,
            ),
            (
                ClientError::AuthenticationRequired {
                    registry: "r".into(),
                },
                C::Unauthenticated,
            ),
            (
                ClientError::PushAccessDenied {
                    repository: "r".into(),
                },
                C::PermissionDenied,
            ),
            (
                ClientError::PullAccessDenied {
                    repository: "r".into(),
                },
                C::NotFound,
            ),
            (
                ClientError::ManifestUnknown {
                    repository: "r".into(),
                    reference: "t".into(),
                },
                C::NotFound,
            ),
            (
                ClientError::NoMatchingPlatform("linux/s390x".into()),
                C::NotFound,
            ),
            (
                ClientError::Unreachable {
                    registry: "r".into(),
                    message: "connection refused".into(),
                },
                C::Unavailable,
            ),
            (
                ClientError::Timeout {
                    registry: "r".into(),
                    message: "timed out".into(),
                },
                C::Unavailable,
            ),
            (
                ClientError::Registry {
                    registry: "r".into(),
                    status: 403,
                    code: None,
                    message: "no".into(),
                },
                C::PermissionDenied,
            ),
            (
                ClientError::Registry {
                    registry: "r".into(),
                    status: 401,
                    code: None,
                    message: "no".into(),
                },
                C::Unauthenticated,
            ),
            (
                ClientError::Registry {
                    registry: "r".into(),
                    status: 404,
                    code: None,
                    message: "no".into(),
                },
                C::NotFound,
            ),
            (
                ClientError::Registry {
                    registry: "r".into(),
                    status: 503,
                    code: None,
                    message: "later".into(),
                },
                C::Unavailable,
            ),
            (ClientError::InvalidArgument("x".into()), C::InvalidArgument),
        ];
        for (cause, class) in cases {
            let e = registry(cause);
            assert_eq!(e.class(), class, "{e:?}");
        }
        // The engine's conversion keeps the registry's words and the typed cause.
        let e = crate::registry::client_error(ClientError::ManifestUnknown {
            repository: "127.0.0.1:5000/x".into(),
            reference: "latest".into(),
        });
        assert_eq!(
            e.to_string(),
            "manifest for 127.0.0.1:5000/x:latest not found: manifest unknown: manifest unknown"
        );
        assert!(matches!(
            e,
            EngineError::Registry {
                cause: ClientError::ManifestUnknown { .. },
                ..
            }
        ));
        let e = crate::registry::client_error(ClientError::Unauthorized {
            registry: "r".into(),
            message: String::new(),
        });
        assert_eq!(
            e.to_string(),
            "unauthorized: incorrect username or password"
        );
        assert_eq!(e.class(), C::Unauthenticated);
    }

    #[test]
    fn typed_variants_say_dockers_words() {
        assert_eq!(
            EngineError::NetworkNotFound("n1".into()).to_string(),
            "network n1 not found"
        );
        assert_eq!(
            EngineError::VolumeNotFound("v1".into()).to_string(),
            "get v1: no such volume"
        );
        assert_eq!(
            EngineError::ExecNotFound("e1".into()).to_string(),
            "No such exec instance: e1"
        );
        assert_eq!(
            EngineError::NotRunning("abc".into()).to_string(),
            "Container abc is not running"
        );
        assert_eq!(
            EngineError::NameInUse {
                name: "web".into(),
                id: "0123".into()
            }
            .to_string(),
            "Conflict. The container name \"/web\" is already in use by container \"0123\". You have to remove (or rename) that container to be able to reuse that name."
        );
        let step = berth_build::BuildError::StepFailed {
            message: "The command '/bin/sh -c exit 3' returned a non-zero code: 3".into(),
            exit_code: 3,
        };
        assert_eq!(
            EngineError::from(step).to_string(),
            "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
        );
    }
}
