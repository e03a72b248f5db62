//! T3's speaker embedding from a recording, as Chatterbox's `VoiceEncoder`
//! computes it (`embeds_from_wavs`): the 16 kHz samples trimmed of leading
//! and trailing silence (`top_db = 20`), a 40-band power mel with reflect
//! padding, windows of 160 frames at 1.3 per second (the last kept at 80 %
//! coverage), each through the GE2E LSTM, averaged and unit-normed. The
//! network is resemblyzer's; the front end differs (no VAD, no volume
//! normalization), so it is this one and not `vivace embed`'s.

use std::path::Path;

use candle_core::{Device, Tensor};
use vivace_frontend::mel::MelSpectrogram;
use vivace_frontend::trim::trim_top_db;
use vivace_models::voice_encoder::{
    chatterbox_partials, utterance_embedding, VoiceEncoder, MEL_CHANNELS, WINDOW_FRAMES,
};

use super::reference::{ReferenceError, SILENCE_PEAK};

/// The trim threshold below the loudest frame, in dB.
const TRIM_TOP_DB: f64 = 20.0;
/// Windows per second (Resemble's default).
const WINDOWS_PER_SECOND: f64 = 1.3;
/// The least coverage of the last window.
const MIN_COVERAGE: f64 = 0.8;

/// Chatterbox's voice encoder with its front end.
#[derive(Debug, Clone)]
pub struct SpeakerEncoder {
    encoder: VoiceEncoder,
    mel: MelSpectrogram,
}

impl SpeakerEncoder {
    /// Loads `ve.safetensors` or `ve.pt`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, ReferenceError> {
        Ok(Self::new(VoiceEncoder::from_chatterbox(path, device)?))
    }

    /// Around an encoder loaded elsewhere.
    pub fn new(encoder: VoiceEncoder) -> Self {
        Self {
            encoder,
            mel: MelSpectrogram::chatterbox_voice_encoder(),
        }
    }

    /// The speaker embedding of 16 kHz samples (`what` names them in errors).
    pub fn embed(&self, wav16: &[f32], what: &Path) -> Result<Vec<f32>, ReferenceError> {
        if wav16.iter().all(|s| s.abs() < SILENCE_PEAK) {
            return Err(ReferenceError::Silent(what.to_path_buf()));
        }
        let speech = trim_top_db(wav16, TRIM_TOP_DB);
        let mel = self.mel.compute(speech);
        let frames = mel.len() / MEL_CHANNELS;
        if frames == 0 {
            return Err(ReferenceError::Silent(what.to_path_buf()));
        }
        let (starts, target) = chatterbox_partials(frames, WINDOWS_PER_SECOND, MIN_COVERAGE)?;
        let mut mel = mel;
        mel.resize(target * MEL_CHANNELS, 0.0);
        let windows: Vec<f32> = starts
            .iter()
            .flat_map(|&s| {
                mel[s * MEL_CHANNELS..(s + WINDOW_FRAMES) * MEL_CHANNELS]
                    .iter()
                    .copied()
            })
            .collect();
        let batch = Tensor::from_vec(
            windows,
            (starts.len(), WINDOW_FRAMES, MEL_CHANNELS),
            self.encoder.device(),
        )?;
        let partials: Vec<Vec<f32>> = self.encoder.embed_windows(&batch)?.to_vec2()?;
        Ok(utterance_embedding(&partials))
    }
}
