//! Which device to run on: `auto|cpu|cuda[:N]|metal[:N]`, tried for real.
//!
//! `auto` creates a CUDA device, then a Metal one, then settles for the CPU;
//! a device that cannot start is skipped with one warning. A device the user
//! named explicitly must start, or it is an error.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the user asked for (`--device`, `VIVACE_DEVICE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceRequest {
    /// The best device that starts.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
    /// Metal device N.
    Metal(usize),
}

impl FromStr for DeviceRequest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::BadDevice(s.to_string());
        let (kind, index) = match s.split_once(':') {
            Some((k, i)) => (k, Some(i.parse::<usize>().map_err(|_| bad())?)),
            None => (s, None),
        };
        match (kind.to_ascii_lowercase().as_str(), index) {
            ("auto", None) => Ok(Self::Auto),
            ("cpu", None) => Ok(Self::Cpu),
            ("cuda", i) => Ok(Self::Cuda(i.unwrap_or(0))),
            ("metal", i) => Ok(Self::Metal(i.unwrap_or(0))),
            _ => Err(bad()),
        }
    }
}

/// The device a plan is for, without the live handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "index", rename_all = "lowercase")]
pub enum DeviceKind {
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
    /// Metal device N.
    Metal(usize),
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
            Self::Metal(i) => write!(f, "metal:{i}"),
        }
    }
}

/// A started device and how it was chosen.
#[derive(Debug, Clone)]
pub struct ChosenDevice {
    /// The live candle device.
    pub device: Device,
    /// Which one it is.
    pub kind: DeviceKind,
    /// Why a better device was not used (for `auto`), if one was tried.
    pub fallback: Option<String>,
}

impl ChosenDevice {
    /// The CPU, chosen directly.
    pub fn cpu() -> Self {
        Self {
            device: Device::Cpu,
            kind: DeviceKind::Cpu,
            fallback: None,
        }
    }
}

/// Starts the requested device (see the module docs for `auto`).
pub fn open(request: DeviceRequest) -> Result<ChosenDevice> {
    let start = |kind: DeviceKind| -> std::result::Result<Device, String> {
        match kind {
            DeviceKind::Cpu => Ok(Device::Cpu),
            DeviceKind::Cuda(i) => {
                let device = Device::new_cuda(i).map_err(|e| e.to_string())?;
                #[cfg(feature = "cuda")]
                if let Err(e) = steady_allocations(&device) {
                    tracing::warn!("cuda:{i}: allocation settings not applied ({e})");
                }
                Ok(device)
            }
            DeviceKind::Metal(i) => Device::new_metal(i).map_err(|e| e.to_string()),
        }
    };
    let explicit = |kind: DeviceKind| {
        start(kind)
            .map(|device| ChosenDevice {
                device,
                kind,
                fallback: None,
            })
            .map_err(|reason| Error::DeviceUnavailable {
                device: kind.to_string(),
                reason,
            })
    };
    match request {
        DeviceRequest::Cpu => Ok(ChosenDevice::cpu()),
        DeviceRequest::Cuda(i) => explicit(DeviceKind::Cuda(i)),
        DeviceRequest::Metal(i) => explicit(DeviceKind::Metal(i)),
        DeviceRequest::Auto => {
            let mut reasons = Vec::new();
            for kind in [DeviceKind::Cuda(0), DeviceKind::Metal(0)] {
                let compiled = match kind {
                    DeviceKind::Cuda(_) => candle_core::utils::cuda_is_available(),
                    _ => candle_core::utils::metal_is_available(),
                };
                if !compiled {
                    continue; // this build cannot drive it: nothing to report
                }
                match start(kind) {
                    Ok(device) => {
                        return Ok(ChosenDevice {
                            device,
                            kind,
                            fallback: None,
                        })
                    }
                    Err(reason) => reasons.push(format!("{kind}: {reason}")),
                }
            }
            let fallback = (!reasons.is_empty()).then(|| reasons.join("; "));
            if let Some(why) = &fallback {
                tracing::warn!("no accelerator started ({why}); falling back to the CPU");
            }
            Ok(ChosenDevice {
                device: Device::Cpu,
                kind: DeviceKind::Cpu,
                fallback,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        let parse = |s: &str| s.parse::<DeviceRequest>().ok();
        assert_eq!(parse("auto"), Some(DeviceRequest::Auto));
        assert_eq!(parse("CPU"), Some(DeviceRequest::Cpu));
        assert_eq!(parse("cuda"), Some(DeviceRequest::Cuda(0)));
        assert_eq!(parse("cuda:3"), Some(DeviceRequest::Cuda(3)));
        assert_eq!(parse("metal:1"), Some(DeviceRequest::Metal(1)));
        assert_eq!(parse("cpu:1"), None);
        assert_eq!(parse("tpu"), None);
        assert_eq!(parse("cuda:x"), None);
    }

    #[test]
    fn auto_runs_somewhere_and_a_named_missing_device_is_an_error() {
        assert!(open(DeviceRequest::Auto).is_ok());
        if !candle_core::utils::cuda_is_available() {
            let err = open(DeviceRequest::Cuda(0)).unwrap_err().to_string();
            assert!(err.contains("cuda:0"), "{err}");
        }
    }
}

/// Cuts the per-call allocation cost on a CUDA device.
///
/// - cudarc creates two CUDA events with every allocation while its event
///   tracking is on (the default). They are only recorded and waited on in
///   cudarc's multi-stream mode, which starts when a stream is created with
///   `new_stream` or `fork`; candle's device uses each thread's default
///   stream (`per_thread_stream`), which does not count, and nothing in
///   Vivace creates one, so the events were never used.
/// - The device's default memory pool (behind `cuMemAllocAsync`) keeps no
///   freed memory at a synchronize by default (release threshold 0): every
///   call's activations would go back to the driver and be mapped again.
///   The threshold is raised to the maximum, so the pool keeps its
///   high-water mark, as the CPU's allocator does (`Plan::apply`).
#[cfg(feature = "cuda")]
fn steady_allocations(device: &Device) -> std::result::Result<(), String> {
    use candle_core::cuda::cudarc::driver::{result, sys};
    let cuda = device.as_cuda_device().map_err(|e| e.to_string())?;
    let stream = cuda.cuda_stream();
    let context = stream.context();
    // Outside multi-stream mode cudarc never records or waits on the events
    // (checked here, and nothing in Vivace calls `new_stream` or `fork`).
    debug_assert!(!context.is_in_multi_stream_mode());
    // SAFETY: turning tracking off changes no ordering, because outside
    // multi-stream mode the events were never waited on (above); cudarc's
    // contract (no buffer used on a stream other than its own before its
    // allocation or last use there completes) is what held before: weights
    // read from other threads' per-thread streams are ordered by the
    // synchronize at the end of `Optimizer::load_with_fallback`.
    unsafe { cuda.disable_event_tracking() };
    context.bind_to_thread().map_err(|e| e.to_string())?;
    let mut threshold: u64 = u64::MAX;
    // SAFETY: `cu_device` is the live context's device; the release
    // threshold attribute takes a `cuuint64_t`, which `threshold` is, and
    // the driver only reads it during the call.
    unsafe {
        let pool =
            result::device::get_default_mem_pool(context.cu_device()).map_err(|e| e.to_string())?;
        result::mem_pool::set_attribute(
            pool,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            (&mut threshold as *mut u64).cast(),
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}
