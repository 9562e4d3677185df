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

impl EngineError {
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
        matches!(
            self,
            EngineError::ImageNotFound(_)
                | EngineError::ContainerNotFound(_)
                | EngineError::Store(StoreError::ImageNotFound(_))
        )
    }
}
