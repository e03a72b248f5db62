//! Speaker embeddings for voice cloning: reference recordings in, GE2E
//! embeddings (256 numbers, unit length) out, as resemblyzer computes them.
//!
//! The pipeline per file: [`vivace_frontend::speaker_audio::preprocess`]
//! (16 kHz, −30 dBFS, long silences trimmed), windows of 1.6 s every 0.77 s
//! ([`partial_window_starts`]), mel frames of the padded waveform, the
//! encoder on every window, and the windows' mean, normalized. Windows of
//! several files go through the encoder together, in batches of the size the
//! performance layer chose.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::Serialize;
use vivace_frontend::mel::MelSpectrogram;
use vivace_frontend::speaker_audio::{self, ENCODER_SAMPLE_RATE};
use vivace_models::voice_encoder::{
    partial_window_starts, utterance_embedding, VoiceEncoder, HOP, MEL_CHANNELS, WINDOW_FRAMES,
};
use vivace_perf::batch::{
    classify_failure, find_batch, run_with_backoff, BackoffError, BatchCache, BatchChoice,
    ProbeError,
};
use vivace_perf::{DeviceKind, Optimizer};

/// Windows per second of speech (resemblyzer's `rate`).
pub const WINDOWS_PER_SECOND: f64 = 1.3;
/// Smallest share of the last window that must hold speech for it to count
/// (resemblyzer's `min_coverage`).
pub const MIN_COVERAGE: f64 = 0.75;
/// Largest window batch the accelerator search tries (a window's activations
/// are a few MiB, so memory is not the bound; time is).
pub const MAX_SEARCHED_WINDOWS: usize = 256;
/// FFT size of the encoder's mel frames (25 ms at 16 kHz).
const N_FFT: usize = 400;

/// What can go wrong between a recording and its embedding.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    /// After silences are trimmed, less than one window of speech is left.
    #[error(
        "{}: only {seconds:.2} s of speech after trimming silences; the voice encoder needs at least {needed:.1} s: use a longer recording",
        path.display()
    )]
    TooShort {
        /// The recording.
        path: PathBuf,
        /// Speech left, in seconds.
        seconds: f64,
        /// One window, in seconds.
        needed: f64,
    },
    /// The weights file is of neither known kind.
    #[error(
        "{}: unknown voice-encoder weights: give resemblyzer's pretrained.pt or Chatterbox's ve.safetensors",
        .0.display()
    )]
    UnknownWeights(PathBuf),
    /// No recording was given.
    #[error("no recording given: name at least one WAV file")]
    NoInput,
    /// Loading or running the encoder failed.
    #[error(transparent)]
    Model(#[from] vivace_models::Error),
    /// Reading or preparing a recording failed.
    #[error(transparent)]
    Frontend(#[from] vivace_frontend::Error),
    /// Even one window does not fit in the device's memory.
    #[error("out of memory even for a single window on this device")]
    OutOfMemory,
    /// The encoder failed while running.
    #[error("embedding failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// One recording's embedding.
#[derive(Debug, Clone, Serialize)]
pub struct Embedding {
    /// The recording.
    pub file: PathBuf,
    /// Unit-length speaker embedding.
    pub embedding: Vec<f32>,
    /// Windows averaged into it.
    pub windows: usize,
    /// Seconds of speech left after trimming silences.
    pub speech_seconds: f64,
}

/// A recording cut into the encoder's windows.
struct Prepared {
    file: PathBuf,
    /// Mel frames `[frames, 40]` of the waveform padded to the last window.
    mel: Vec<f32>,
    starts: Vec<usize>,
    speech_seconds: f64,
}

/// The voice encoder with its front end and batch size.
#[derive(Debug)]
pub struct SpeakerEncoder {
    encoder: VoiceEncoder,
    mel: MelSpectrogram,
    batch_size: usize,
}

impl SpeakerEncoder {
    /// Loads the encoder weights at `path` onto `device`: resemblyzer's
    /// `pretrained.pt` or Chatterbox's `ve.safetensors` (told apart by the
    /// file's extension).
    pub fn load(path: &Path, device: &Device) -> Result<Self, SpeakerError> {
        let encoder = match path.extension().and_then(|e| e.to_str()) {
            Some("pt") => VoiceEncoder::from_resemblyzer(path, device)?,
            Some("safetensors") => VoiceEncoder::from_chatterbox(path, device)?,
            _ => return Err(SpeakerError::UnknownWeights(path.to_path_buf())),
        };
        Ok(Self {
            encoder,
            mel: MelSpectrogram::new(ENCODER_SAMPLE_RATE, N_FFT, HOP, MEL_CHANNELS),
            batch_size: usize::MAX,
        })
    }

    /// Loads the encoder for `optimizer`'s device, falling back to the CPU
    /// as [`Optimizer::load_with_fallback`] does.
    pub fn load_planned(
        path: &Path,
        optimizer: &Optimizer,
        explicit_device: bool,
    ) -> Result<(Self, DeviceKind), SpeakerError> {
        optimizer.load_with_fallback(
            explicit_device,
            |device, _| Self::load(path, device),
            Self::smoke_test,
        )
    }

    /// Runs the encoder once on one silent window, to prove it works on its
    /// device (and, repeated, to warm it up).
    pub fn smoke_test(&self) -> Result<(), SpeakerError> {
        let window = Tensor::zeros(
            (1, WINDOW_FRAMES, MEL_CHANNELS),
            candle_core::DType::F32,
            self.encoder.device(),
        )?;
        self.encoder.embed_windows(&window)?;
        Ok(())
    }

    /// Sets the batch the performance layer plans for this device and
    /// returns how it was chosen: `VIVACE_BATCH_SIZE` if set; on the CPU,
    /// every window of a call at once (the host loops split them between the
    /// threads; one window per call measured 2.2–3.1× slower, see
    /// `docs/PERFORMANCE.md`); on an accelerator, the measured knee of
    /// windows per second up to [`MAX_SEARCHED_WINDOWS`], remembered in
    /// `cache_path` so the search runs once per machine.
    pub fn plan_batch(
        &mut self,
        optimizer: &Optimizer,
        cache_path: &Path,
    ) -> Result<String, SpeakerError> {
        if let Some(batch) = optimizer.plan.batch_size {
            self.set_batch_size(batch);
            return Ok(format!("{batch} (VIVACE_BATCH_SIZE)"));
        }
        if matches!(self.encoder.device(), Device::Cpu) {
            self.batch_size = usize::MAX;
            return Ok("all windows per call (CPU)".into());
        }
        let key = BatchCache::key(
            "voice-encoder",
            &optimizer.device.kind.to_string(),
            WINDOW_FRAMES,
        );
        let mut cache = BatchCache::open(cache_path);
        if let Some(choice) = cache.get(&key) {
            self.set_batch_size(choice.batch);
            return Ok(format!("{} (cached)", choice.batch));
        }
        let choice = self.choose_batch(MAX_SEARCHED_WINDOWS)?;
        self.set_batch_size(choice.batch);
        let how = format!("{} (measured: {})", choice.batch, choice.reason);
        cache.put(key, choice);
        Ok(how)
    }

    /// Sets how many windows go through the encoder per call.
    pub fn set_batch_size(&mut self, batch_size: usize) {
        self.batch_size = batch_size.max(1);
    }

    /// Windows per encoder call.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The embeddings of several WAV files, in order; their windows share
    /// encoder batches. The first unusable file is an error naming it.
    pub fn embed_files(&self, paths: &[PathBuf]) -> Result<Vec<Embedding>, SpeakerError> {
        if paths.is_empty() {
            return Err(SpeakerError::NoInput);
        }
        let prepared = paths
            .iter()
            .map(|p| self.prepare(p, speaker_audio::preprocess(p)?))
            .collect::<Result<Vec<_>, _>>()?;
        self.embed_prepared(&prepared)
    }

    /// The embedding of 16 kHz samples already through resemblyzer's
    /// preprocessing (`what` names them in errors and in the result).
    pub fn embed_preprocessed(
        &self,
        samples: Vec<f32>,
        what: &Path,
    ) -> Result<Embedding, SpeakerError> {
        let prepared = self.prepare(what, samples)?;
        let mut all = self.embed_prepared(std::slice::from_ref(&prepared))?;
        all.pop().ok_or(SpeakerError::NoInput)
    }

    /// Cuts preprocessed samples into windows and computes their mel frames.
    fn prepare(&self, path: &Path, mut samples: Vec<f32>) -> Result<Prepared, SpeakerError> {
        let speech_seconds = samples.len() as f64 / f64::from(ENCODER_SAMPLE_RATE);
        let window_samples = WINDOW_FRAMES * HOP;
        if samples.len() < window_samples {
            return Err(SpeakerError::TooShort {
                path: path.to_path_buf(),
                seconds: speech_seconds,
                needed: window_samples as f64 / f64::from(ENCODER_SAMPLE_RATE),
            });
        }
        let starts = partial_window_starts(samples.len(), WINDOWS_PER_SECOND, MIN_COVERAGE)?;
        let end = starts.last().map_or(0, |s| (s + WINDOW_FRAMES) * HOP);
        if samples.len() < end {
            samples.resize(end, 0.0);
        }
        Ok(Prepared {
            file: path.to_path_buf(),
            mel: self.mel.compute(&samples),
            starts,
            speech_seconds,
        })
    }

    /// Runs every window of `prepared` through the encoder in batches and
    /// averages each recording's windows.
    fn embed_prepared(&self, prepared: &[Prepared]) -> Result<Vec<Embedding>, SpeakerError> {
        let windows: Vec<&[f32]> = prepared
            .iter()
            .flat_map(|p| {
                p.starts
                    .iter()
                    .map(|&s| &p.mel[s * MEL_CHANNELS..(s + WINDOW_FRAMES) * MEL_CHANNELS])
            })
            .collect();
        let mut partials: Vec<Vec<f32>> = Vec::with_capacity(windows.len());
        let mut batch = self.batch_size;
        while partials.len() < windows.len() {
            let rest = &windows[partials.len()..];
            let (rows, fitted) = self.embed_batch(rest, batch)?;
            batch = fitted;
            partials.extend(rows);
        }
        let mut rows = partials.into_iter();
        Ok(prepared
            .iter()
            .map(|p| {
                let mine: Vec<Vec<f32>> = rows.by_ref().take(p.starts.len()).collect();
                Embedding {
                    file: p.file.clone(),
                    embedding: utterance_embedding(&mine),
                    windows: mine.len(),
                    speech_seconds: p.speech_seconds,
                }
            })
            .collect())
    }

    /// Embeds the first `batch` of `windows` (or fewer) in one encoder call,
    /// halving on out-of-memory; returns the rows and the batch that fitted.
    fn embed_batch(
        &self,
        windows: &[&[f32]],
        batch: usize,
    ) -> Result<(Vec<Vec<f32>>, usize), SpeakerError> {
        let device = self.encoder.device();
        let result = run_with_backoff(batch.min(windows.len()).max(1), |b| {
            let data: Vec<f32> = windows[..b].concat();
            let mels = Tensor::from_vec(data, (b, WINDOW_FRAMES, MEL_CHANNELS), device)
                .map_err(|e| ProbeError::Failed(SpeakerError::from(e)))?;
            let out = self
                .encoder
                .embed_windows(&mels)
                .and_then(|t| Ok(t.to_vec2::<f32>()?))
                .map_err(|e| classify_failure(SpeakerError::from(e)))?;
            Ok(out)
        });
        match result {
            Ok(done) => Ok(done),
            Err(BackoffError::OutOfMemory) => Err(SpeakerError::OutOfMemory),
            Err(BackoffError::Failed(e)) => Err(e),
        }
    }

    /// Measures windows per second at doubling batch sizes up to `max_batch`
    /// and picks the knee (see [`vivace_perf::batch::find_batch`]).
    pub fn choose_batch(&self, max_batch: usize) -> Result<BatchChoice, SpeakerError> {
        let device = self.encoder.device();
        find_batch(max_batch, 0.1, |b| {
            let mels = Tensor::zeros(
                (b, WINDOW_FRAMES, MEL_CHANNELS),
                candle_core::DType::F32,
                device,
            )
            .map_err(|e| ProbeError::Failed(SpeakerError::from(e)))?;
            let start = Instant::now();
            self.encoder
                .embed_windows(&mels)
                .and_then(|t| Ok(t.to_vec2::<f32>()?))
                .map_err(|e| classify_failure(SpeakerError::from(e)))?;
            Ok(b as f64 / start.elapsed().as_secs_f64())
        })
    }
}

/// Cosine similarity of two embeddings (1 for the same direction); 0 when
/// either is all zeros or their lengths differ.
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return 0.0;
    }
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator == 0.0 {
        0.0
    } else {
        dot / denominator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine_similarity(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-12);
        assert!(cosine_similarity(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-12);
        assert!((cosine_similarity(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(cosine_similarity(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine_similarity(&[1.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn unknown_weight_files_are_refused_by_name() {
        let err = SpeakerEncoder::load(Path::new("encoder.bin"), &Device::Cpu)
            .expect_err("unknown kind")
            .to_string();
        assert!(
            err.contains("encoder.bin") && err.contains("pretrained.pt"),
            "{err}"
        );
    }
}
