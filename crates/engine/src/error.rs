use berth_oci::layer::LayerError;
use berth_oci::reference::ReferenceError;
use berth_store::StoreError;

/// Everything an engine call can fail with. Messages are Docker's where Docker has one, and
/// otherwise name the thing that was wrong and what to do about it.
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
    /// A container runtime failure; [`berth_runtime::Error::exit_code`] gives Docker's code.
    #[error("{0}")]
    Runtime(berth_runtime::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
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
    #[error("{0}")]
    Download(String),
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
            EngineError::ImageNotFound(_) | EngineError::ContainerNotFound(_) => {
                ErrorClass::NotFound
            }
            EngineError::Store(S::ImageNotFound(_)) => ErrorClass::NotFound,
            EngineError::Store(S::NeedsRoot(_)) => ErrorClass::PermissionDenied,
            EngineError::Store(S::NoSpace(_)) => ErrorClass::Unavailable,
            EngineError::Store(_) => ErrorClass::Internal,
            EngineError::Reference(_) => ErrorClass::InvalidArgument,
            EngineError::Conflict(_) => ErrorClass::Conflict,
            EngineError::InvalidArgument(_) | EngineError::InvalidArchive(_) => {
                ErrorClass::InvalidArgument
            }
            EngineError::Limit(_) => ErrorClass::InvalidArgument,
            EngineError::Download(_) => ErrorClass::Unavailable,
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
