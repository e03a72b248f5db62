//! The one error type of the model crate.

use std::path::PathBuf;

/// What can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The ONNX file is not a model we can read (truncated, not protobuf, no weights).
    #[error("{path} is not a usable ONNX voice: {reason}")]
    CorruptOnnx {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A voice's JSON config is missing, malformed or disagrees with its weights.
    #[error("{path}: {reason}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The weights do not have the tensors or shapes the architecture needs.
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// A request the model cannot serve (unknown speaker, bad id, empty input).
    #[error("{0}")]
    InvalidInput(String),
    /// An error inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result with the model crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
