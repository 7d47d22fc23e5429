//! Error types of the signaling layer.

/// Storage failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The database URL is neither `sqlite:` nor `postgres://`.
    #[error("unsupported database URL (use sqlite://PATH or postgres://...)")]
    UnsupportedUrl,
    /// A uniqueness rule refused the write and no existing row explains it.
    #[error("conflicting row")]
    Conflict,
    /// The database said no.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Failures of the signaling service as a whole (start-up, admin commands).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalingError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No such partner (or already revoked).
    #[error("no such partner: {0}")]
    NoSuchPartner(String),
    /// An invalid argument.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A stored signing key is unreadable.
    #[error("stored signing key {0} is corrupt")]
    CorruptKey(String),
}
