//! `vivace bench`: baseline against the plan, measured in fresh processes.
//!
//! Each (variant, workload) runs in its own child process (`vivace
//! bench-run`), so cold start is really cold and each variant gets the
//! process-wide settings it asks for (candle fixes its thread count when its
//! pool starts, so two variants cannot share a process honestly).
//!
//! - **baseline**: f32, library defaults (candle's own thread count, the
//!   `VIVACE_*` overrides removed), no warm-up, one sentence at a time;
//! - **optimized**: the performance layer's plan, warmed up first.
//!
//! Per workload: cold start (process start to the first sentence's audio),
//! warm latency p50/p95 of the whole text, real-time factor, throughput in
//! audio seconds per second, and peak RSS.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use vivace_frontend::audio::{AudioSink, PostProcess};

use crate::synth::{SynthError, Synthesizer};

/// A text to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// One short sentence.
    Short,
    /// A three-sentence paragraph.
    Medium,
    /// About twelve sentences.
    Long,
}

impl Workload {
    /// Every workload, shortest first.
    pub const ALL: [Workload; 3] = [Self::Short, Self::Medium, Self::Long];

    /// The text spoken.
    pub fn text(self) -> &'static str {
        match self {
            Self::Short => "Hello from Vivace.",
            Self::Medium => {
                "The translation is ready. It took less than a second to produce. Would you like to hear it again?"
            }
            Self::Long => {
                "Hello world. I see an MRI. At 3:15 we counted 42 birds. Dr. Smith lives on Elm St. \
                 Is it raining outside? Wait, what? No; that's fine: really! The quick brown fox jumps \
                 over the lazy dog while the old farmer watches quietly from his porch. This is the \
                 first sentence. Here is the second one! And a third?"
            }
        }
    }
}

/// Which configuration a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Library defaults, no warm-up.
    Baseline,
    /// The performance layer's plan.
    Optimized,
}

/// What one child process measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// The configuration.
    pub variant: Variant,
    /// The text.
    pub workload: Workload,
    /// Device used.
    pub device: String,
    /// Process start to the first sentence's audio, seconds (load included,
    /// a batch-size search excluded: it runs once per machine and is cached).
    pub cold_start_s: f64,
    /// Seconds spent measuring the batch size in this process (0 if cached or fixed).
    pub batch_search_s: f64,
    /// Warm-up calls made before timing (0 for the baseline).
    pub warmup_runs: usize,
    /// Whole-text synthesis times of the timed runs, seconds.
    pub latencies_s: Vec<f64>,
    /// Seconds of audio per run.
    pub audio_s: f64,
    /// Peak resident memory, bytes.
    pub peak_rss: Option<u64>,
    /// Sentences per model call.
    pub batch: usize,
    /// How the batch was chosen (measured, cached or fixed).
    pub batch_source: String,
    /// The measurements behind a measured batch.
    pub batch_probes: Vec<vivace_perf::batch::Probe>,
}

/// Summary of one (variant, workload).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The raw measurements.
    #[serde(flatten)]
    pub run: RunResult,
    /// Median warm latency, seconds.
    pub p50_s: f64,
    /// 95th percentile warm latency, seconds.
    pub p95_s: f64,
    /// Fastest timed run, seconds (with `max_s`, the spread).
    pub min_s: f64,
    /// Slowest timed run, seconds.
    pub max_s: f64,
    /// Median real-time factor (latency / audio).
    pub rtf: f64,
    /// Audio seconds per second at batch 1.
    pub throughput: f64,
}

impl Summary {
    /// Medians and percentiles of a run.
    pub fn of(run: RunResult) -> Self {
        let mut v = run.latencies_s.clone();
        v.sort_by(f64::total_cmp);
        let pick = |q: f64| {
            if v.is_empty() {
                f64::NAN
            } else {
                v[((v.len() - 1) as f64 * q).round() as usize]
            }
        };
        let p50 = median(&v);
        Self {
            p50_s: p50,
            p95_s: pick(0.95),
            min_s: pick(0.0),
            max_s: pick(1.0),
            rtf: p50 / run.audio_s,
            throughput: run.audio_s / p50,
            run,
        }
    }
}

/// Swallows audio (benchmarks time synthesis, not disk writes).
struct NullSink;

impl AudioSink for NullSink {
    fn write(&mut self, _samples: &[f32]) -> vivace_frontend::Result<()> {
        Ok(())
    }

    fn finish(self: Box<Self>) -> vivace_frontend::Result<()> {
        Ok(())
    }
}

/// The child's work: time `workload` on an already loaded voice. `started` is
/// the process start (for cold start), `warm` whether to warm up first.
pub fn measure(
    synth: &Synthesizer,
    device: String,
    variant: Variant,
    workload: Workload,
    runs: usize,
    started: Instant,
    batch: &BatchDecision,
) -> Result<RunResult, SynthError> {
    let params = synth.default_params()?;
    let post = PostProcess::default();
    let text = workload.text();
    let mut sink = NullSink;
    let first = synth.speak(text, &params, &post, 0.0, &mut sink)?;
    let cold_start = started
        .elapsed()
        .saturating_sub(first.total)
        .saturating_sub(batch.search_time)
        + first.first_audio.unwrap_or_default();
    let warmup_runs = match variant {
        Variant::Baseline => 0,
        Variant::Optimized => {
            let report = vivace_perf::warmup(
                || {
                    synth
                        .speak(text, &params, &post, 0.0, &mut NullSink)
                        .map(|_| ())
                },
                vivace_perf::WarmupOptions::default(),
            )?;
            report.runs
        }
    };
    let mut latencies = Vec::with_capacity(runs);
    let mut audio_s = first.audio_seconds;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let report = synth.speak(text, &params, &post, 0.0, &mut sink)?;
        latencies.push(start.elapsed().as_secs_f64());
        audio_s = report.audio_seconds;
    }
    Ok(RunResult {
        variant,
        workload,
        device,
        cold_start_s: cold_start.as_secs_f64(),
        batch_search_s: batch.search_time.as_secs_f64(),
        warmup_runs,
        latencies_s: latencies,
        audio_s,
        peak_rss: peak_rss(),
        batch: synth.batch_size(),
        batch_source: batch.source.clone(),
        batch_probes: batch.probes.clone(),
    })
}

/// The batch size a run uses and where it came from.
#[derive(Debug, Clone)]
pub struct BatchDecision {
    /// Sentences per model call.
    pub batch: usize,
    /// `baseline`, `VIVACE_BATCH_SIZE`, `cached` or `measured`.
    pub source: String,
    /// Measurements, when measured now.
    pub probes: Vec<vivace_perf::batch::Probe>,
    /// Time spent measuring now.
    pub search_time: std::time::Duration,
}

impl BatchDecision {
    /// Batch 1, as the baseline runs.
    pub fn one(source: &str) -> Self {
        Self {
            batch: 1,
            source: source.into(),
            probes: Vec::new(),
            search_time: std::time::Duration::ZERO,
        }
    }
}

/// Largest batch a search may try on the CPU, whatever the memory allows
/// (time bound); the CPU plan runs batch 1 anyway.
const MAX_SEARCHED_BATCH: usize = 16;
/// The same on an accelerator, where throughput keeps growing with the batch
/// longer (the search stops once doubling gains under 10 %).
const MAX_SEARCHED_BATCH_ACCELERATOR: usize = 64;

/// The batch for `text` under `optimizer`'s plan: fixed by `VIVACE_BATCH_SIZE`,
/// else remembered in `cache_path` for this voice, device and input length,
/// else measured (bounded by the memory budget) and remembered.
pub fn decide_batch(
    synth: &Synthesizer,
    optimizer: &vivace_perf::Optimizer,
    voice_name: &str,
    text: &str,
    cache_path: &std::path::Path,
) -> Result<BatchDecision, SynthError> {
    use vivace_perf::batch::{memory_budget, BatchCache, MemoryPolicy};
    if let Some(batch) = optimizer.plan.batch_size {
        return Ok(BatchDecision {
            batch,
            source: "VIVACE_BATCH_SIZE".into(),
            probes: Vec::new(),
            search_time: std::time::Duration::ZERO,
        });
    }
    if optimizer.plan.sentence_threads > 1 {
        // The CPU plan runs sentences side by side at batch 1; a batch would
        // switch that off, and the search below compares batches only.
        return Ok(BatchDecision::one("sentence threads (batch 1)"));
    }
    let sentences = synth.sentences(text)?;
    let longest = sentences.iter().map(|s| s.ids.len()).max().unwrap_or(1);
    let key = BatchCache::key(voice_name, &optimizer.device.kind.to_string(), longest);
    let mut cache = BatchCache::open(cache_path);
    if let Some(choice) = cache.get(&key) {
        return Ok(BatchDecision {
            batch: choice.batch,
            source: "cached".into(),
            probes: choice.probes.clone(),
            search_time: std::time::Duration::ZERO,
        });
    }
    // Memory per sentence: peak RSS growth of one synthesis of the longest
    // sentence (at least 32 MiB, when the peak was already reached).
    let search_start = Instant::now();
    let params = synth.default_params()?;
    let before = peak_rss().unwrap_or(0);
    if let Some(s) = sentences.iter().max_by_key(|s| s.ids.len()) {
        synth.synthesize_sentences(std::slice::from_ref(s), &params, 1)?;
    }
    let per_item = peak_rss().unwrap_or(0).saturating_sub(before).max(32 << 20);
    // The budget is the device's free memory (RAM on the CPU). On a GPU the
    // per-sentence figure above is host memory, a stand-in until device
    // memory is measured per batch (the GPU issue).
    use vivace_perf::hardware::GpuKind;
    let gpu = match optimizer.device.kind {
        vivace_perf::DeviceKind::Cpu => None,
        vivace_perf::DeviceKind::Cuda(i) => Some((GpuKind::Cuda, i)),
        vivace_perf::DeviceKind::Metal(i) => Some((GpuKind::Metal, i)),
    };
    let device_free = gpu.and_then(|(kind, index)| {
        optimizer
            .hardware
            .gpus
            .iter()
            .find(|g| g.kind == kind && g.index == index)
            .and_then(|g| g.free_memory)
    });
    let free = device_free
        .or(optimizer.hardware.cpu.available_memory)
        .unwrap_or(0);
    let cap = match gpu {
        None => MAX_SEARCHED_BATCH,
        Some(_) => MAX_SEARCHED_BATCH_ACCELERATOR,
    };
    let max_batch = memory_budget(free, per_item, MemoryPolicy::default()).min(cap);
    let choice = synth.choose_batch(&sentences, &params, max_batch)?;
    cache.put(key, choice.clone());
    Ok(BatchDecision {
        batch: choice.batch,
        source: format!("measured ({})", choice.reason),
        probes: choice.probes,
        search_time: search_start.elapsed(),
    })
}

/// The median of values sorted ascending: the mean of the middle two for an
/// even count, NaN for none.
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Today's date in UTC, `YYYY-MM-DD` (days since 1970 to the civil date).
pub fn today_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Peak resident set size in bytes (`VmHWM`), on Linux.
pub fn peak_rss() -> Option<u64> {
    proc_status_bytes("VmHWM:")
}

/// A memory field of `/proc/self/status` (`VmHWM:`, `VmRSS:`) in bytes; Linux only.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Optimized over baseline on throughput: total audio over total median time
/// across the workloads both variants ran.
pub fn speedup(summaries: &[Summary]) -> Option<f64> {
    let total = |variant: Variant| {
        let (audio, time) = summaries
            .iter()
            .filter(|s| s.run.variant == variant)
            .fold((0.0, 0.0), |(a, t), s| (a + s.run.audio_s, t + s.p50_s));
        (time > 0.0).then(|| audio / time)
    };
    Some(total(Variant::Optimized)? / total(Variant::Baseline)?)
}

/// The f32 rate of Vivace's packed GEMM (`nn::cpu_gemm`, which the
/// convolutions run on) on the kernel path in use (`VIVACE_CPU_KERNEL`),
/// on a convolution's shape rather than a square: 256 output channels,
/// 768 inputs (256 channels × 3 taps), 8,192 steps in pieces of 512 on
/// rayon's pool; the best of five (GFLOP/s).
pub fn packed_gemm_gflops() -> f64 {
    use rayon::prelude::*;
    use vivace_models::nn::cpu_gemm::{PackedMatrix, Start};
    let (m, k, n, piece) = (256, 768, 8192, 512);
    let values = |len: usize, seed: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    };
    // Rows a little over 32 KB apart, as a convolution's channels are
    // (rows exactly a power of two apart would alias in the cache).
    let stride = n + 24;
    let (a, b) = (
        PackedMatrix::new(&values(m * k, 1), m, k),
        values(k * stride, 2),
    );
    let product = || {
        (0..n / piece).into_par_iter().for_each(|p| {
            let rows: Vec<&[f32]> = (0..k)
                .map(|r| &b[r * stride + p * piece..r * stride + (p + 1) * piece])
                .collect();
            let mut out = vec![0f32; m * piece];
            a.multiply(piece, &mut out, piece, &rows, Start::Zero, None);
            std::hint::black_box(&out);
        })
    };
    product(); // warm the pool and the caches
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        product();
        best = best.min(start.elapsed().as_secs_f64());
    }
    2.0 * (m * k * n) as f64 / best / 1e9
}

/// The f32 matmul rate candle reaches on this machine (GFLOP/s): the best of
/// five 1024×1024×1024 products on the CPU, with the process's thread plan.
pub fn matmul_peak_gflops() -> candle_core::Result<f64> {
    let n = 1024;
    let dev = candle_core::Device::Cpu;
    let a = candle_core::Tensor::randn(0f32, 1.0, (n, n), &dev)?;
    let b = candle_core::Tensor::randn(0f32, 1.0, (n, n), &dev)?;
    a.matmul(&b)?; // warm the pool and the caches
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        a.matmul(&b)?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n * n * n) as f64 / best / 1e9)
}
