//! The model alone on the PyTorch peer's workloads (`bench/torch_peer.py`),
//! so that the two can be compared row by row on the same card in the same
//! run: full synthesis of N random ids at batch 1, and the HiFi-GAN decoder
//! alone on F random latent frames at batch 1 and 8. Rows have the peer's
//! JSON fields. Full synthesis at larger batches (distinct sequences) adds
//! the throughput the peer does not measure.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use vivace_models::nn::graph::CapturedGraph;
use vivace_models::vits::{StageTimes, SynthesisParams, Vits};

use crate::bench::median;

/// What to time.
#[derive(Debug, Clone)]
pub struct ModelBench {
    /// Input ids of the full-synthesis workload (the peer's `--tokens`).
    pub tokens: usize,
    /// Latent frames of the decoder workload (the peer's `--frames`).
    pub frames: usize,
    /// Timed runs per row.
    pub runs: usize,
    /// Untimed runs first.
    pub warmup: usize,
    /// Batches of full synthesis to time for throughput, beyond batch 1.
    pub full_batches: Vec<usize>,
    /// Also time the decoder replayed as a CUDA graph (experimental).
    pub graphs: bool,
}

/// One timed workload, with the peer's field names.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `full-N-tokens` or `decoder-F-frames`.
    pub workload: String,
    /// `vivace-` and the precision (`vivace-tf32`, `vivace-bf16`…).
    pub variant: String,
    /// Items per call.
    pub batch: usize,
    /// Median wall time per call.
    pub median_ms: f64,
    /// Fastest call.
    pub min_ms: f64,
    /// Slowest call.
    pub max_ms: f64,
    /// Timed calls.
    pub runs: usize,
    /// Seconds of audio one call produces (for full synthesis the mean over
    /// the calls: the duration noise changes the length).
    pub audio_s: f64,
    /// Median time over audio time.
    pub rtf: f64,
    /// Full synthesis at batch 1 only: mean milliseconds per call in each
    /// stage, from the same calls again (warm-up included) with each stage
    /// waited for on the device; the timed calls run without those waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages_ms: Option<StagesMs>,
    /// Graph rows: the largest difference from the eager decoder's output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_abs_diff: Option<f64>,
    /// Why the row has no timing (as the peer records a failed variant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Mean time per call in each stage of synthesis.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StagesMs {
    /// Text encoder.
    pub text_encoder: f64,
    /// Duration predictor, durations to the host included.
    pub duration_predictor: f64,
    /// Length regulation.
    pub length_regulation: f64,
    /// Normalizing flow.
    pub flow: f64,
    /// HiFi-GAN decoder.
    pub decoder: f64,
}

impl StagesMs {
    /// The mean per call between two readings of [`Vits::stage_times`].
    fn between(before: &StageTimes, after: &StageTimes, calls: usize) -> Self {
        let ms = |a: std::time::Duration, b: std::time::Duration| {
            a.saturating_sub(b).as_secs_f64() * 1e3 / calls.max(1) as f64
        };
        Self {
            text_encoder: ms(after.text_encoder, before.text_encoder),
            duration_predictor: ms(after.duration_predictor, before.duration_predictor),
            length_regulation: ms(after.length_regulation, before.length_regulation),
            flow: ms(after.flow, before.flow),
            decoder: ms(after.decoder, before.decoder),
        }
    }
}

/// Times both workloads on `model` with its voice's default `params` (noise
/// on, as the peer runs `VitsModel`). `variant` labels the rows.
pub fn run(
    model: &Vits,
    params: &SynthesisParams,
    variant: &str,
    bench: &ModelBench,
) -> candle_core::Result<Vec<Row>> {
    let cfg = model.config();
    let rate = f64::from(cfg.sampling_rate);
    let device = model.device().clone();
    let mut rows = Vec::new();

    // Full synthesis at batch 1 (the peer's ids: seed 0), with a stage
    // breakdown, then at larger batches of distinct sequences for throughput.
    for batch in std::iter::once(1).chain(bench.full_batches.iter().copied()) {
        let seqs: Vec<Vec<i64>> = (0..batch as u64)
            .map(|seed| random_ids(bench.tokens, cfg.vocab_size, seed))
            .collect();
        let items: Vec<(&[i64], SynthesisParams)> =
            seqs.iter().map(|ids| (ids.as_slice(), *params)).collect();
        // The duration noise changes the length from call to call: the
        // audio per call is the mean over every call.
        let (mut samples, mut calls) = (0usize, 0usize);
        // Timed as synthesis runs: without the per-stage synchronizations.
        let timing_was = model.stage_timing();
        model.set_stage_timing(false);
        let times = timed(bench, &device, || {
            let audio = model.synthesize_batch(&items)?;
            samples += audio.iter().map(Vec::len).sum::<usize>();
            calls += 1;
            Ok(())
        });
        model.set_stage_timing(timing_was);
        let times = times?;
        let audio_s = samples as f64 / calls.max(1) as f64 / rate;
        let mut full = row(
            format!("full-{}-tokens", bench.tokens),
            variant,
            batch,
            &times,
            audio_s,
        );
        if batch == 1 {
            // The same calls again with each stage timed, for the breakdown.
            model.set_stage_timing(true);
            let before = model.stage_times();
            let staged = timed(bench, &device, || {
                model.synthesize_batch(&items).map(|_| ())
            });
            model.set_stage_timing(timing_was);
            let calls = bench.warmup + staged?.len();
            full.stages_ms = Some(StagesMs::between(&before, &model.stage_times(), calls));
        }
        rows.push(full);
    }

    for batch in [1, 8] {
        let latents = Tensor::randn(
            0f32,
            1f32,
            (batch, cfg.flow_size, bench.frames),
            &Device::Cpu,
        )?
        .to_device(&device)?;
        let g = (cfg.num_speakers > 1)
            .then(|| Tensor::zeros((batch, cfg.speaker_embedding_size, 1), DType::F32, &device))
            .transpose()?;
        let audio_s = (batch * bench.frames * cfg.hop_length()) as f64 / rate;
        let times = timed(bench, &device, || {
            model.decode(&latents, g.as_ref()).map(|_| ())
        })?;
        rows.push(row(
            format!("decoder-{}-frames", bench.frames),
            variant,
            batch,
            &times,
            audio_s,
        ));
        if bench.graphs {
            rows.push(graph_row(
                model,
                bench,
                &latents,
                g.as_ref(),
                variant,
                audio_s,
            ));
        }
    }
    Ok(rows)
}

/// The decoder replayed as a CUDA graph on `latents`, checked against the
/// eager decoder; a failure is the row's `error`, not the benchmark's.
fn graph_row(
    model: &Vits,
    bench: &ModelBench,
    latents: &Tensor,
    g: Option<&Tensor>,
    variant: &str,
    audio_s: f64,
) -> Row {
    let workload = format!("decoder-{}-frames", bench.frames);
    let variant = format!("{variant}-graph");
    let batch = latents.dims().first().copied().unwrap_or(0);
    let measure = || -> candle_core::Result<Row> {
        if g.is_some() {
            candle_core::bail!("the graph does not record speaker conditioning");
        }
        let graph = CapturedGraph::capture(
            model.decoder(),
            latents.dims(),
            model.decoder_dtype(),
            model.device(),
        )?;
        let eager = model.decode(latents, None)?.to_dtype(DType::F32)?;
        let replayed = graph.run(latents)?.to_dtype(DType::F32)?;
        let diff = (replayed - eager)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f32>()?;
        let times = timed(bench, model.device(), || graph.run(latents).map(|_| ()))?;
        let mut r = row(workload.clone(), &variant, batch, &times, audio_s);
        r.max_abs_diff = Some(f64::from(diff));
        Ok(r)
    };
    measure().unwrap_or_else(|e| Row {
        // candle appends a backtrace when RUST_BACKTRACE is set: the message
        // is the first line.
        error: Some(e.to_string().lines().next().unwrap_or_default().to_string()),
        ..row(workload.clone(), &variant, batch, &[], audio_s)
    })
}

/// Wall times of `bench.runs` calls after `bench.warmup`, each call waited
/// for on the device, sorted ascending.
fn timed(
    bench: &ModelBench,
    device: &Device,
    mut call: impl FnMut() -> candle_core::Result<()>,
) -> candle_core::Result<Vec<f64>> {
    for _ in 0..bench.warmup {
        call()?;
    }
    device.synchronize()?;
    let mut times = Vec::with_capacity(bench.runs);
    for _ in 0..bench.runs.max(1) {
        let start = Instant::now();
        call()?;
        device.synchronize()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn row(workload: String, variant: &str, batch: usize, sorted: &[f64], audio_s: f64) -> Row {
    let ms = |s: f64| s * 1e3;
    let med = median(sorted);
    Row {
        workload,
        variant: variant.to_string(),
        batch,
        median_ms: ms(med),
        min_ms: ms(sorted.first().copied().unwrap_or(f64::NAN)),
        max_ms: ms(sorted.last().copied().unwrap_or(f64::NAN)),
        runs: sorted.len(),
        audio_s,
        rtf: if audio_s > 0.0 {
            med / audio_s
        } else {
            f64::NAN
        },
        stages_ms: None,
        max_abs_diff: None,
        error: None,
    }
}

/// `n` ids uniform in `1..vocab` from a fixed seed (xorshift64*), as the peer
/// draws random ids; id 0 is left out as the peer leaves it out.
pub fn random_ids(n: usize, vocab: usize, seed: u64) -> Vec<i64> {
    let span = vocab.saturating_sub(1).max(1) as u64;
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            1 + (r % span) as i64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_stay_in_range_and_vary() {
        let ids = random_ids(1000, 38, 0);
        assert!(ids.iter().all(|&i| (1..38).contains(&i)));
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 37, "every id but 0 drawn");
        assert_eq!(ids, random_ids(1000, 38, 0), "seeded");
    }

    /// `bench/torch_peer.py`'s `random_ids(8, 38)` prints these: both sides
    /// synthesize the same input.
    #[test]
    fn random_ids_equal_the_peers() {
        assert_eq!(random_ids(8, 38, 0), vec![35, 15, 26, 13, 7, 8, 2, 5]);
    }

    #[test]
    fn rows_take_the_median_and_the_extremes() {
        let r = row("w".into(), "v", 1, &[0.001, 0.002, 0.010], 0.5);
        assert_eq!(
            (r.median_ms, r.min_ms, r.max_ms, r.runs),
            (2.0, 1.0, 10.0, 3)
        );
        assert!((r.rtf - 0.004).abs() < 1e-12);
    }
}
