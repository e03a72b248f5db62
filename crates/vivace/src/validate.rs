//! `vivace validate`: does the performance layer work on this machine?
//!
//! The seed module's eight checks (optimizer, CUDA settings, Metal settings,
//! CPU settings, batch size, inference scope, compile, warm-up), each PASS,
//! SKIP with a reason, or FAIL, plus an end-to-end check that the default
//! voice speaks a known sentence equal to Piper's output.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use vivace_models::vits::SynthesisParams;
use vivace_perf::batch::{memory_budget, MemoryPolicy};
use vivace_perf::{compile, CompileStep, DeviceKind, Optimizer};

use crate::bench::peak_rss;
use crate::synth::Synthesizer;

/// Piper 1.8's waveform for "Hello world." on the default voice, noise 0
/// (`tools/make_goldens.py`), and its ids.
const HELLO_GOLDEN: &[u8] = include_bytes!("../tests/fixtures/piper_hello_s0_ls1.0.f32");
const HELLO_IDS: [i64; 31] = [
    1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 100, 0, 3, 0, 35, 0, 120, 0, 62, 0, 122, 0, 24, 0,
    17, 0, 10, 0, 2,
];
/// Largest relative L2 error accepted against the golden.
const TOLERANCE: f64 = 1e-3;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Works.
    Pass,
    /// Does not apply here.
    Skip,
    /// Broken.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Short name.
    pub name: &'static str,
    /// Outcome.
    pub status: Status,
    /// What was measured, or why it was skipped or failed.
    pub detail: String,
}

fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
    }
}

/// Runs every check. `synth` is the default voice loaded for the optimizer's
/// device, or the reason it could not be.
pub fn run(optimizer: &Optimizer, synth: Result<&Synthesizer, String>) -> Vec<Check> {
    let plan = &optimizer.plan;
    let kind = optimizer.device.kind;
    let mut checks = vec![check(
        "optimizer",
        Status::Pass,
        format!(
            "device {kind}, precision {}, {} CPU threads{}",
            plan.precision,
            plan.cpu_threads,
            optimizer
                .device
                .fallback
                .as_ref()
                .map_or(String::new(), |f| format!(" (fell back: {f})"))
        ),
    )];
    checks.push(cuda_settings(optimizer));
    checks.push(match kind {
        DeviceKind::Metal(_) => matmul_matches_cpu("metal settings", &optimizer.device.device),
        _ => check(
            "metal settings",
            Status::Skip,
            format!("device is {kind}, not Metal"),
        ),
    });
    let threads = candle_core::utils::get_num_threads();
    checks.push(if threads == plan.cpu_threads {
        check(
            "cpu settings",
            Status::Pass,
            format!("candle uses {threads} threads, as planned"),
        )
    } else {
        check(
            "cpu settings",
            Status::Fail,
            format!(
                "planned {} threads, candle uses {threads}",
                plan.cpu_threads
            ),
        )
    });

    let synth = match synth {
        Ok(s) => s,
        Err(reason) => {
            for name in [
                "batch size",
                "inference scope",
                "compile",
                "warm-up",
                "end to end",
            ] {
                checks.push(check(
                    name,
                    Status::Fail,
                    format!("default voice unavailable: {reason}"),
                ));
            }
            return checks;
        }
    };
    let params = SynthesisParams {
        noise_scale: 0.0,
        noise_w: 0.0,
        ..synth.voice().default_params()
    };
    let speak = || synth.voice().model().synthesize(&HELLO_IDS, &params);

    checks.push(batch_size(optimizer, &speak));

    let before = optimizer.latency().calls;
    let scoped = {
        let _scope = optimizer.inference_scope();
        speak()
    };
    let after = optimizer.latency();
    checks.push(match scoped {
        Ok(_) if after.calls == before + 1 && after.p50_s > 0.0 => check(
            "inference scope",
            Status::Pass,
            format!(
                "latency recorded ({:.3} s median over {} calls)",
                after.p50_s, after.calls
            ),
        ),
        Ok(_) => check(
            "inference scope",
            Status::Fail,
            "the call's latency was not recorded",
        ),
        Err(e) => check(
            "inference scope",
            Status::Fail,
            format!("synthesis failed: {e}"),
        ),
    });

    let report = compile(
        "en_US-joe-medium",
        plan,
        |plan| {
            Ok::<_, candle_core::Error>(vec![
                CompileStep {
                    name: "dtype".into(),
                    applied: true,
                    detail: format!("weights loaded as {:?}", plan.dtype()),
                },
                CompileStep {
                    name: "fusion".into(),
                    applied: false,
                    detail: "no fused VITS kernels yet (the CPU speed issue measures what pays)"
                        .into(),
                },
            ])
        },
        || speak().map(|_| ()),
    );
    match report {
        Ok(report) => {
            let steps: Vec<String> = report
                .steps
                .iter()
                .map(|s| {
                    format!(
                        "{}: {}",
                        s.name,
                        if s.applied { "applied" } else { "skipped" }
                    )
                })
                .collect();
            checks.push(check("compile", Status::Pass, steps.join(", ")));
            checks.push(match &report.warmup {
                Some(w) => check(
                    "warm-up",
                    // Latency that does not settle means a busy machine, not
                    // a broken warm-up: reported, not failed.
                    Status::Pass,
                    format!(
                        "cold {:.3} s, warm {:.3} s after {} runs{}",
                        w.cold.as_secs_f64(),
                        w.warm.as_secs_f64(),
                        w.runs,
                        if w.settled {
                            ""
                        } else {
                            " (latency did not settle: is the machine busy?)"
                        }
                    ),
                ),
                None => check("warm-up", Status::Skip, "VIVACE_WARMUP=0"),
            });
        }
        Err(e) => {
            checks.push(check("compile", Status::Fail, e.to_string()));
            checks.push(check("warm-up", Status::Fail, e.to_string()));
        }
    }

    checks.push(match speak() {
        Ok(audio) => {
            let golden: Vec<f32> = HELLO_GOLDEN
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if audio.len() != golden.len() {
                check(
                    "end to end",
                    Status::Fail,
                    format!("{} samples, Piper gives {}", audio.len(), golden.len()),
                )
            } else {
                let err = relative_l2(&audio, &golden);
                check(
                    "end to end",
                    if err <= TOLERANCE { Status::Pass } else { Status::Fail },
                    format!("\"Hello world.\" vs Piper 1.8: relative L2 error {err:.1e} (limit {TOLERANCE:.0e})"),
                )
            }
        }
        Err(e) => check("end to end", Status::Fail, format!("synthesis failed: {e}")),
    });
    checks
}

/// On CUDA, TF32 must be on exactly when planned: a 512×512 matmul's error
/// against f64 is ~1e-3 with TF32 (10-bit mantissa) and ~1e-6 without.
fn cuda_settings(optimizer: &Optimizer) -> Check {
    let kind = optimizer.device.kind;
    if !matches!(kind, DeviceKind::Cuda(_)) {
        return check(
            "cuda settings",
            Status::Skip,
            format!("device is {kind}, not CUDA"),
        );
    }
    let measure = || -> candle_core::Result<f64> {
        let n = 512;
        let a = Tensor::randn(0f32, 1f32, (n, n), &Device::Cpu)?;
        let b = Tensor::randn(0f32, 1f32, (n, n), &Device::Cpu)?;
        let exact = a.to_dtype(DType::F64)?.matmul(&b.to_dtype(DType::F64)?)?;
        let dev = &optimizer.device.device;
        let got = a
            .to_device(dev)?
            .matmul(&b.to_device(dev)?)?
            .to_device(&Device::Cpu)?;
        let diff = (got.to_dtype(DType::F64)? - &exact)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f64>()?;
        let norm = exact.sqr()?.sum_all()?.to_scalar::<f64>()?;
        Ok((diff / norm).sqrt())
    };
    match measure() {
        Ok(err) => {
            let tf32_seen = err > 1e-4;
            let ok = tf32_seen == optimizer.plan.tf32;
            check(
                "cuda settings",
                if ok { Status::Pass } else { Status::Fail },
                format!(
                    "TF32 planned {}, matmul relative error {err:.1e} ({})",
                    optimizer.plan.tf32,
                    if tf32_seen { "TF32 active" } else { "full f32" }
                ),
            )
        }
        Err(e) => check("cuda settings", Status::Fail, e.to_string()),
    }
}

/// A small matmul on `device` equals the CPU's.
fn matmul_matches_cpu(name: &'static str, device: &Device) -> Check {
    let run = || -> candle_core::Result<f32> {
        let a = Tensor::randn(0f32, 1f32, (64, 64), &Device::Cpu)?;
        let want = a.matmul(&a)?;
        let got = a
            .to_device(device)?
            .matmul(&a.to_device(device)?)?
            .to_device(&Device::Cpu)?;
        (got - want)?.abs()?.max_all()?.to_scalar::<f32>()
    };
    match run() {
        Ok(d) if d < 1e-3 => check(
            name,
            Status::Pass,
            format!("matmul matches the CPU (max diff {d:.1e})"),
        ),
        Ok(d) => check(
            name,
            Status::Fail,
            format!("matmul differs from the CPU by {d:.1e}"),
        ),
        Err(e) => check(name, Status::Fail, e.to_string()),
    }
}

/// The memory budget from measured memory per item (peak RSS growth of one
/// synthesis) and available memory.
fn batch_size(optimizer: &Optimizer, speak: &dyn Fn() -> candle_core::Result<Vec<f32>>) -> Check {
    let before = peak_rss();
    let start = Instant::now();
    if let Err(e) = speak() {
        return check("batch size", Status::Fail, format!("synthesis failed: {e}"));
    }
    let elapsed = start.elapsed();
    let (Some(before), Some(after)) = (before, peak_rss()) else {
        return check(
            "batch size",
            Status::Skip,
            "peak memory is not readable on this OS",
        );
    };
    // Peak growth is 0 when earlier calls already reached the peak: then the
    // 32 MiB floor stands in, and the detail says so.
    let growth = after.saturating_sub(before);
    let floor = 32u64 << 20;
    let per_item = growth.max(floor);
    let free = optimizer.hardware.cpu.available_memory.unwrap_or(0);
    let policy = MemoryPolicy::default();
    let budget = memory_budget(free, per_item, policy);
    let fits = (free as f64 * policy.utilization) as u64 >= per_item + policy.reserve;
    check(
        "batch size",
        if fits { Status::Pass } else { Status::Fail },
        format!(
            "{:.0} MiB per sentence{}, {:.1} GiB available → at most {budget} in flight ({:.3} s per call)",
            per_item as f64 / (1u64 << 20) as f64,
            if growth < floor { " (floor: peak memory did not grow)" } else { " (peak growth)" },
            free as f64 / (1u64 << 30) as f64,
            elapsed.as_secs_f64()
        ),
    )
}

/// `||a - b|| / ||b||`.
pub fn relative_l2(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x - y).powi(2))
        .sum();
    let den: f64 = b.iter().map(|&y| f64::from(y).powi(2)).sum();
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}
