//! T3's decode timed as `vivace bench --t3` reports it: a batch of
//! sequences prefilled with the same prompt, then decoded together to a
//! fixed number of tokens with the reference's default sampling, each
//! sequence drawing from its own seeded source.

use std::time::Instant;

use candle_core::Tensor;
use serde::Serialize;

use super::{DecodeParams, T3Conditioning, T3Variant, T3};
use crate::nn::sampling::SeededSource;
use crate::Result;

/// One timed decode of a batch.
#[derive(Debug, Clone, Serialize)]
pub struct DecodeTiming {
    /// Sequences decoded together.
    pub batch: usize,
    /// Prompt positions of each sequence (conditioning, text, start tokens).
    pub prompt_positions: usize,
    /// Seconds to prefill one sequence (the batch's mean).
    pub prefill_s: f64,
    /// Tokens generated over the batch.
    pub tokens: usize,
    /// Tokens per second over the batch (the decode loop only).
    pub tokens_per_s: f64,
}

/// A voice-like conditioning when no real voice is at hand: a zero speaker
/// embedding, 150 prompt speech tokens (the published voices' count) and
/// neutral emotion.
pub fn synthetic_conditioning() -> T3Conditioning {
    T3Conditioning {
        speaker: vec![0.0; super::SPEAKER_EMBEDDING],
        prompt_tokens: (0..150)
            .map(|i| (i * 37 % super::SPEECH_CODES as usize) as u32)
            .collect(),
        exaggeration: 0.5,
    }
}

/// `len` text ids for `variant`, as a sentence would have them: the
/// English vocabulary's letters (Turbo: GPT-2 word ids).
pub fn synthetic_text(variant: T3Variant, len: usize) -> Vec<u32> {
    (0..len)
        .map(|i| match variant {
            T3Variant::Turbo => 262 + (i * 37 % 2000) as u32,
            _ => 14 + (i * 7 % 26) as u32,
        })
        .collect()
}

/// Prefills `batch` sequences with `conditioning` (from
/// [`T3::conditioning`]) and `text`, then decodes them together until each
/// has `params.max_tokens` tokens or stops. Sequence `i` samples from
/// `SeededSource::new(seed + i)`.
pub fn time_decode(
    t3: &T3,
    conditioning: &Tensor,
    text: &[u32],
    params: &DecodeParams,
    batch: usize,
    seed: u64,
) -> Result<DecodeTiming> {
    let batch = batch.max(1);
    let start = Instant::now();
    let mut generations = (0..batch)
        .map(|i| {
            let source = Box::new(SeededSource::new(seed + i as u64));
            t3.start(conditioning, text, params, source)
        })
        .collect::<Result<Vec<_>>>()?;
    let prefill_s = start.elapsed().as_secs_f64() / batch as f64;
    let start = Instant::now();
    loop {
        let mut refs: Vec<&mut _> = generations.iter_mut().collect();
        if t3.step(&mut refs)?.iter().all(Option::is_none) {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let tokens = generations.iter().map(|g| g.generated().len()).sum();
    Ok(DecodeTiming {
        batch,
        prompt_positions: prompt_positions(t3.config().variant, conditioning.dim(1)?, text.len()),
        prefill_s,
        tokens,
        tokens_per_s: tokens as f64 / seconds.max(f64::EPSILON),
    })
}

/// Positions of a whole prompt: the conditioning's, the text's, start and
/// stop of text and BOS twice (Turbo: bare text, BOS once).
pub fn prompt_positions(variant: T3Variant, conditioning: usize, text: usize) -> usize {
    let extra = match variant {
        T3Variant::Turbo => 1,
        _ => 4,
    };
    conditioning + text + extra
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chatterbox::t3::{Architecture, Precision, T3Config, LLAMA3_SCALING};
    use candle_core::Device;

    /// A small T3 with random weights decodes a batch to the asked count
    /// (or stops early on a drawn stop token), and its config is what
    /// `english()` gives at the published size but for the sizes changed.
    #[test]
    fn a_random_t3_decodes_a_batch() -> Result<()> {
        let mut config = T3Config::english();
        assert_eq!(
            (
                config.backbone.layers,
                config.backbone.hidden,
                config.speech_vocab
            ),
            (30, 1024, 8194)
        );
        assert_eq!(
            config.backbone.architecture,
            Architecture::Llama {
                rope_theta: 500_000.0,
                rope_scaling: Some(LLAMA3_SCALING)
            }
        );
        config.backbone.layers = 2;
        config.backbone.hidden = 128;
        config.backbone.heads = 2;
        config.backbone.intermediate = 256;
        let t3 = T3::random(config, &Device::Cpu, Precision::F32)?;
        let text = synthetic_text(T3Variant::English, 12);
        let conditioning = t3.conditioning(&synthetic_conditioning())?;
        let params = DecodeParams {
            max_tokens: 10,
            ..DecodeParams::defaults(T3Variant::English)
        };
        let timing = time_decode(&t3, &conditioning, &text, &params, 3, 7)?;
        assert_eq!(timing.batch, 3);
        assert!((1..=30).contains(&timing.tokens), "{timing:?}");
        assert!(timing.tokens_per_s > 0.0 && timing.prefill_s > 0.0);
        assert_eq!(timing.prompt_positions, conditioning.dim(1)? + 12 + 4);
        Ok(())
    }
}
