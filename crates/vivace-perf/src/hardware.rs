//! What machine we are on: CPU, memory and accelerators, probed cheaply.
//!
//! The probe reads `/proc` on Linux and asks candle for devices; it never
//! runs a kernel, so it takes milliseconds. Everything the planner decides is
//! a function of [`Hardware`], which tests build by hand for machines we do
//! not have (an H100, an RTX 3090, an Apple M2).

use serde::{Deserialize, Serialize};

/// The CPU and system memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuInfo {
    /// Model name as the OS reports it (`AMD EPYC`, `Apple M2`).
    pub model: String,
    /// Architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// Physical cores available to this process.
    pub physical_cores: usize,
    /// Logical processors (hardware threads).
    pub logical_cores: usize,
    /// SIMD features that matter for kernels: `avx2`, `fma`, `avx512f`, `f16c`, `neon`.
    pub simd: Vec<String>,
    /// Total system memory in bytes, if known.
    pub total_memory: Option<u64>,
    /// Memory available for new allocations in bytes, if known.
    pub available_memory: Option<u64>,
}

/// Which accelerator API a device is driven by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuKind {
    /// NVIDIA CUDA.
    Cuda,
    /// Apple Metal.
    Metal,
}

/// One accelerator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// CUDA or Metal.
    pub kind: GpuKind,
    /// Device ordinal.
    pub index: usize,
    /// Marketing name (`NVIDIA H100 80GB HBM3`).
    pub name: String,
    /// CUDA compute capability `(major, minor)`.
    pub compute_capability: Option<(u32, u32)>,
    /// Total device memory in bytes.
    pub total_memory: Option<u64>,
    /// Free device memory in bytes at probe time.
    pub free_memory: Option<u64>,
}

/// The machine as the planner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    /// The CPU.
    pub cpu: CpuInfo,
    /// Accelerators this build can drive and that started.
    pub gpus: Vec<GpuInfo>,
}

impl Hardware {
    /// Probes this machine.
    pub fn probe() -> Self {
        Self {
            cpu: CpuInfo::probe(),
            gpus: probe_gpus(),
        }
    }
}

impl CpuInfo {
    /// Probes the CPU and memory.
    pub fn probe() -> Self {
        let (total_memory, available_memory) = memory();
        Self {
            model: cpu_model().unwrap_or_else(|| "unknown".into()),
            arch: std::env::consts::ARCH.to_string(),
            physical_cores: num_cpus::get_physical().max(1),
            logical_cores: num_cpus::get().max(1),
            simd: simd_features(),
            total_memory,
            available_memory,
        }
    }
}

fn simd_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut found: Vec<&str> = Vec::new();
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            found.push("avx");
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            found.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("fma") {
            found.push("fma");
        }
        if std::arch::is_x86_feature_detected!("f16c") {
            found.push("f16c");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            found.push("avx512f");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            found.push("neon");
        }
        if std::arch::is_aarch64_feature_detected!("fp16") {
            found.push("fp16");
        }
    }
    found.into_iter().map(String::from).collect()
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Model"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// Memory of a device right now, in bytes: what the service's metrics show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryNow {
    /// Total memory of the device (system memory for the CPU).
    pub total: u64,
    /// Memory still free for new allocations.
    pub free: u64,
}

/// Reads `device`'s memory now: `/proc/meminfo` for the CPU, the driver for
/// CUDA; `None` where neither says (Metal, non-Linux CPUs).
pub fn memory_now(device: crate::DeviceKind) -> Option<MemoryNow> {
    match device {
        crate::DeviceKind::Cpu => match memory() {
            (Some(total), Some(free)) => Some(MemoryNow { total, free }),
            _ => None,
        },
        crate::DeviceKind::Cuda(index) => cuda_memory(index),
        crate::DeviceKind::Metal(_) => None,
    }
}

#[cfg(feature = "cuda")]
fn cuda_memory(index: usize) -> Option<MemoryNow> {
    use candle_core::cuda::cudarc::driver::CudaContext;
    let (free, total) = CudaContext::new(index).ok()?.mem_get_info().ok()?;
    Some(MemoryNow {
        total: total as u64,
        free: free as u64,
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda_memory(_index: usize) -> Option<MemoryNow> {
    None
}

/// `(MemTotal, MemAvailable)` from `/proc/meminfo`, in bytes.
fn memory() -> (Option<u64>, Option<u64>) {
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else {
        return (None, None);
    };
    parse_meminfo(&info)
}

fn parse_meminfo(info: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

/// Accelerators, found by creating each device (not by feature flags alone).
fn probe_gpus() -> Vec<GpuInfo> {
    let mut gpus = cuda_gpus();
    if candle_core::utils::metal_is_available() && candle_core::Device::new_metal(0).is_ok() {
        gpus.push(GpuInfo {
            kind: GpuKind::Metal,
            index: 0,
            name: "Apple Metal device".into(),
            compute_capability: None,
            total_memory: None,
            free_memory: None,
        });
    }
    gpus
}

/// Each CUDA device's name, compute capability and memory, through the
/// driver API that candle's `cudarc` wraps. NOTE: written on a machine
/// without the CUDA toolkit, so this branch is compiled and tested only by
/// the CUDA build (`scripts/build-cuda.sh`, the GPU issue).
#[cfg(feature = "cuda")]
fn cuda_gpus() -> Vec<GpuInfo> {
    use candle_core::cuda::cudarc::driver::CudaContext;
    let count = match CudaContext::device_count() {
        Ok(n) => usize::try_from(n).unwrap_or(0),
        Err(e) => {
            tracing::debug!("no CUDA driver: {e}");
            return Vec::new();
        }
    };
    (0..count)
        .filter_map(|index| {
            let ctx = match CudaContext::new(index) {
                Ok(ctx) => ctx,
                Err(e) => {
                    tracing::warn!("CUDA device {index} does not start: {e}");
                    return None;
                }
            };
            let (free, total) = match ctx.mem_get_info() {
                Ok((free, total)) => (Some(free as u64), Some(total as u64)),
                Err(_) => (None, ctx.total_mem().ok().map(|t| t as u64)),
            };
            Some(GpuInfo {
                kind: GpuKind::Cuda,
                index,
                name: ctx
                    .name()
                    .unwrap_or_else(|_| format!("CUDA device {index}")),
                compute_capability: ctx
                    .compute_capability()
                    .ok()
                    .map(|(major, minor)| (major.max(0) as u32, minor.max(0) as u32)),
                total_memory: total,
                free_memory: free,
            })
        })
        .collect()
}

/// Without the `cuda` feature this build cannot drive a CUDA device.
#[cfg(not(feature = "cuda"))]
fn cuda_gpus() -> Vec<GpuInfo> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_parsed_in_bytes() {
        let info = "MemTotal:       24684084 kB\nMemFree:  1 kB\nMemAvailable:   23873928 kB\n";
        assert_eq!(
            parse_meminfo(info),
            (Some(24_684_084 * 1024), Some(23_873_928 * 1024))
        );
        assert_eq!(parse_meminfo("garbage"), (None, None));
    }

    #[test]
    fn probe_is_cheap_and_sane() {
        let start = std::time::Instant::now();
        let hw = Hardware::probe();
        assert!(start.elapsed() < std::time::Duration::from_millis(500));
        assert!(hw.cpu.physical_cores >= 1);
        assert!(hw.cpu.logical_cores >= hw.cpu.physical_cores);
    }
}
