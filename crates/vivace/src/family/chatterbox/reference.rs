//! S3Gen's reference front end (`embed_ref`): a recording to the
//! [`Prompt`] S3Gen speaks in: its speech tokens, its 24 kHz mel and its
//! CAMPPlus x-vector.
//!
//! As the reference does it: the recording at 24 kHz cut to its first 10 s;
//! the mel from that; a 16 kHz copy made with torchaudio's sinc filter
//! (reproduced exactly) for the S3 tokenizer and for CAMPPlus's Kaldi
//! filterbank; the tokens cut to half the mel's frames when the two
//! disagree. A file at another rate is first brought to 24 kHz, which the
//! reference does with soxr (`librosa.load`) and Vivace with rubato: there
//! the two differ slightly (measured in the tests).

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use vivace_frontend::kaldi_fbank::{mean_normalized, KaldiFbank};
use vivace_frontend::mel::{MelSpectrogram, S3GEN_MELS, S3_TOKENIZER_MELS};
use vivace_frontend::resample::{resample, torchaudio_resample};
use vivace_frontend::speaker_audio::read_wav;
use vivace_models::chatterbox::campplus::{CampPlus, FEATURES};
use vivace_models::chatterbox::s3_tokenizer::S3Tokenizer;
use vivace_models::chatterbox::s3gen::{Prompt, S3GenConfig};

/// S3Gen's sample rate.
pub const S3GEN_RATE: u32 = 24_000;
/// The tokenizer's and CAMPPlus's sample rate.
pub const TOKENIZER_RATE: u32 = 16_000;
/// The longest reference S3Gen conditions on (`DEC_COND_LEN`), in seconds.
pub const MAX_REFERENCE_SECONDS: f64 = 10.0;
/// The shortest recording accepted, in seconds: less holds no voice to
/// clone (the reference itself breaks below about 0.05 s).
pub const MIN_REFERENCE_SECONDS: f64 = 0.5;
/// Below this sample rate a recording cannot carry the 8 kHz band the
/// models read.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Peak amplitude under which a recording counts as silent.
pub const SILENCE_PEAK: f32 = 1e-4;

/// Why a reference recording could not become a prompt.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Too short to hold a voice.
    #[error("{}: {seconds:.2} s of audio; a reference voice needs at least {MIN_REFERENCE_SECONDS} s: use a longer recording", path.display())]
    TooShort {
        /// The recording.
        path: PathBuf,
        /// Its length.
        seconds: f64,
    },
    /// Shorter than Chatterbox Turbo's minimum (it refuses 5 s or less).
    #[error("{}: {seconds:.2} s of audio; Chatterbox Turbo needs a reference longer than {min} s: use a longer recording", path.display())]
    TooShortForTurbo {
        /// The recording.
        path: PathBuf,
        /// Its length.
        seconds: f64,
        /// The minimum.
        min: f64,
    },
    /// Nothing but silence.
    #[error("{}: the recording is silent (peak under {SILENCE_PEAK}): record the voice to clone", .0.display())]
    Silent(PathBuf),
    /// A sample rate too low for the models' band.
    #[error("{}: {rate} Hz is too low a sample rate (at least {MIN_SAMPLE_RATE} Hz): record at 16 kHz or more", path.display())]
    SampleRate {
        /// The recording.
        path: PathBuf,
        /// Its rate.
        rate: u32,
    },
    /// Loading or running a network failed.
    #[error(transparent)]
    Model(#[from] vivace_models::Error),
    /// Reading or resampling the recording failed.
    #[error(transparent)]
    Frontend(#[from] vivace_frontend::Error),
}

impl From<candle_core::Error> for ReferenceError {
    fn from(e: candle_core::Error) -> Self {
        Self::Model(e.into())
    }
}

/// The networks and front ends `embed_ref` runs.
#[derive(Debug, Clone)]
pub struct ReferenceEncoder {
    tokenizer: S3Tokenizer,
    campplus: CampPlus,
    mel: MelSpectrogram,
    tokenizer_mel: MelSpectrogram,
    fbank: KaldiFbank,
    device: Device,
}

impl ReferenceEncoder {
    /// The tokenizer and CAMPPlus of an S3Gen checkpoint (`s3gen.safetensors`
    /// or `s3gen.pt`), at the sizes `config` gives (the published ones
    /// unless `s3gen_config.json` says otherwise).
    pub fn load(
        s3gen: &Path,
        config: &S3GenConfig,
        device: &Device,
    ) -> Result<Self, ReferenceError> {
        Ok(Self::from_parts(
            S3Tokenizer::load(s3gen, &config.tokenizer, device)?,
            CampPlus::load(s3gen, &config.speaker_encoder, device)?,
            device,
        ))
    }

    /// From networks loaded elsewhere (tests use small ones).
    pub fn from_parts(tokenizer: S3Tokenizer, campplus: CampPlus, device: &Device) -> Self {
        Self {
            tokenizer,
            campplus,
            mel: MelSpectrogram::s3gen(),
            tokenizer_mel: MelSpectrogram::s3_tokenizer(),
            fbank: KaldiFbank::new(FEATURES),
            device: device.clone(),
        }
    }

    /// The prompt of the WAV file at `path` (any rate of at least 8 kHz,
    /// any length from 0.5 s; only the first 10 s count).
    pub fn prompt_from_file(&self, path: &Path) -> Result<Prompt, ReferenceError> {
        let recording = read_wav(path)?;
        if recording.sample_rate < MIN_SAMPLE_RATE {
            return Err(ReferenceError::SampleRate {
                path: path.to_path_buf(),
                rate: recording.sample_rate,
            });
        }
        let wav = resample(&recording.samples, recording.sample_rate, S3GEN_RATE)?;
        let limit = (MAX_REFERENCE_SECONDS * f64::from(S3GEN_RATE)) as usize;
        self.prompt(&wav[..wav.len().min(limit)], path)
    }

    /// `embed_ref` of 24 kHz samples (`what` names them in errors).
    pub fn prompt(&self, wav: &[f32], what: &Path) -> Result<Prompt, ReferenceError> {
        let seconds = wav.len() as f64 / f64::from(S3GEN_RATE);
        if seconds < MIN_REFERENCE_SECONDS {
            return Err(ReferenceError::TooShort {
                path: what.to_path_buf(),
                seconds,
            });
        }
        if wav.iter().all(|s| s.abs() < SILENCE_PEAK) {
            return Err(ReferenceError::Silent(what.to_path_buf()));
        }
        // Long enough for every front end from here on (0.5 s ≫ one frame).
        let mel = self.mel.s3gen_log(wav).unwrap_or_default();
        let frames = mel.len() / S3GEN_MELS;
        let mel = Tensor::from_vec(mel, (frames, S3GEN_MELS), &Device::Cpu)?;
        // torchaudio's filter, as `embed_ref` makes its 16 kHz copy.
        let wav16 = torchaudio_resample(wav, S3GEN_RATE, TOKENIZER_RATE)?;
        let embedding = self.x_vector(&wav16)?;
        let mut tokens = self.tokens(&wav16)?;
        // The reference's fix-up when the mel is not twice the tokens.
        if frames != 2 * tokens.len() {
            tokens.truncate(frames / 2);
        }
        Ok(Prompt {
            tokens,
            mel,
            embedding,
        })
    }

    /// Speech tokens of 16 kHz samples (at least 201 of them, at most 30 s).
    pub fn tokens(&self, wav16: &[f32]) -> Result<Vec<u32>, ReferenceError> {
        let mel = self
            .tokenizer_mel
            .s3_tokenizer_log(wav16)
            .unwrap_or_default();
        let frames = mel.len() / S3_TOKENIZER_MELS;
        let mel = Tensor::from_vec(mel, (frames, S3_TOKENIZER_MELS), &self.device)?;
        Ok(self.tokenizer.tokenize(&mel)?)
    }

    /// CAMPPlus's x-vector `[192]` of 16 kHz samples.
    pub fn x_vector(&self, wav16: &[f32]) -> Result<Tensor, ReferenceError> {
        let features = mean_normalized(&self.fbank.compute(wav16), FEATURES);
        let frames = features.len() / FEATURES;
        let features = Tensor::from_vec(features, (frames, FEATURES), &self.device)?;
        Ok(self.campplus.embed(&features)?)
    }
}
