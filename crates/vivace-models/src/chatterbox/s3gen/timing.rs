//! S3Gen timed as `vivace bench --s3gen` reports it: speech tokens to
//! 24 kHz audio in a prompt's voice, stage by stage (the token encoder,
//! the flow's decoder steps, the vocoder), against the audio's duration.

use std::time::Instant;

use candle_core::Tensor;
use serde::Serialize;

use super::{Prompt, S3Gen, FRAMES_PER_TOKEN, MEL_CHANNELS, SAMPLE_RATE, SPEAKER_EMBEDDING};
use crate::chatterbox::t3::SPEECH_CODES;
use crate::Result;

/// One timed synthesis.
#[derive(Debug, Clone, Serialize)]
pub struct SynthesisTiming {
    /// Decoder steps of the flow.
    pub steps: usize,
    /// Speech tokens spoken.
    pub tokens: usize,
    /// Seconds in the token encoder (also run inside the flow; timed alone).
    pub encode_s: f64,
    /// Seconds in the flow (encoder and every decoder step).
    pub flow_s: f64,
    /// Seconds in the vocoder.
    pub vocode_s: f64,
    /// Seconds of audio made.
    pub audio_s: f64,
    /// `(flow_s + vocode_s) / audio_s`: below 1 is faster than real time.
    pub rtf: f64,
}

/// A reference-like prompt on `model`'s device when no recording is at
/// hand: `tokens` speech tokens, their mel frames and a speaker embedding,
/// random (a voice's real prompt has 10 s: 250 tokens).
pub fn synthetic_prompt(model: &S3Gen, tokens: usize) -> Result<Prompt> {
    let device = model.device();
    Ok(Prompt {
        tokens: (0..tokens)
            .map(|i| (i * 53 % SPEECH_CODES as usize) as u32)
            .collect(),
        mel: Tensor::randn(0f32, 1.0, (FRAMES_PER_TOKEN * tokens, MEL_CHANNELS), device)?,
        embedding: Tensor::randn(0f32, 1.0, SPEAKER_EMBEDDING, device)?,
    })
}

/// Speaks `tokens` in `prompt`'s voice with the model's default steps,
/// each stage timed to the device's completion.
pub fn time_synthesis(model: &S3Gen, prompt: &Prompt, tokens: &[u32]) -> Result<SynthesisTiming> {
    let device = model.device();
    let steps = model.default_steps();
    let total = FRAMES_PER_TOKEN * (prompt.tokens.len() + tokens.len());
    let noise = Tensor::randn(0f32, 1.0, (MEL_CHANNELS, total), device)?;
    let start = Instant::now();
    model.encode(prompt, tokens)?;
    device.synchronize()?;
    let encode_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mel = model.flow(prompt, tokens, &noise, steps, &mut |_, _| {})?;
    device.synchronize()?;
    let flow_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let wav = model.vocode(&mel, None)?;
    device.synchronize()?;
    let vocode_s = start.elapsed().as_secs_f64();
    let audio_s = wav.dim(0)? as f64 / SAMPLE_RATE as f64;
    Ok(SynthesisTiming {
        steps,
        tokens: tokens.len(),
        encode_s,
        flow_s,
        vocode_s,
        audio_s,
        rtf: (flow_s + vocode_s) / audio_s.max(f64::EPSILON),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chatterbox::s3gen::S3GenConfig;
    use candle_core::{DType, Device};

    /// A random-weight S3Gen at the published sizes (both solvers) speaks
    /// a few tokens: 2 mel frames and 960 samples a token, timed.
    #[test]
    fn a_random_s3gen_speaks_and_is_timed() -> Result<()> {
        for meanflow in [false, true] {
            let model = S3Gen::random(
                &S3GenConfig::chatterbox(),
                meanflow,
                &Device::Cpu,
                DType::F32,
            )?;
            let prompt = synthetic_prompt(&model, 6)?;
            let tokens: Vec<u32> = (0..4).collect();
            let t = time_synthesis(&model, &prompt, &tokens)?;
            assert_eq!(t.steps, if meanflow { 2 } else { 10 });
            assert!((t.audio_s - 4.0 * 0.04).abs() < 1e-6, "{t:?}");
            assert!(t.rtf > 0.0 && t.flow_s > 0.0 && t.vocode_s > 0.0);
        }
        Ok(())
    }
}
