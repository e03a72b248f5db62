//! `vivace bench --embed`: speaker embeddings per second, baseline against
//! the plan, each measured in a fresh process as [`crate::bench`] does.
//!
//! - **baseline**: library defaults (candle's own thread count), one window
//!   per encoder call, no warm-up;
//! - **optimized**: the plan's threads, all of a run's windows per call (or
//!   `VIVACE_BATCH_SIZE`), warmed up first.
//!
//! One run embeds every given recording, from the WAV file to the
//! embedding (reading, resampling, silence trimming, mel frames, encoder).

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::bench::{median, peak_rss, Variant};
use crate::speaker::{SpeakerEncoder, SpeakerError};

/// What one embedding child process measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbedRunResult {
    /// The configuration.
    pub variant: Variant,
    /// Device used.
    pub device: String,
    /// Process start to the first run's embeddings, seconds (weights load
    /// included, and on an accelerator the batch search when not cached yet).
    pub cold_start_s: f64,
    /// Warm-up runs made before timing (0 for the baseline).
    pub warmup_runs: usize,
    /// Times of the timed runs (all files each), seconds.
    pub latencies_s: Vec<f64>,
    /// Recordings per run.
    pub files: usize,
    /// Encoder windows per run.
    pub windows: usize,
    /// Seconds of input audio per run.
    pub audio_s: f64,
    /// Windows per encoder call (at most all of a run's windows).
    pub batch: usize,
    /// Peak resident memory, bytes.
    pub peak_rss: Option<u64>,
}

/// Summary of one variant.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedSummary {
    /// The raw measurements.
    #[serde(flatten)]
    pub run: EmbedRunResult,
    /// Median time of a run, seconds.
    pub p50_s: f64,
    /// Fastest run, seconds.
    pub min_s: f64,
    /// Slowest run, seconds.
    pub max_s: f64,
    /// Recordings embedded per second (at the median).
    pub embeddings_per_s: f64,
    /// Seconds of input audio embedded per second (at the median).
    pub audio_per_s: f64,
}

impl EmbedSummary {
    /// Median and spread of a run.
    pub fn of(run: EmbedRunResult) -> Self {
        let mut v = run.latencies_s.clone();
        v.sort_by(f64::total_cmp);
        let p50 = median(&v);
        Self {
            p50_s: p50,
            min_s: v.first().copied().unwrap_or(f64::NAN),
            max_s: v.last().copied().unwrap_or(f64::NAN),
            embeddings_per_s: run.files as f64 / p50,
            audio_per_s: run.audio_s / p50,
            run,
        }
    }
}

/// Input audio length of `files`, seconds (unreadable files count 0; the
/// embedding itself reports them).
fn audio_seconds(files: &[PathBuf]) -> f64 {
    files
        .iter()
        .filter_map(|f| hound::WavReader::open(f).ok())
        .map(|r| f64::from(r.duration()) / f64::from(r.spec().sample_rate))
        .sum()
}

/// The child's work: time embedding `files` with a loaded encoder. `started`
/// is the process start (for cold start).
pub fn measure_embeddings(
    encoder: &SpeakerEncoder,
    files: &[PathBuf],
    variant: Variant,
    device: String,
    runs: usize,
    started: Instant,
) -> Result<EmbedRunResult, SpeakerError> {
    let first = encoder.embed_files(files)?;
    let cold_start = started.elapsed();
    let windows: usize = first.iter().map(|e| e.windows).sum();
    let warmup_runs = match variant {
        Variant::Baseline => 0,
        Variant::Optimized => {
            vivace_perf::warmup(
                || encoder.embed_files(files).map(|_| ()),
                vivace_perf::WarmupOptions::default(),
            )?
            .runs
        }
    };
    let mut latencies = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        encoder.embed_files(files)?;
        latencies.push(start.elapsed().as_secs_f64());
    }
    Ok(EmbedRunResult {
        variant,
        device,
        cold_start_s: cold_start.as_secs_f64(),
        warmup_runs,
        latencies_s: latencies,
        files: files.len(),
        windows,
        audio_s: audio_seconds(files),
        batch: encoder.batch_size().min(windows),
        peak_rss: peak_rss(),
    })
}
