//! The one error type of the performance layer.

/// What can go wrong planning or running for a device.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--device` / `VIVACE_DEVICE` is not `auto|cpu|cuda[:N]|metal[:N]`.
    #[error("unknown device `{0}`: use auto, cpu, cuda, cuda:N, metal or metal:N")]
    BadDevice(String),
    /// A device the user named could not be started.
    #[error("device {device} is not available: {reason}")]
    DeviceUnavailable {
        /// The device.
        device: String,
        /// Why it failed.
        reason: String,
    },
    /// An environment override has a value we cannot use.
    #[error("{name}={value} is not valid: {expected}")]
    BadOverride {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A precision the device cannot run.
    #[error("precision {precision} is not supported on {device}: {reason}")]
    Unsupported {
        /// The precision asked for.
        precision: String,
        /// The device.
        device: String,
        /// Why.
        reason: String,
    },
}

/// Result with the performance layer's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
