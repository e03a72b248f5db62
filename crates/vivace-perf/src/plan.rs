//! The backend plan: every setting for a device, each with its reason.
//!
//! [`Plan::new`] is a pure function of the [`Hardware`], the device and the
//! [`Overrides`] (environment variables), so it can be tested for machines we
//! do not have. [`Plan::apply`] then makes the process-wide settings real
//! (on CUDA without TF32 that includes `NVIDIA_TF32_OVERRIDE=0`, unless set).
//!
//! | variable | values | effect |
//! |---|---|---|
//! | `VIVACE_DEVICE` | `auto`, `cpu`, `cuda[:N]`, `metal[:N]` | device (read by the CLI) |
//! | `VIVACE_NUM_THREADS` | integer ≥ 1 | CPU threads for candle's kernels |
//! | `VIVACE_PRECISION` | `f32`, `tf32`, `bf16`, `f16`, `int8` | compute precision |
//! | `VIVACE_CUDNN` | `0`, `1` | reported against the build, which decides: candle runs conv1d through cuDNN exactly when built with the `cudnn` feature |
//! | `VIVACE_BATCH_SIZE` | integer ≥ 1 | fixed batch size instead of measuring one |
//! | `VIVACE_SENTENCE_THREADS` | integer ≥ 1 | sentences synthesized at once (CPU) |
//! | `VIVACE_ELEMENTWISE_THREADS` | integer ≥ 1 | threads of candle's elementwise barrier pool (planned 1 on the CPU) |
//! | `VIVACE_WARMUP` | `0`, `1` | warm-up runs before serving |

use std::fmt;
use std::str::FromStr;

use candle_core::DType;
use serde::{Deserialize, Serialize};

use crate::device::DeviceKind;
use crate::error::{Error, Result};
use crate::hardware::{GpuKind, Hardware};

/// Compute precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// IEEE f32 everywhere.
    F32,
    /// f32 storage, TensorFloat-32 matmuls (CUDA, compute capability ≥ 8.0).
    Tf32,
    /// bfloat16 weights and activations.
    Bf16,
    /// IEEE half precision.
    F16,
    /// f32 storage; the VITS vocoder's heavy convolutions on integer
    /// weights and activations (bytes, 16-bit words in its last stage; CPU
    /// only, with AVX-512 VNNI or AVX-VNNI).
    Int8,
}

impl Precision {
    /// The tensor dtype this precision stores weights in.
    pub fn dtype(self) -> DType {
        match self {
            Self::F32 | Self::Tf32 | Self::Int8 => DType::F32,
            Self::Bf16 => DType::BF16,
            Self::F16 => DType::F16,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Tf32 => "tf32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
            Self::Int8 => "int8",
        })
    }
}

impl FromStr for Precision {
    type Err = ();

    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(Self::F32),
            "tf32" => Ok(Self::Tf32),
            "bf16" => Ok(Self::Bf16),
            "f16" | "fp16" => Ok(Self::F16),
            "int8" => Ok(Self::Int8),
            _ => Err(()),
        }
    }
}

/// Sentences in flight on the CPU unless overridden.
const PLANNED_SENTENCE_THREADS: usize = 2;

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Chosen by the planner for this hardware.
    Planner,
    /// Set by an environment variable.
    Env,
}

/// One decided setting, for reports (`vivace info`, `bench --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    /// Name (`cpu_threads`, `tf32`, …).
    pub name: String,
    /// Value as text.
    pub value: String,
    /// Why.
    pub reason: String,
    /// Planner or environment.
    pub source: Source,
}

/// User overrides, normally from the environment (see the module table).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `VIVACE_NUM_THREADS`.
    pub threads: Option<usize>,
    /// `VIVACE_PRECISION`.
    pub precision: Option<Precision>,
    /// `VIVACE_CUDNN`.
    pub cudnn: Option<bool>,
    /// `VIVACE_BATCH_SIZE`.
    pub batch_size: Option<usize>,
    /// `VIVACE_SENTENCE_THREADS`.
    pub sentence_threads: Option<usize>,
    /// `VIVACE_ELEMENTWISE_THREADS`.
    pub elementwise_threads: Option<usize>,
    /// `VIVACE_WARMUP`.
    pub warmup: Option<bool>,
}

impl Overrides {
    /// Reads the `VIVACE_*` variables; a malformed value is an error naming it.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads overrides through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let count = |name: &'static str| -> Result<Option<usize>> {
            match lookup(name) {
                None => Ok(None),
                Some(v) => match v.trim().parse::<usize>() {
                    Ok(n) if n >= 1 => Ok(Some(n)),
                    _ => Err(Error::BadOverride {
                        name,
                        value: v,
                        expected: "an integer of at least 1",
                    }),
                },
            }
        };
        let flag = |name: &'static str| -> Result<Option<bool>> {
            match lookup(name).as_deref().map(str::trim) {
                None => Ok(None),
                Some("1" | "true" | "on") => Ok(Some(true)),
                Some("0" | "false" | "off") => Ok(Some(false)),
                Some(v) => Err(Error::BadOverride {
                    name,
                    value: v.to_string(),
                    expected: "0 or 1",
                }),
            }
        };
        let precision = match lookup("VIVACE_PRECISION") {
            None => None,
            Some(v) => Some(v.parse::<Precision>().map_err(|()| Error::BadOverride {
                name: "VIVACE_PRECISION",
                value: v.clone(),
                expected: "one of f32, tf32, bf16, f16, int8",
            })?),
        };
        Ok(Self {
            threads: count("VIVACE_NUM_THREADS")?,
            precision,
            cudnn: flag("VIVACE_CUDNN")?,
            batch_size: count("VIVACE_BATCH_SIZE")?,
            sentence_threads: count("VIVACE_SENTENCE_THREADS")?,
            elementwise_threads: count("VIVACE_ELEMENTWISE_THREADS")?,
            warmup: flag("VIVACE_WARMUP")?,
        })
    }
}

/// Every backend setting for one device, with reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The device planned for.
    pub device: DeviceKind,
    /// Compute precision.
    pub precision: Precision,
    /// Threads of rayon's pool (`RAYON_NUM_THREADS`), which runs candle's
    /// GEMMs and Vivace's CPU kernels (also used on GPU hosts for host work).
    pub cpu_threads: usize,
    /// TF32 matmuls on CUDA.
    pub tf32: bool,
    /// cuDNN convolutions on CUDA.
    pub cudnn: bool,
    /// A fixed batch size, or `None` to measure one.
    pub batch_size: Option<usize>,
    /// Sentences synthesized at the same time (each on its own thread).
    pub sentence_threads: usize,
    /// Intra-op threads of each sentence stream once several run at once
    /// (the first sentence always gets all `cpu_threads`).
    pub stream_threads: usize,
    /// Threads of candle's barrier pool for its elementwise CPU ops
    /// (`CANDLE_NUM_THREADS`).
    pub elementwise_threads: usize,
    /// Keep freed activation buffers in one malloc heap (glibc) instead of
    /// returning each to the operating system.
    pub reuse_buffers: bool,
    /// Run warm-up before serving.
    pub warmup: bool,
    /// The decisions above, each with its reason.
    pub settings: Vec<Setting>,
}

impl Plan {
    /// Plans `device` on `hw` with `overrides`. Fails only when an override asks
    /// for something the device cannot do.
    pub fn new(hw: &Hardware, device: DeviceKind, overrides: &Overrides) -> Result<Self> {
        let mut settings = Vec::new();
        let mut note = |name: &str, value: String, reason: String, source: Source| {
            settings.push(Setting {
                name: name.into(),
                value,
                reason,
                source,
            })
        };

        let (cpu_threads, source, reason) = match overrides.threads {
            Some(n) => (n, Source::Env, "VIVACE_NUM_THREADS".to_string()),
            None => (
                hw.cpu.physical_cores.max(1),
                Source::Planner,
                format!(
                    "one per physical core ({} physical, {} logical): hyper-threads share the SIMD units the kernels saturate",
                    hw.cpu.physical_cores, hw.cpu.logical_cores
                ),
            ),
        };
        note("cpu_threads", cpu_threads.to_string(), reason, source);

        let gpu = match device {
            DeviceKind::Cuda(i) => hw
                .gpus
                .iter()
                .find(|g| g.kind == GpuKind::Cuda && g.index == i),
            DeviceKind::Metal(i) => hw
                .gpus
                .iter()
                .find(|g| g.kind == GpuKind::Metal && g.index == i),
            DeviceKind::Cpu => None,
        };
        let capability = gpu.and_then(|g| g.compute_capability);
        let ampere = capability.is_some_and(|(major, _)| major >= 8);

        let unsupported = |p: Precision, reason: &str| Error::Unsupported {
            precision: p.to_string(),
            device: device.to_string(),
            reason: reason.to_string(),
        };
        let precision = match (device, overrides.precision) {
            (
                DeviceKind::Cpu,
                Some(p @ (Precision::F32 | Precision::Bf16 | Precision::F16 | Precision::Int8)),
            ) => {
                let reason = match p {
                    // Measured 2026-12-06: one sentence 3.73 s against
                    // 0.32 s; a 12 s text 6.95 s against 0.78 s.
                    Precision::Bf16 | Precision::F16 => {
                        "--precision / VIVACE_PRECISION (on the CPU the decoder then runs candle's generic ops, about 10x slower than f32; int8 is the fast reduced precision)"
                    }
                    _ => "--precision / VIVACE_PRECISION",
                };
                note("precision", p.to_string(), reason.into(), Source::Env);
                p
            }
            (DeviceKind::Cpu, Some(p)) => {
                return Err(unsupported(p, "TF32 exists on CUDA GPUs only"))
            }
            (DeviceKind::Cpu, None) => {
                note(
                    "precision",
                    "f32".into(),
                    "f32 is the precision whose parity with the reference is tested; VIVACE_PRECISION=int8 (VITS voices, VNNI CPUs) was measured 0.72x the time at a measurable quality cost (docs/PERFORMANCE.md), so it is opt-in".into(),
                    Source::Planner,
                );
                Precision::F32
            }
            (DeviceKind::Cuda(_) | DeviceKind::Metal(_), Some(p @ Precision::Int8)) => {
                return Err(unsupported(
                    p,
                    "the int8 convolutions are a CPU kernel (VIVACE_DEVICE=cpu)",
                ))
            }
            (DeviceKind::Cuda(_), Some(p)) => {
                let min = match p {
                    Precision::Tf32 | Precision::Bf16 => Some(8),
                    Precision::F16 => Some(7),
                    Precision::F32 | Precision::Int8 => None,
                };
                if let (Some(min), Some((major, _))) = (min, capability) {
                    if major < min {
                        return Err(unsupported(
                            p,
                            &format!("needs compute capability {min}.0, this GPU has {major}.x"),
                        ));
                    }
                }
                note(
                    "precision",
                    p.to_string(),
                    "--precision / VIVACE_PRECISION".into(),
                    Source::Env,
                );
                p
            }
            (DeviceKind::Cuda(_), None) if ampere => {
                note(
                    "precision",
                    "tf32".into(),
                    "compute capability ≥ 8.0: TF32 tensor cores run f32 matmuls several times faster with a 10-bit mantissa; weights stay f32".into(),
                    Source::Planner,
                );
                Precision::Tf32
            }
            (DeviceKind::Cuda(_), None) => {
                note(
                    "precision",
                    "f32".into(),
                    "compute capability below 8.0 (or unknown): no TF32 tensor cores".into(),
                    Source::Planner,
                );
                Precision::F32
            }
            (DeviceKind::Metal(_), Some(p @ Precision::Tf32)) => {
                return Err(unsupported(p, "TF32 exists on CUDA GPUs only"))
            }
            (DeviceKind::Metal(_), Some(p)) => {
                note(
                    "precision",
                    p.to_string(),
                    "--precision / VIVACE_PRECISION".into(),
                    Source::Env,
                );
                p
            }
            (DeviceKind::Metal(_), None) => {
                note(
                    "precision",
                    "f32".into(),
                    "f32 keeps parity with the reference; f16 is available by VIVACE_PRECISION"
                        .into(),
                    Source::Planner,
                );
                Precision::F32
            }
        };

        let tf32 = precision == Precision::Tf32;
        let cudnn_built = cfg!(feature = "cudnn");
        if matches!(device, DeviceKind::Cuda(_)) {
            note(
                "tf32",
                tf32.to_string(),
                tf32_reason(precision, cudnn_built),
                Source::Planner,
            );
        }

        // candle picks cuDNN for conv1d at compile time: the build decides,
        // and VIVACE_CUDNN can only be reported against it.
        let cudnn = matches!(device, DeviceKind::Cuda(_)) && cudnn_built;
        if matches!(device, DeviceKind::Cuda(_)) {
            let (reason, source) = match (overrides.cudnn, cudnn_built) {
                (None, true) => (
                    "built in (the cudnn feature): candle runs every conv1d through cuDNN",
                    Source::Planner,
                ),
                (None, false) => (
                    "built without the cudnn feature: candle's own conv kernels",
                    Source::Planner,
                ),
                (Some(true), true) => ("VIVACE_CUDNN=1; built in", Source::Env),
                (Some(false), true) => (
                    "built in: VIVACE_CUDNN=0 cannot turn it off (candle chooses cuDNN when \
                     it is compiled; use a build without the cudnn feature)",
                    Source::Env,
                ),
                (Some(true), false) => (
                    "VIVACE_CUDNN=1 asked, but this build has no cudnn feature",
                    Source::Env,
                ),
                (Some(false), false) => (
                    "VIVACE_CUDNN=0; this build has no cudnn feature anyway",
                    Source::Env,
                ),
            };
            note("cudnn", cudnn.to_string(), reason.into(), source);
        }

        let batch_size = overrides.batch_size;
        note(
            "batch_size",
            batch_size.map_or("measured".into(), |b| b.to_string()),
            match batch_size {
                Some(_) => "VIVACE_BATCH_SIZE".into(),
                None => "largest batch within the memory budget, up to the throughput knee".into(),
            },
            if batch_size.is_some() {
                Source::Env
            } else {
                Source::Planner
            },
        );

        let sentence_threads = match (overrides.sentence_threads, device) {
            (Some(n), _) => {
                note(
                    "sentence_threads",
                    n.to_string(),
                    "VIVACE_SENTENCE_THREADS".into(),
                    Source::Env,
                );
                n
            }
            (None, DeviceKind::Cpu) => {
                let n = PLANNED_SENTENCE_THREADS.min(cpu_threads).max(1);
                note(
                    "sentence_threads",
                    n.to_string(),
                    "two sentences at once keep both cores busy through the small frame-rate ops (measured: docs/PERFORMANCE.md)".into(),
                    Source::Planner,
                );
                n
            }
            (None, _) => {
                note(
                    "sentence_threads",
                    "1".into(),
                    "an accelerator runs one stream; batching is its parallelism".into(),
                    Source::Planner,
                );
                1
            }
        };

        let stream_threads = (cpu_threads / sentence_threads).max(1);
        note(
            "stream_threads",
            stream_threads.to_string(),
            match sentence_threads {
                1 => "one stream uses every CPU thread".into(),
                n => format!("the {n} sentence streams split the {cpu_threads} CPU threads (the first sentence, alone, uses all); no intra-op synchronisation where streams already fill the cores"),
            },
            Source::Planner,
        );

        let elementwise_threads = match (overrides.elementwise_threads, device) {
            (Some(n), _) => {
                note(
                    "elementwise_threads",
                    n.to_string(),
                    "VIVACE_ELEMENTWISE_THREADS".into(),
                    Source::Env,
                );
                n
            }
            (None, DeviceKind::Cpu) => {
                note(
                    "elementwise_threads",
                    "1".into(),
                    "candle's barrier-pool workers spin while rayon runs the convolutions on the same cores; the large elementwise passes are fused into Vivace's kernels (measured: docs/PERFORMANCE.md)".into(),
                    Source::Planner,
                );
                1
            }
            (None, _) => {
                note(
                    "elementwise_threads",
                    cpu_threads.to_string(),
                    "host-side ops only; one per CPU thread".into(),
                    Source::Planner,
                );
                cpu_threads
            }
        };

        let reuse_buffers = matches!(device, DeviceKind::Cpu) && GLIBC_MALLOPT;
        note(
            "reuse_buffers",
            reuse_buffers.to_string(),
            match reuse_buffers {
                true => "glibc maps every buffer over 128 KiB afresh and unmaps it on free, so each activation pays page faults: one heap, no mapped buffers and up to 1 GiB of it kept free keep the pages (measured: docs/PERFORMANCE.md)".into(),
                false => "activations live on the accelerator (or the allocator is not glibc's)".into(),
            },
            Source::Planner,
        );

        let warmup = overrides.warmup.unwrap_or(true);
        note(
            "warmup",
            warmup.to_string(),
            if overrides.warmup.is_some() {
                "VIVACE_WARMUP".into()
            } else {
                "first calls pay for allocation and kernel selection; warm before serving".into()
            },
            if overrides.warmup.is_some() {
                Source::Env
            } else {
                Source::Planner
            },
        );

        Ok(Self {
            device,
            precision,
            cpu_threads,
            tf32,
            cudnn,
            batch_size,
            sentence_threads,
            stream_threads,
            elementwise_threads,
            reuse_buffers,
            warmup,
            settings,
        })
    }

    /// The dtype to load weights in.
    pub fn dtype(&self) -> DType {
        self.precision.dtype()
    }

    /// Makes the process-wide settings real. Thread counts only take effect if
    /// this runs before candle's first CPU kernel starts its thread pool, so
    /// call it first thing in `main`.
    pub fn apply(&self) {
        // candle reads these when its pools start (CANDLE_NUM_THREADS for the
        // barrier pool of its elementwise ops, RAYON_NUM_THREADS for rayon,
        // which runs the GEMMs and Vivace's kernels).
        let threads = self.cpu_threads.to_string();
        std::env::set_var("CANDLE_NUM_THREADS", self.elementwise_threads.to_string());
        std::env::set_var("RAYON_NUM_THREADS", &threads);
        if self.reuse_buffers {
            keep_freed_buffers();
        }
        if let Some(value) = self.tf32_override() {
            if std::env::var_os(TF32_OVERRIDE).is_none() {
                std::env::set_var(TF32_OVERRIDE, value);
            }
        }
        #[cfg(feature = "cuda")]
        if matches!(self.device, DeviceKind::Cuda(_)) {
            candle_core::cuda::set_gemm_reduced_precision_f32(self.tf32);
        }
        tracing::info!(device = %self.device, precision = %self.precision, threads = self.cpu_threads, "plan applied");
    }
}

/// NVIDIA's switch, read by cuBLAS and cuDNN when they start, that keeps
/// f32 math out of TF32 whatever a library's default (cuDNN's default math
/// type runs f32 convolutions in TF32 on Ampere and later).
pub const TF32_OVERRIDE: &str = "NVIDIA_TF32_OVERRIDE";

impl Plan {
    /// The value [`Plan::apply`] gives [`TF32_OVERRIDE`] (unless the
    /// environment already sets it): `0` on CUDA whenever the plan is not
    /// TF32 (f32, or a reduced-precision decoder with the rest in f32), so
    /// that f32 is f32 in cuDNN's convolutions too; nothing otherwise.
    pub fn tf32_override(&self) -> Option<&'static str> {
        (matches!(self.device, DeviceKind::Cuda(_)) && !self.tf32).then_some("0")
    }
}

/// What the `tf32` setting means for `precision` in a build with or
/// without cuDNN.
fn tf32_reason(precision: Precision, cudnn_built: bool) -> String {
    let gemm = match precision {
        Precision::Tf32 => "set_gemm_reduced_precision_f32(true) for f32 matmuls",
        Precision::F32 => "precision f32: f32 matmuls in full f32",
        _ => "f32 parts (outside the decoder) in full f32",
    };
    let convolutions = match (cudnn_built, precision) {
        (false, _) => "",
        (true, Precision::Tf32) => "; cuDNN's f32 convolutions in TF32 too (its default math)",
        (true, Precision::F16) => {
            "; NVIDIA_TF32_OVERRIDE=0 keeps cuDNN's f32 convolutions out of TF32 (its default math); its f16 convolutions may accumulate in f16"
        }
        (true, _) => {
            "; NVIDIA_TF32_OVERRIDE=0 keeps cuDNN's f32 convolutions out of TF32 (its default math)"
        }
    };
    format!("{gemm}{convolutions}")
}

/// Whether [`keep_freed_buffers`] does anything on this target.
const GLIBC_MALLOPT: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

/// glibc: one malloc arena, every buffer from the heap rather than its own
/// mapping (`M_MMAP_MAX` 0: glibc's mapping threshold cannot be raised
/// past 32 MiB, and a mapped buffer is unmapped when freed and faults in
/// fresh zeroed pages next time), and up to 1 GiB of free heap kept, so a
/// sentence's activations reuse the pages of the previous one. Measured on
/// Piper's long text with mappings above 32 MiB and 64 MiB kept: 275 000 →
/// 101 000 page faults, system time 0.67 → 0.24 s, peak RSS +16 to +30
/// MiB. Kokoro's generator frees more than 64 MiB at a time and its
/// buffers pass 32 MiB from about 13 s of audio in one batch: keeping 1
/// GiB took a 12.4 s batch from 448 000 to 156 000 faults (system time
/// 1.14 → 0.34 s), and no mappings a 13 s one from 647 000 to 137 000
/// (3.40 → 3.09 s wall) and a 19.5 s one from 904 000 to 174 000 (5.05 →
/// 4.56 s), peak RSS within 2 %. The cost: the process keeps its
/// high-water mark, since freed memory (up to 1 GiB of it) is not given
/// back to the system, so a long-running `serve` stays at the RSS of its
/// largest request. Other allocators are left alone.
fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before the
    // worker threads start allocating.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{CpuInfo, GpuInfo};

    const GIB: u64 = 1 << 30;

    fn cpu(physical: usize, logical: usize, model: &str, simd: &[&str]) -> CpuInfo {
        CpuInfo {
            model: model.into(),
            arch: "x86_64".into(),
            physical_cores: physical,
            logical_cores: logical,
            simd: simd.iter().map(|s| s.to_string()).collect(),
            total_memory: Some(64 * GIB),
            available_memory: Some(48 * GIB),
        }
    }

    fn cuda(name: &str, cc: (u32, u32), total_gib: u64) -> GpuInfo {
        GpuInfo {
            kind: GpuKind::Cuda,
            index: 0,
            name: name.into(),
            compute_capability: Some(cc),
            total_memory: Some(total_gib * GIB),
            free_memory: Some((total_gib - 1) * GIB),
        }
    }

    fn h100() -> Hardware {
        Hardware {
            cpu: cpu(
                16,
                32,
                "Intel Xeon Platinum 8480+",
                &["avx2", "fma", "avx512f"],
            ),
            gpus: vec![cuda("NVIDIA H100 80GB HBM3", (9, 0), 80)],
        }
    }

    fn rtx3090() -> Hardware {
        Hardware {
            cpu: cpu(8, 16, "AMD Ryzen 7 5800X", &["avx2", "fma"]),
            gpus: vec![cuda("NVIDIA GeForce RTX 3090", (8, 6), 24)],
        }
    }

    fn t4() -> Hardware {
        Hardware {
            cpu: cpu(4, 8, "Intel Xeon", &["avx2", "fma"]),
            gpus: vec![cuda("Tesla T4", (7, 5), 16)],
        }
    }

    fn m2() -> Hardware {
        let mut c = cpu(4, 8, "Apple M2", &["neon"]);
        c.arch = "aarch64".into();
        Hardware {
            cpu: c,
            gpus: vec![GpuInfo {
                kind: GpuKind::Metal,
                index: 0,
                name: "Apple M2".into(),
                compute_capability: None,
                total_memory: Some(16 * GIB),
                free_memory: None,
            }],
        }
    }

    fn two_core() -> Hardware {
        Hardware {
            cpu: cpu(2, 2, "AMD EPYC", &["avx2", "fma"]),
            gpus: vec![],
        }
    }

    fn plan(hw: &Hardware, device: DeviceKind) -> Plan {
        Plan::new(hw, device, &Overrides::default()).expect("plan")
    }

    #[test]
    fn h100_gets_tf32() {
        let p = plan(&h100(), DeviceKind::Cuda(0));
        assert_eq!(
            (p.precision, p.tf32, p.cpu_threads),
            (Precision::Tf32, true, 16)
        );
        assert_eq!(p.dtype(), DType::F32);
        assert!(p.settings.iter().all(|s| !s.reason.is_empty()));
    }

    #[test]
    fn rtx3090_gets_tf32_and_t4_does_not() {
        assert!(plan(&rtx3090(), DeviceKind::Cuda(0)).tf32);
        let p = plan(&t4(), DeviceKind::Cuda(0));
        assert_eq!((p.precision, p.tf32), (Precision::F32, false));
    }

    /// A CUDA plan that is not TF32 sets NVIDIA_TF32_OVERRIDE=0 (cuDNN would
    /// run its f32 convolutions in TF32 otherwise); TF32 plans and other
    /// devices leave it alone.
    #[test]
    fn f32_on_cuda_keeps_tf32_out_of_cudnn_and_cublas() {
        let f32_plan = plan(&t4(), DeviceKind::Cuda(0));
        assert_eq!(f32_plan.tf32_override(), Some("0"));
        assert_eq!(plan(&h100(), DeviceKind::Cuda(0)).tf32_override(), None);
        // A bf16 decoder keeps the rest in f32: no TF32 there either.
        let bf16 = Overrides {
            precision: Some(Precision::Bf16),
            ..Overrides::default()
        };
        let p = Plan::new(&h100(), DeviceKind::Cuda(0), &bf16).expect("plan");
        assert_eq!(p.tf32_override(), Some("0"));
        assert_eq!(plan(&two_core(), DeviceKind::Cpu).tf32_override(), None);
        assert!(!tf32_reason(Precision::F32, false).contains("cuDNN"));
        assert!(tf32_reason(Precision::F32, true).contains("NVIDIA_TF32_OVERRIDE=0"));
        assert!(tf32_reason(Precision::Tf32, true).contains("in TF32 too"));
        assert!(tf32_reason(Precision::F16, true).contains("accumulate in f16"));
    }

    /// The cudnn setting is what the build has: VIVACE_CUDNN=0 on a cuDNN
    /// build is reported as unable to turn it off, =1 on a build without
    /// it as not available.
    #[test]
    fn cudnn_is_what_the_build_has() {
        let built = cfg!(feature = "cudnn");
        for asked in [None, Some(false), Some(true)] {
            let overrides = Overrides {
                cudnn: asked,
                ..Overrides::default()
            };
            let p = Plan::new(&h100(), DeviceKind::Cuda(0), &overrides).expect("plan");
            assert_eq!(p.cudnn, built, "VIVACE_CUDNN {asked:?}");
            let setting = p
                .settings
                .iter()
                .find(|s| s.name == "cudnn")
                .expect("noted");
            assert_eq!(setting.value, built.to_string());
            match (asked, built) {
                (Some(false), true) => assert!(setting.reason.contains("cannot turn it off")),
                (Some(true), false) => assert!(setting.reason.contains("no cudnn feature")),
                _ => {}
            }
        }
        assert!(!plan(&m2(), DeviceKind::Metal(0)).cudnn);
    }

    #[test]
    fn m2_metal_stays_f32() {
        let p = plan(&m2(), DeviceKind::Metal(0));
        assert_eq!(
            (p.precision, p.tf32, p.cudnn),
            (Precision::F32, false, false)
        );
        assert_eq!(p.cpu_threads, 4);
    }

    #[test]
    fn two_core_cpu_uses_both_cores_in_f32() {
        let p = plan(&two_core(), DeviceKind::Cpu);
        assert_eq!(
            (p.precision, p.cpu_threads, p.batch_size),
            (Precision::F32, 2, None)
        );
        assert!(
            !p.settings.iter().any(|s| s.name == "tf32"),
            "no CUDA settings on a CPU plan"
        );
        // Two streams of one thread each after the first sentence, and no
        // spinning elementwise pool beside rayon's.
        assert_eq!(
            (p.sentence_threads, p.stream_threads, p.elementwise_threads),
            (2, 1, 1)
        );
    }

    #[test]
    fn streams_split_the_cores_and_elementwise_threads_can_be_set() {
        let env = |name: &str| match name {
            "VIVACE_NUM_THREADS" => Some("8".to_string()),
            "VIVACE_SENTENCE_THREADS" => Some("3".to_string()),
            "VIVACE_ELEMENTWISE_THREADS" => Some("4".to_string()),
            _ => None,
        };
        let overrides = Overrides::from_lookup(env).expect("overrides");
        let p = Plan::new(&two_core(), DeviceKind::Cpu, &overrides).expect("plan");
        assert_eq!((p.stream_threads, p.elementwise_threads), (2, 4));
        let bad = |name: &str| (name == "VIVACE_ELEMENTWISE_THREADS").then(|| "0".to_string());
        assert!(Overrides::from_lookup(bad).is_err());
    }

    #[test]
    fn environment_overrides_win_and_are_labelled() {
        let env = |name: &str| match name {
            "VIVACE_NUM_THREADS" => Some("3".to_string()),
            "VIVACE_PRECISION" => Some("bf16".to_string()),
            "VIVACE_BATCH_SIZE" => Some("4".to_string()),
            _ => None,
        };
        let overrides = Overrides::from_lookup(env).expect("overrides");
        let p = Plan::new(&h100(), DeviceKind::Cuda(0), &overrides).expect("plan");
        assert_eq!(
            (p.cpu_threads, p.precision, p.batch_size),
            (3, Precision::Bf16, Some(4))
        );
        assert_eq!(p.dtype(), DType::BF16);
        let threads = p
            .settings
            .iter()
            .find(|s| s.name == "cpu_threads")
            .expect("threads");
        assert_eq!(threads.source, Source::Env);
    }

    #[test]
    fn impossible_overrides_are_errors() {
        let bf16 = Overrides {
            precision: Some(Precision::Bf16),
            ..Default::default()
        };
        let err = Plan::new(&t4(), DeviceKind::Cuda(0), &bf16)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bf16") && err.contains("8.0"), "{err}");
        let tf32 = Overrides {
            precision: Some(Precision::Tf32),
            ..Default::default()
        };
        assert!(Plan::new(&two_core(), DeviceKind::Cpu, &tf32).is_err());
        let int8 = Overrides {
            precision: Some(Precision::Int8),
            ..Default::default()
        };
        let err = Plan::new(&t4(), DeviceKind::Cuda(0), &int8)
            .unwrap_err()
            .to_string();
        assert!(err.contains("int8") && err.contains("CPU"), "{err}");
        let plan = Plan::new(&two_core(), DeviceKind::Cpu, &int8).expect("int8 on the CPU");
        let bf16 = Plan::new(&two_core(), DeviceKind::Cpu, &bf16).expect("bf16 on the CPU");
        let why = &bf16
            .settings
            .iter()
            .find(|s| s.name == "precision")
            .expect("noted")
            .reason;
        assert!(why.contains("slower than f32"), "{why}");
        assert_eq!(
            (plan.precision, plan.dtype()),
            (Precision::Int8, DType::F32)
        );
        assert_eq!("INT8".parse::<Precision>(), Ok(Precision::Int8));
        let bad = Overrides::from_lookup(|n| (n == "VIVACE_NUM_THREADS").then(|| "zero".into()));
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("VIVACE_NUM_THREADS=zero"));
    }
}
