use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("No such image: {0}")]
    ImageNotFound(String),
    #[error("blob {0} is missing from the content store")]
    BlobMissing(String),
    #[error("corrupt store record: {0}")]
    Corrupt(String),
    /// The caller may not open the store (it is root's alone, mode 0700).
    #[error("permission denied on berth's store {}: berth needs root; run it as root (for example with sudo)", .0.display())]
    NeedsRoot(PathBuf),
    #[error("no space left on device while writing {0}: free some space and retry")]
    NoSpace(String),
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        let context = context.into();
        if source.raw_os_error() == Some(28) {
            return StoreError::NoSpace(context);
        }
        StoreError::Io { context, source }
    }
}

pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::io(context(), e))
    }
}
