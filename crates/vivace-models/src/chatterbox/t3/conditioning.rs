//! What T3 is conditioned on besides the text: a speaker embedding from the
//! 256-d voice encoder, the speech tokens of a short prompt recording, and
//! the emotion "exaggeration" scalar (the reference's `T3Cond`).

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::nn::checkpoint::Checkpoint;
use crate::{Error, Result};

/// Width of the voice encoder's speaker embedding.
pub const SPEAKER_EMBEDDING: usize = 256;

/// One voice's T3 conditioning.
#[derive(Debug, Clone, PartialEq)]
pub struct T3Conditioning {
    /// The voice encoder's embedding of the reference (`[256]`).
    pub speaker: Vec<f32>,
    /// S3 speech tokens of the reference's first seconds (150 for the
    /// published models; may be empty).
    pub prompt_tokens: Vec<u32>,
    /// Emotion exaggeration (0.5 neutral).
    pub exaggeration: f32,
}

impl T3Conditioning {
    /// Reads the `t3` part of Chatterbox's `conds.pt` (the built-in voice):
    /// `speaker_emb`, `cond_prompt_speech_tokens` and `emotion_adv`.
    pub fn from_conds(path: &Path) -> Result<Self> {
        let wrong = |reason: String| Error::Config {
            path: path.to_path_buf(),
            reason: format!("not a Chatterbox conds.pt: {reason}"),
        };
        let conds = Checkpoint::open(path, Some("t3")).map_err(|e| wrong(e.to_string()))?;
        let get = |name: &str| -> Result<Option<Vec<f32>>> {
            conds
                .get(name, &Device::Cpu)
                .map_err(|e| wrong(e.to_string()))?
                .map(|t| -> Result<Vec<f32>> {
                    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
                })
                .transpose()
        };
        let speaker = get("speaker_emb")?.ok_or_else(|| wrong("no t3.speaker_emb".into()))?;
        if speaker.len() != SPEAKER_EMBEDDING {
            return Err(wrong(format!(
                "t3.speaker_emb has {} values, {SPEAKER_EMBEDDING} expected",
                speaker.len()
            )));
        }
        let prompt_tokens = get("cond_prompt_speech_tokens")?
            .unwrap_or_default()
            .into_iter()
            .map(|t| match t >= 0.0 && t.fract() == 0.0 {
                true => Ok(t as u32),
                false => Err(wrong(format!("prompt token {t} is not a token id"))),
            })
            .collect::<Result<Vec<_>>>()?;
        let exaggeration = match get("emotion_adv")?.as_deref() {
            Some([e]) => *e,
            None => 0.5,
            Some(other) => {
                return Err(wrong(format!(
                    "t3.emotion_adv has {} values, 1 expected",
                    other.len()
                )))
            }
        };
        Ok(Self {
            speaker,
            prompt_tokens,
            exaggeration,
        })
    }

    /// The speaker embedding as a `[1, 256]` tensor on `device`.
    pub(crate) fn speaker_tensor(&self, device: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_slice(&self.speaker, (1, self.speaker.len()), device)
    }
}
