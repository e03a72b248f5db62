//! Cloning a voice onto any voice by tone-colour conversion (OpenVoice v2):
//! a base voice speaks with its own accent and prosody, and the converter
//! re-voices the audio with the timbre of a reference recording.
//!
//! [`ToneColor`] wraps `vivace_models::openvoice::ToneColorConverter` with
//! what the reference's `ToneColorConverter` does around the network: audio
//! resampled to the converter's rate (22,050 Hz, as `librosa.load` does),
//! the linear spectrogram, `extract_se` (one embedding over a whole
//! recording) and `convert` with `tau` and seeded noise. A base voice's own
//! embedding is computed once from its speech and cached beside it
//! ([`ToneColor::voice_embedding`]). The VITS family converts each sentence
//! of a cloned speaker with it (`family::vits`).
//!
//! A reference recording is embedded as the reference's `se_extractor.get_se`
//! does by default ([`ToneColor::reference_split`]): Silero VAD finds the
//! speech (as `whisper-timestamped`'s `get_vad_segments` calls it), the
//! speech is joined and cut into pieces of about 10 s, and the pieces'
//! embeddings are averaged. Without a detector ([`ToneColor::with_vad`] not
//! called, or `--no-vad`), the whole recording is one piece, as
//! `extract_se` on one file. Not ported: the reference's watermark.

use std::path::{Path, PathBuf};

use candle_core::Device;
use vivace_frontend::mel::MelSpectrogram;
use vivace_frontend::resample::resample;
use vivace_frontend::speaker_audio::read_wav;
use vivace_models::nn::sampling::{gaussian, SeededSource};
use vivace_models::npy;
use vivace_models::openvoice::ToneColorConverter;
use vivace_models::silero_vad::{self, SileroVad, SpeechOptions};

use crate::voice_store::VoiceStore;

/// The name `vivace download openvoice` installs the converter under.
pub const CONVERTER_NAME: &str = "openvoice";
/// The converter's weights, as published (`converter/checkpoint.pth`).
pub const CHECKPOINT_FILE: &str = "checkpoint.pth";
/// The converter's config, as published (`converter/config.json`).
pub const CONFIG_FILE: &str = "config.json";
/// The shortest reference recording that gives an embedding, in seconds.
pub const MIN_REFERENCE_SECONDS: f64 = 1.0;
/// The length OpenVoice cuts a reference's speech into, in seconds.
const SPLIT_SECONDS: f64 = 10.0;
/// Speech runs are widened by this much on each side (whisper-timestamped's
/// `dilatation`), in seconds.
const DILATATION_SECONDS: f64 = 0.5;
/// A recording whose peak is below this (−60 dBFS) is silent.
const SILENT_PEAK: f32 = 1e-3;
/// `tau` of the reference's `convert`.
pub const DEFAULT_TAU: f32 = 0.3;
/// What a base voice says to measure its own tone colour: about 15 s of
/// varied English speech.
const CALIBRATION_TEXT: &str = "The quick brown fox jumps over the lazy dog. \
    She sells sea shells by the sea shore, and the shells she sells are surely seashells. \
    How much wood would a woodchuck chuck if a woodchuck could chuck wood? \
    Every morning the market opens at seven, and by nine the square is full of voices.";

/// Why cloning could not be done.
#[derive(Debug, thiserror::Error)]
pub enum CloneError {
    /// No converter where one was looked for.
    #[error("no OpenVoice tone-colour converter at {path}: {hint}")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
        /// How to get one.
        hint: String,
    },
    /// A recording or embedding that cannot be used.
    #[error("{path}: {reason}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
    /// The converter failed to load or run.
    #[error(transparent)]
    Model(#[from] vivace_models::Error),
    /// Audio could not be read or resampled.
    #[error(transparent)]
    Audio(#[from] vivace_frontend::Error),
    /// Silero VAD, which splits references, could not be fetched.
    #[error("Silero VAD (which finds the speech in a reference) could not be had: {0}; give --no-vad to embed whole recordings")]
    NoDetector(String),
    /// The base voice could not speak its calibration text.
    #[error("cannot measure the base voice's tone colour: {0}")]
    BaseVoice(String),
}

/// Whether `dir` holds a tone-colour converter (`checkpoint.pth` and
/// `config.json`; file names only).
pub fn is_converter_dir(dir: &Path) -> bool {
    dir.join(CHECKPOINT_FILE).is_file() && dir.join(CONFIG_FILE).is_file()
}

/// The converter's folder: `explicit` (a folder, or its `checkpoint.pth`),
/// else the store's installed `openvoice`.
pub fn locate_converter(
    explicit: Option<&Path>,
    store: &VoiceStore,
) -> Result<PathBuf, CloneError> {
    let hint = "run `vivace download openvoice` (myshell-ai/OpenVoiceV2's converter/checkpoint.pth and config.json from the Hugging Face Hub), or give --converter a folder holding both";
    let dir = match explicit {
        Some(path) if path.is_file() => path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        Some(path) => path.to_path_buf(),
        None => store
            .voice_path(CONVERTER_NAME)
            .unwrap_or_else(|| store.voices_dir().join(CONVERTER_NAME)),
    };
    let dir = if dir.is_file() {
        dir.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        dir
    };
    for file in [CHECKPOINT_FILE, CONFIG_FILE] {
        if !dir.join(file).is_file() {
            return Err(CloneError::Missing {
                path: dir.join(file),
                hint: hint.into(),
            });
        }
    }
    Ok(dir)
}

/// How a reference recording was split before embedding
/// ([`ToneColor::reference_split`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceSplit {
    /// Speech found, in samples at 16 kHz, widened and merged.
    pub segments: Vec<std::ops::Range<usize>>,
    /// Length of the speech joined, in seconds.
    pub active_seconds: f64,
    /// The pieces of the joined speech, in milliseconds (as pydub cuts).
    pub pieces_ms: Vec<(u64, u64)>,
    /// The pieces' samples, at the recording's rate.
    pub pieces: Vec<Vec<f32>>,
}

/// Samples at `rate` in `ms` milliseconds, as pydub counts them.
fn pydub_frames(ms: u64, rate: u32) -> usize {
    (ms as f64 * (f64::from(rate) / 1000.0)) as usize
}

/// `samples[a..b]` for pydub's `audio[a_ms:b_ms]`, clamped to the audio.
fn pydub_slice(samples: &[f32], rate: u32, (a, b): (u64, u64)) -> &[f32] {
    let end = pydub_frames(b, rate).min(samples.len());
    &samples[pydub_frames(a, rate).min(end)..end]
}

/// Loads the converter in `dir` for cloning, with Silero VAD (fetched into
/// `store` on first use) when `split_references`.
pub fn load_for_cloning(
    dir: &Path,
    device: &Device,
    store: &VoiceStore,
    split_references: bool,
) -> Result<ToneColor, CloneError> {
    let tone_color = ToneColor::load(dir, device)?;
    // The weights are used from other threads (the service's workers), whose
    // CUDA streams are not ordered after this one's uploads: wait for them.
    device.synchronize().map_err(vivace_models::Error::from)?;
    if !split_references {
        return Ok(tone_color);
    }
    let weights = store
        .ensure_silero_vad()
        .map_err(|e| CloneError::NoDetector(e.to_string()))?;
    Ok(tone_color.with_vad(SileroVad::load(&weights)?))
}

/// A loaded converter with its spectrogram.
#[derive(Debug, Clone)]
pub struct ToneColor {
    converter: ToneColorConverter,
    spectrogram: MelSpectrogram,
    vad: Option<SileroVad>,
    /// Size of the checkpoint in bytes: part of a cached embedding's name,
    /// so a different converter does not reuse it.
    checkpoint_bytes: u64,
}

impl ToneColor {
    /// Loads the converter in `dir` (`checkpoint.pth`, `config.json`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self, CloneError> {
        let checkpoint = dir.join(CHECKPOINT_FILE);
        let converter = ToneColorConverter::load(&checkpoint, &dir.join(CONFIG_FILE), device)?;
        let data = &converter.config().data;
        let spectrogram = MelSpectrogram::vits_linear(data.filter_length, data.hop_length);
        let checkpoint_bytes = std::fs::metadata(&checkpoint).map_or(0, |m| m.len());
        Ok(Self {
            converter,
            spectrogram,
            vad: None,
            checkpoint_bytes,
        })
    }

    /// Splits references with `vad` before embedding them, as the
    /// reference's `get_se` does by default.
    pub fn with_vad(self, vad: SileroVad) -> Self {
        Self {
            vad: Some(vad),
            ..self
        }
    }

    /// Whether references are split by voice activity.
    pub fn splits_references(&self) -> bool {
        self.vad.is_some()
    }

    /// OpenVoice's split of a reference recording (`split_audio_vad`):
    /// Silero VAD on the recording at 16 kHz, normalized by its peak (at
    /// least 0.1), speech runs of 100 ms or more ending after 1 s of
    /// silence, widened by 0.5 s and merged; that speech cut from the
    /// recording and joined; the join cut into `round(seconds / 10)` equal
    /// pieces. Fewer than one piece (5 s of speech or less) is an error
    /// naming `what`. Without a detector, the whole recording is one piece.
    pub fn reference_split(
        &self,
        samples: &[f32],
        rate: u32,
        what: &Path,
    ) -> Result<ReferenceSplit, CloneError> {
        let Some(vad) = &self.vad else {
            let ms = (samples.len() as f64 / f64::from(rate.max(1)) * 1000.0) as u64;
            return Ok(ReferenceSplit {
                segments: Vec::new(),
                active_seconds: samples.len() as f64 / f64::from(rate.max(1)),
                pieces_ms: vec![(0, ms)],
                pieces: vec![samples.to_vec()],
            });
        };
        let audio = resample(samples, rate, silero_vad::SAMPLE_RATE)?;
        let peak = audio.iter().fold(0f32, |m, s| m.max(s.abs())).max(0.1);
        let normalized: Vec<f32> = audio.iter().map(|s| s / peak).collect();
        let options = SpeechOptions {
            min_speech_ms: 100,
            min_silence_ms: 1000,
            ..SpeechOptions::default()
        };
        let probs = vad.probabilities(&normalized);
        let dilate = (DILATATION_SECONDS * f64::from(silero_vad::SAMPLE_RATE)).round() as usize;
        let mut segments: Vec<std::ops::Range<usize>> = Vec::new();
        for run in silero_vad::speech_timestamps(&probs, audio.len(), &options) {
            let widened = run.start.saturating_sub(dilate)..(run.end + dilate).min(audio.len());
            match segments.last_mut() {
                Some(last) if last.end >= widened.start => last.end = widened.end,
                _ => segments.push(widened),
            }
        }
        let vad_rate = f64::from(silero_vad::SAMPLE_RATE);
        let mut active = Vec::new();
        for segment in &segments {
            let ms = |sample: usize| (sample as f64 / vad_rate * 1000.0) as u64;
            active.extend_from_slice(pydub_slice(
                samples,
                rate,
                (ms(segment.start), ms(segment.end)),
            ));
        }
        let active_seconds = active.len() as f64 / f64::from(rate);
        let count = (active_seconds / SPLIT_SECONDS).round_ties_even() as usize;
        if count == 0 {
            return Err(CloneError::Unusable {
                path: what.to_path_buf(),
                reason: format!(
                    "{active_seconds:.1} s of speech found; a reference needs more than 5 s of speech (10 s or more clones best), or give --no-vad to embed the whole recording"
                ),
            });
        }
        let interval = active_seconds / count as f64;
        let (mut pieces_ms, mut pieces) = (Vec::with_capacity(count), Vec::with_capacity(count));
        let mut start = 0.0;
        for i in 0..count {
            let end = match i + 1 == count {
                true => active_seconds,
                false => (start + interval).min(active_seconds),
            };
            let span = ((start * 1000.0) as u64, (end * 1000.0) as u64);
            pieces.push(pydub_slice(&active, rate, span).to_vec());
            pieces_ms.push(span);
            start = end;
        }
        Ok(ReferenceSplit {
            segments,
            active_seconds,
            pieces_ms,
            pieces,
        })
    }

    /// The rate the converter reads and writes.
    pub fn sample_rate(&self) -> u32 {
        self.converter.config().data.sampling_rate
    }

    /// Values in an embedding.
    pub fn embedding_size(&self) -> usize {
        self.converter.config().model.gin_channels
    }

    /// The tone-colour embedding of a recording: the mean of `extract_se`
    /// over the pieces of [`ToneColor::reference_split`]; `what` names it
    /// in errors.
    pub fn embed(&self, samples: &[f32], rate: u32, what: &Path) -> Result<Vec<f32>, CloneError> {
        let unusable = |reason: String| CloneError::Unusable {
            path: what.to_path_buf(),
            reason,
        };
        let seconds = samples.len() as f64 / f64::from(rate.max(1));
        if seconds < MIN_REFERENCE_SECONDS {
            return Err(unusable(format!(
                "{seconds:.2} s of audio; a reference needs at least {MIN_REFERENCE_SECONDS} s of speech (10 s or more clones best)"
            )));
        }
        let peak = samples.iter().fold(0f32, |m, s| m.max(s.abs()));
        if peak < SILENT_PEAK {
            return Err(unusable(format!(
                "the recording is silent (peak {peak:.1e}); record some speech"
            )));
        }
        let split = self.reference_split(samples, rate, what)?;
        self.embed_pieces(&split.pieces, rate, what)
    }

    /// The mean embedding of `pieces` at `rate` (`extract_se` over a list).
    fn embed_pieces(
        &self,
        pieces: &[Vec<f32>],
        rate: u32,
        what: &Path,
    ) -> Result<Vec<f32>, CloneError> {
        let unusable = |reason: String| CloneError::Unusable {
            path: what.to_path_buf(),
            reason,
        };
        let mut sum = vec![0f32; self.embedding_size()];
        for piece in pieces {
            let audio = resample(piece, rate, self.sample_rate())?;
            let spec = self
                .spectrogram
                .try_compute(&audio)
                .ok_or_else(|| unusable("a piece too short for one spectrogram frame".into()))?;
            for (s, v) in sum.iter_mut().zip(self.converter.embedding(&spec)?) {
                *s += v;
            }
        }
        let n = pieces.len().max(1) as f32;
        Ok(sum.into_iter().map(|s| s / n).collect())
    }

    /// The embedding in `path`: a `.npy` saved by `clone-voice
    /// --save-embedding` (or `numpy.save`), else a WAV recording to embed.
    pub fn embed_file(&self, path: &Path) -> Result<Vec<f32>, CloneError> {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
        {
            let array = npy::read_f32(path)?;
            if array.values.len() != self.embedding_size() {
                return Err(CloneError::Unusable {
                    path: path.to_path_buf(),
                    reason: format!(
                        "an embedding of {} values (shape {:?}); this converter's have {}",
                        array.values.len(),
                        array.shape,
                        self.embedding_size()
                    ),
                });
            }
            return Ok(array.values);
        }
        let recording = read_wav(path)?;
        self.embed(&recording.samples, recording.sample_rate, path)
    }

    /// `samples` at `rate` re-voiced from the `source` embedding to the
    /// `target` one, at [`ToneColor::sample_rate`]. `tau` scales the
    /// posterior's noise (0: deterministic), drawn from `seed` (random
    /// without). Audio shorter than one frame comes back as silence.
    pub fn convert(
        &self,
        samples: &[f32],
        rate: u32,
        source: &[f32],
        target: &[f32],
        tau: f32,
        seed: Option<u64>,
    ) -> Result<Vec<f32>, CloneError> {
        let audio = resample(samples, rate, self.sample_rate())?;
        let Some(spec) = self.spectrogram.try_compute(&audio) else {
            return Ok(vec![0.0; audio.len()]);
        };
        let frames = spec.len() / self.spectrogram.bands();
        let noise = (tau != 0.0).then(|| {
            let inter = self.converter.config().model.inter_channels;
            let seed = seed.unwrap_or_else(vivace_models::nn::sampling::fresh_seed);
            gaussian(&mut SeededSource::new(seed), inter * frames)
        });
        Ok(self
            .converter
            .convert(&spec, source, target, noise.as_deref().map(|n| (n, tau)))?)
    }

    /// The tone colour of the base voice at `voice`: read from the cache
    /// beside it, else measured from `speak(text)` (its audio and rate) on a
    /// calibration text and cached. A cache that cannot be written is not
    /// an error.
    pub fn voice_embedding(
        &self,
        voice: &Path,
        speak: impl FnOnce(&str) -> Result<(Vec<f32>, u32), String>,
    ) -> Result<Vec<f32>, CloneError> {
        let cache = self.embedding_cache(voice);
        if let Ok(array) = npy::read_f32(&cache) {
            if array.values.len() == self.embedding_size() {
                return Ok(array.values);
            }
        }
        // The voice's own clean speech is embedded whole, split or not.
        let (audio, rate) = speak(CALIBRATION_TEXT).map_err(CloneError::BaseVoice)?;
        if audio.len() < rate as usize {
            return Err(CloneError::BaseVoice(format!(
                "it spoke {} samples for a calibration text of {} characters",
                audio.len(),
                CALIBRATION_TEXT.len()
            )));
        }
        let embedding = self.embed_pieces(&[audio], rate, voice)?;
        if let Err(e) = npy::write_f32(&cache, &[embedding.len()], &embedding) {
            tracing::warn!("cannot cache the base voice's tone colour: {e}");
        }
        Ok(embedding)
    }

    /// Where [`ToneColor::voice_embedding`] caches a voice's embedding:
    /// beside a voice file, inside a checkpoint folder.
    pub fn embedding_cache(&self, voice: &Path) -> PathBuf {
        let name = format!("openvoice-se-{}.npy", self.checkpoint_bytes);
        match voice.is_dir() {
            true => voice.join(name),
            false => {
                let file = voice
                    .file_name()
                    .map_or_else(|| "voice".into(), |n| n.to_string_lossy().into_owned());
                voice.with_file_name(format!("{file}.{name}"))
            }
        }
    }
}

/// Writes `embedding` to `path` as a float32 `.npy` of shape `(len,)`.
pub fn save_embedding(path: &Path, embedding: &[f32]) -> Result<(), CloneError> {
    Ok(npy::write_f32(path, &[embedding.len()], embedding)?)
}

/// The two tone colours of a conversion: the voice's own and the one to
/// give it.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// The speech's own tone colour.
    pub source: Vec<f32>,
    /// The tone colour to give it.
    pub target: Vec<f32>,
}
