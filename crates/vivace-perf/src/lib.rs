//! Vivace's performance layer, used by every backend.
//!
//! - [`hardware`]: probe the CPU, memory and accelerators (milliseconds);
//! - [`device`]: `auto|cpu|cuda[:N]|metal[:N]`, tried for real, with CPU fallback;
//! - [`plan`]: every backend setting with its reason, overridable by `VIVACE_*`;
//! - [`warmup`]: run until latency settles, cold against warm;
//! - [`batch`]: the largest batch that fits and still pays, with OOM backoff;
//! - [`Optimizer`]: all of it for one process, with an inference scope that
//!   records per-call latency.

pub mod batch;
pub mod device;
pub mod error;
pub mod hardware;
pub mod plan;
pub mod warmup;

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use device::{ChosenDevice, DeviceKind, DeviceRequest};
pub use error::{Error, Result};
pub use hardware::Hardware;
pub use plan::{Overrides, Plan, Precision};
pub use warmup::{warmup, WarmupOptions, WarmupReport};

/// The hardware, the chosen device and the plan for it, for one process.
#[derive(Debug)]
pub struct Optimizer {
    /// What was probed.
    pub hardware: Hardware,
    /// The device in use.
    pub device: ChosenDevice,
    /// The settings for it.
    pub plan: Plan,
    profiling: bool,
    latencies: Mutex<Vec<Duration>>,
}

impl Optimizer {
    /// Probes the machine, starts the requested device and plans it.
    /// Call before any model runs: [`Plan::apply`] sets thread counts.
    pub fn new(request: DeviceRequest, overrides: &Overrides) -> Result<Self> {
        let hardware = Hardware::probe();
        let device = device::open(request)?;
        let plan = Plan::new(&hardware, device.kind, overrides)?;
        plan.apply();
        Ok(Self::from_parts(hardware, device, plan))
    }

    /// Assembles an optimizer without probing (tests, custom hardware).
    pub fn from_parts(hardware: Hardware, device: ChosenDevice, plan: Plan) -> Self {
        Self {
            hardware,
            device,
            plan,
            profiling: std::env::var_os("VIVACE_PROFILE").is_some_and(|v| v != "0"),
            latencies: Mutex::new(Vec::new()),
        }
    }

    /// The process-wide optimizer, built on first use from `VIVACE_DEVICE` and
    /// the other `VIVACE_*` variables. A bad variable or a device that will not
    /// start is logged and the CPU is used, so this never fails; construct an
    /// [`Optimizer`] explicitly to get the error instead.
    pub fn global() -> &'static Optimizer {
        static GLOBAL: OnceLock<Optimizer> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let attempt = || -> Result<Optimizer> {
                let request = match std::env::var("VIVACE_DEVICE") {
                    Ok(v) => v.parse()?,
                    Err(_) => DeviceRequest::Auto,
                };
                Optimizer::new(request, &Overrides::from_env()?)
            };
            attempt().unwrap_or_else(|e| {
                tracing::warn!("{e}; using the CPU with default settings");
                let hardware = Hardware::probe();
                let plan = Plan::new(&hardware, DeviceKind::Cpu, &Overrides::default())
                    .expect("the default CPU plan has no failing branch");
                plan.apply();
                Optimizer::from_parts(hardware, ChosenDevice::cpu(), plan)
            })
        })
    }

    /// Loads a model for this optimizer's device: `load(device, dtype)` with
    /// the plan's precision, then, on an accelerator, `smoke` to prove it runs
    /// there, and waits for the device to finish both. When the device was
    /// chosen automatically (`explicit` false) and a step fails, it warns
    /// and loads on the CPU in f32 instead; a device the user named must
    /// work. Returns the model and where it runs.
    ///
    /// The wait matters on CUDA: candle queues each thread's work on that
    /// thread's default stream, so weights uploaded here are only ordered
    /// before this thread's later work. The service loads on one thread and
    /// synthesizes on its workers, whose streams would otherwise read
    /// weights still in flight.
    pub fn load_with_fallback<T, E: std::fmt::Display + From<candle_core::Error>>(
        &self,
        explicit: bool,
        load: impl Fn(&candle_core::Device, candle_core::DType) -> std::result::Result<T, E>,
        smoke: impl Fn(&T) -> std::result::Result<(), E>,
    ) -> std::result::Result<(T, DeviceKind), E> {
        let kind = self.device.kind;
        // On the CPU there is nothing to fall back to or wait for.
        let attempt = load(&self.device.device, self.plan.dtype()).and_then(|m| match kind {
            DeviceKind::Cpu => Ok(m),
            _ => {
                smoke(&m)?;
                self.device.device.synchronize()?;
                Ok(m)
            }
        });
        match attempt {
            Ok(m) => Ok((m, kind)),
            Err(e) if !explicit && kind != DeviceKind::Cpu => {
                tracing::warn!("the model failed on {kind} ({e}); falling back to the CPU");
                Ok((
                    load(&candle_core::Device::Cpu, candle_core::DType::F32)?,
                    DeviceKind::Cpu,
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// A guard around one inference call. candle records no gradients, so
    /// there is no autograd to switch off (unlike `torch.inference_mode`);
    /// the scope's use is measurement: on drop it records the call's latency,
    /// after a device synchronize when `VIVACE_PROFILE` is set (GPU kernels are
    /// asynchronous, so without it the time would be the launch time).
    pub fn inference_scope(&self) -> InferenceScope<'_> {
        InferenceScope {
            optimizer: self,
            start: Instant::now(),
        }
    }

    /// Latency summary of the calls recorded so far.
    pub fn latency(&self) -> LatencySummary {
        let mut v = self.latencies.lock().map(|l| l.clone()).unwrap_or_default();
        v.sort();
        let pick = |q: f64| {
            if v.is_empty() {
                0.0
            } else {
                v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64()
            }
        };
        LatencySummary {
            calls: v.len(),
            p50_s: pick(0.5),
            p95_s: pick(0.95),
        }
    }
}

/// Records one call's latency into its [`Optimizer`] when dropped.
#[must_use = "the scope measures until it is dropped"]
pub struct InferenceScope<'a> {
    optimizer: &'a Optimizer,
    start: Instant,
}

impl Drop for InferenceScope<'_> {
    fn drop(&mut self) {
        if self.optimizer.profiling {
            if let Err(e) = self.optimizer.device.device.synchronize() {
                tracing::warn!("device synchronize failed: {e}");
            }
        }
        let elapsed = self.start.elapsed();
        if let Ok(mut l) = self.optimizer.latencies.lock() {
            l.push(elapsed);
        }
    }
}

/// Per-call latency over the calls recorded by inference scopes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Calls recorded.
    pub calls: usize,
    /// Median seconds.
    pub p50_s: f64,
    /// 95th percentile seconds.
    pub p95_s: f64,
}

/// One preparation step of [`compile`]: applied, or skipped with its reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompileStep {
    /// What the step is (`dtype`, `weight layout`, `fusion`, `warm-up`).
    pub name: String,
    /// Whether it was applied.
    pub applied: bool,
    /// What was done, or why not.
    pub detail: String,
}

/// What [`compile`] did to a model.
#[derive(Debug, Clone, Serialize)]
pub struct CompileReport {
    /// The model's name.
    pub name: String,
    /// Steps, in order.
    pub steps: Vec<CompileStep>,
    /// Warm-up measurements, if warm-up ran.
    pub warmup: Option<WarmupReport>,
}

/// Prepares a model for its device: `prepare` performs the model's own steps
/// (dtype, layout, fusion) and reports each; then the model is warmed with
/// `run` unless the plan turns warm-up off. Skipped steps are logged.
pub fn compile<E>(
    name: &str,
    plan: &Plan,
    prepare: impl FnOnce(&Plan) -> std::result::Result<Vec<CompileStep>, E>,
    run: impl FnMut() -> std::result::Result<(), E>,
) -> std::result::Result<CompileReport, E> {
    let mut steps = prepare(plan)?;
    let warmup = if plan.warmup {
        let report = warmup::warmup(run, WarmupOptions::default())?;
        steps.push(CompileStep {
            name: "warm-up".into(),
            applied: true,
            detail: format!(
                "{} runs, cold {:.3} s, warm {:.3} s{}",
                report.runs,
                report.cold.as_secs_f64(),
                report.warm.as_secs_f64(),
                if report.settled {
                    ""
                } else {
                    " (did not settle)"
                }
            ),
        });
        Some(report)
    } else {
        steps.push(CompileStep {
            name: "warm-up".into(),
            applied: false,
            detail: "VIVACE_WARMUP=0".into(),
        });
        None
    };
    for step in steps.iter().filter(|s| !s.applied) {
        tracing::info!(model = name, step = %step.name, "skipped: {}", step.detail);
    }
    Ok(CompileReport {
        name: name.into(),
        steps,
        warmup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu_optimizer() -> Optimizer {
        let hw = Hardware::probe();
        let plan = Plan::new(&hw, DeviceKind::Cpu, &Overrides::default()).expect("plan");
        Optimizer::from_parts(hw, ChosenDevice::cpu(), plan)
    }

    #[test]
    fn inference_scope_records_latency() {
        let opt = cpu_optimizer();
        for ms in [1u64, 3, 2] {
            let _scope = opt.inference_scope();
            std::thread::sleep(Duration::from_millis(ms));
        }
        let l = opt.latency();
        assert_eq!(l.calls, 3);
        assert!(l.p50_s >= 0.002 && l.p95_s >= l.p50_s, "{l:?}");
    }

    #[test]
    fn compile_reports_applied_and_skipped_steps() {
        let opt = cpu_optimizer();
        let report = compile(
            "toy",
            &opt.plan,
            |_| {
                Ok::<_, ()>(vec![CompileStep {
                    name: "fusion".into(),
                    applied: false,
                    detail: "nothing to fuse".into(),
                }])
            },
            || Ok(()),
        )
        .expect("compile");
        assert_eq!(report.steps.len(), 2);
        assert!(report.warmup.is_some());
        assert_eq!(report.steps[1].name, "warm-up");
    }
}
