//! Errors of the registry client.

use crate::error::ErrorCode;
use crate::reference::Digest;

/// What can go wrong talking to a registry. The `Display` texts follow
/// Docker's wording where Docker has one.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Credentials were refused (wrong user name or password or token).
    #[error("unauthorized: incorrect username or password ({registry})")]
    Unauthorized { registry: String, message: String },
    /// The repository does not exist or the caller may not pull it.
    #[error("pull access denied for {repository}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied")]
    PullAccessDenied { repository: String },
    /// A push (or another request that needs an identity) was refused and no
    /// credentials were given: log in first.
    #[error("unauthorized: authentication required ({registry}): log in with `login {registry}`")]
    AuthenticationRequired { registry: String },
    /// The caller may not push to the repository.
    #[error("denied: requested access to the resource is denied ({repository})")]
    PushAccessDenied { repository: String },
    /// No manifest with that tag or digest.
    #[error("manifest for {repository}:{reference} not found: manifest unknown: manifest unknown")]
    ManifestUnknown {
        repository: String,
        reference: String,
    },
    #[error("blob unknown: {digest} in {repository}")]
    BlobUnknown { repository: String, digest: Digest },
    /// Content did not hash to the digest it was asked for.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// The registry could not be reached at all.
    #[error("registry {registry} is unreachable: {message}")]
    Unreachable { registry: String, message: String },
    /// Any other error the registry answered with.
    #[error("{registry} answered {status}{}: {message}", code.map(|c| format!(" {c}")).unwrap_or_default())]
    Registry {
        registry: String,
        status: u16,
        code: Option<ErrorCode>,
        message: String,
    },
    /// The registry did not answer in time, or a transfer stalled; the
    /// message names the registry and the limit.
    #[error("{message}")]
    Timeout { registry: String, message: String },
    /// A redirect (or a name met on the way) that the client refuses to
    /// follow: another scheme, too many hops, a link-local or metadata address.
    #[error("registry {registry}: {message}")]
    Refused { registry: String, message: String },
    #[error("no manifest in the index matches platform {0}")]
    NoMatchingPlatform(String),
    #[error("invalid response from {registry}: {message}")]
    InvalidResponse { registry: String, message: String },
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// Is this a failure worth retrying (the connection broke)?
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Http(e) => {
                e.is_connect() || e.is_timeout() || e.is_body() || e.is_request()
            }
            ClientError::Io(_) => true,
            _ => false,
        }
    }
}

impl From<ClientError> for std::io::Error {
    fn from(e: ClientError) -> Self {
        let kind = match &e {
            ClientError::DigestMismatch { .. } => std::io::ErrorKind::InvalidData,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}
