//! Errors: [`ApiError`] is what a client sees (an SLS-shaped JSON error with the status real
//! SLS uses, docs/sls-protocol.md §11 "Errors and retries"); [`EmulatorError`] is what the
//! embedding program sees when the emulator cannot start or stops abnormally. Nothing here
//! panics on bad input.

use std::borrow::Cow;
use std::path::PathBuf;

/// An error answered to a client: `{"errorCode","errorMessage","requestId"}` with `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// SLS `errorCode`.
    pub code: Cow<'static, str>,
    /// SLS `errorMessage`.
    pub message: String,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
        }
    }

    /// 400 `ParameterInvalid`.
    pub fn parameter_invalid(message: impl Into<String>) -> Self {
        Self::new(400, "ParameterInvalid", message)
    }

    /// 404 `ProjectNotExist`.
    pub fn project_not_exist(project: &str) -> Self {
        Self::new(
            404,
            "ProjectNotExist",
            format!("The Project does not exist : {project}"),
        )
    }

    /// 404 `LogStoreNotExist`.
    pub fn logstore_not_exist(logstore: &str) -> Self {
        Self::new(
            404,
            "LogStoreNotExist",
            format!("logstore {logstore} does not exist"),
        )
    }

    /// 400 `ShardNotExist`.
    pub fn shard_not_exist(shard: &str) -> Self {
        Self::new(
            400,
            "ShardNotExist",
            format!("shard {shard} does not exist"),
        )
    }

    /// 404 `ConsumerGroupNotExist`.
    pub fn group_not_exist(group: &str) -> Self {
        Self::new(
            404,
            "ConsumerGroupNotExist",
            format!("consumer group {group} does not exist"),
        )
    }

    /// 400 `InvalidCursor`.
    pub fn invalid_cursor(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidCursor", message)
    }

    /// 400 `PostBodyInvalid`.
    pub fn post_body_invalid(message: impl Into<String>) -> Self {
        Self::new(400, "PostBodyInvalid", message)
    }

    /// 500 `InternalServerError` (a bug or an I/O failure on the emulator side).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalServerError", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Why the emulator could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (is the port in use? use port 0 for any free port)")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading or writing the data directory failed.
    #[error("data directory {}: {source}", path.display())]
    DataDir {
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file in the data directory is not what the emulator wrote.
    #[error("data directory {}: {what} (move the directory away to start empty)", path.display())]
    Corrupt {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// The configuration is invalid.
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    /// An SLS-level operation used during start-up (pre-creating a logstore) failed.
    #[error("cannot set up {what}: {source}")]
    Setup {
        /// What was being set up.
        what: String,
        /// The SLS error.
        source: ApiError,
    },
    /// The server task panicked or was cancelled.
    #[error("emulator task failed: {0}")]
    Task(String),
}
