//! S3Gen, Chatterbox's speech-token-to-audio half: the flow (token encoder
//! and a conditional flow-matching decoder, 25 tokens/s to 50 mel frames/s)
//! and the HiFT vocoder (mels to 24 kHz audio), conditioned on a reference
//! recording's [`Prompt`].
//!
//! The weights are read from the published files unchanged
//! (`s3gen.safetensors`, `s3gen.pt`, `s3gen_meanflow.safetensors`): tensor
//! names `flow.*` and `mel2wav.*` as the reference's `S3Token2Wav` saves
//! them. Sizes come from [`S3GenConfig`] (the published model's by
//! default).

mod conv;
mod decoder;
mod encoder;
mod hift;
mod noise;
pub mod timing;

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{embedding, linear, Embedding, Linear, VarBuilder};
use serde::Deserialize;

pub use decoder::{ConditionalDecoder, MEL_CHANNELS};
pub use encoder::{relative_positions, UpsampleConformerEncoder};
pub use hift::{Hift, SourceNoise, HARMONICS, HOP, SAMPLE_RATE};
pub use noise::{FlowNoise, SeededSourceNoise};

use super::campplus::CampPlusConfig;
use super::s3_tokenizer::S3TokenizerConfig;
use crate::nn::checkpoint::Checkpoint;
use crate::nn::random_weights::RandomWeights;
use crate::{Error, Result};

/// Width of the CAMPPlus speaker embedding S3Gen is conditioned on.
pub const SPEAKER_EMBEDDING: usize = 192;
/// Mel frames per speech token (25 tokens/s to 50 frames/s).
pub const FRAMES_PER_TOKEN: usize = 2;
/// Classifier-free guidance weight of the 10-step decoder
/// (`inference_cfg_rate`).
pub const CFG_RATE: f32 = 0.7;

/// The sizes of an S3Gen model. [`S3GenConfig::chatterbox`] is the published
/// one; tests use smaller ones built by the same reference classes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3GenConfig {
    /// Speech-token vocabulary (6561: FSQ with 3⁸ codes).
    pub vocab_size: usize,
    /// Width of the token encoder.
    pub encoder_width: usize,
    /// Attention heads of the token encoder.
    pub encoder_heads: usize,
    /// Hidden width of its feed-forward layers.
    pub encoder_linear_units: usize,
    /// Conformer blocks before upsampling.
    pub encoder_blocks: usize,
    /// Conformer blocks after upsampling.
    pub encoder_up_blocks: usize,
    /// Channel width of the flow decoder's U-Net.
    pub decoder_channels: usize,
    /// Attention heads of its transformer blocks.
    pub decoder_heads: usize,
    /// Width of each head.
    pub decoder_head_dim: usize,
    /// Transformer blocks per U-Net stage.
    pub decoder_blocks_per_stage: usize,
    /// Middle stages of the U-Net.
    pub decoder_mid_blocks: usize,
    /// Channels of the vocoder's first layer (halved at each upsampling).
    pub hift_base_channels: usize,
    /// Channels of the vocoder's F0 predictor.
    pub f0_channels: usize,
    /// Sizes of the speech tokenizer stored beside the flow (`tokenizer.*`),
    /// which turns a reference recording into prompt tokens; the published
    /// one when absent.
    #[serde(default = "S3TokenizerConfig::v2")]
    pub tokenizer: S3TokenizerConfig,
    /// Sizes of the CAMPPlus speaker encoder stored beside the flow
    /// (`speaker_encoder.*`); the published one when absent.
    #[serde(default = "CampPlusConfig::chatterbox")]
    pub speaker_encoder: CampPlusConfig,
}

impl S3GenConfig {
    /// The published S3Gen (all three Chatterbox variants).
    pub fn chatterbox() -> Self {
        Self {
            vocab_size: 6561,
            encoder_width: 512,
            encoder_heads: 8,
            encoder_linear_units: 2048,
            encoder_blocks: 6,
            encoder_up_blocks: 4,
            decoder_channels: 256,
            decoder_heads: 8,
            decoder_head_dim: 64,
            decoder_blocks_per_stage: 4,
            decoder_mid_blocks: 12,
            hift_base_channels: 512,
            f0_channels: 512,
            tokenizer: S3TokenizerConfig::v2(),
            speaker_encoder: CampPlusConfig::chatterbox(),
        }
    }

    /// Width of the decoder's time embedding.
    fn time_embed_dim(&self) -> usize {
        4 * self.decoder_channels
    }

    fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Unsupported(format!("S3Gen config: {what}")));
        if self.encoder_heads == 0 || !self.encoder_width.is_multiple_of(self.encoder_heads) {
            return bad("the encoder width must be a multiple of its heads");
        }
        if !self.encoder_width.is_multiple_of(2) {
            return bad("the encoder width must be even (sine/cosine positions)");
        }
        if self.hift_base_channels >> 3 == 0 {
            return bad("the vocoder needs at least 8 base channels");
        }
        if [
            self.vocab_size,
            self.decoder_channels,
            self.decoder_heads,
            self.decoder_head_dim,
            self.f0_channels,
        ]
        .contains(&0)
        {
            return bad("sizes must be positive");
        }
        Ok(())
    }
}

/// What S3Gen knows of the reference voice: its speech tokens, their mel
/// (`[frames, 80]`, 50 frames/s, normally two per token) and its CAMPPlus
/// embedding (`[192]`). The `gen` part of Chatterbox's `conds.pt`, or what
/// `embed_ref` computes from a recording.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Speech tokens of the reference.
    pub tokens: Vec<u32>,
    /// Its mel, `[frames, 80]`.
    pub mel: Tensor,
    /// Its speaker embedding, `[192]`.
    pub embedding: Tensor,
}

impl Prompt {
    /// The `gen` part of a Chatterbox `conds.pt` (the built-in voice):
    /// `prompt_token` `[1, n]`, `prompt_feat` `[1, frames, 80]` and
    /// `embedding` `[1, 192]`, as `torch.save` wrote them.
    pub fn from_conds(path: &Path) -> Result<Self> {
        let wrong = |reason: String| Error::Config {
            path: path.to_path_buf(),
            reason: format!("not a Chatterbox conds.pt: {reason}"),
        };
        let conds = Checkpoint::open(path, Some("gen")).map_err(|e| wrong(e.to_string()))?;
        let get = |name: &str| -> Result<Tensor> {
            conds
                .get(name, &Device::Cpu)
                .map_err(|e| wrong(e.to_string()))?
                .ok_or_else(|| wrong(format!("no gen.{name}")))
        };
        let tokens: Vec<f32> = get("prompt_token")?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        let tokens = tokens
            .into_iter()
            .map(|t| match t >= 0.0 && t.fract() == 0.0 {
                true => Ok(t as u32),
                false => Err(wrong(format!("prompt token {t} is not a token id"))),
            })
            .collect::<Result<Vec<_>>>()?;
        let mel = get("prompt_feat")?.to_dtype(DType::F32)?;
        let mel = match mel.dims() {
            &[1, frames, MEL_CHANNELS] => mel.reshape((frames, MEL_CHANNELS))?,
            other => {
                return Err(wrong(format!(
                    "gen.prompt_feat has shape {other:?}, [1, frames, 80] expected"
                )))
            }
        };
        let embedding = get("embedding")?.to_dtype(DType::F32)?.flatten_all()?;
        if embedding.dim(0)? != SPEAKER_EMBEDDING {
            return Err(wrong(format!(
                "gen.embedding has {} values, {SPEAKER_EMBEDDING} expected",
                embedding.dim(0)?
            )));
        }
        Ok(Self {
            tokens,
            mel,
            embedding,
        })
    }
}

/// How the flow decoder integrates: the 10-step Euler solver with
/// classifier-free guidance on a cosine schedule, or Turbo's meanflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    /// Euler over `1 − cos(t·π/2)`, guidance on a batch of 2.
    GuidedCosine,
    /// Plain Euler over a linear schedule with the step's end `r` as input.
    Meanflow,
}

/// The S3Gen model: flow and vocoder.
#[derive(Debug, Clone)]
pub struct S3Gen {
    cfg: S3GenConfig,
    token_embedding: Embedding,
    speaker_projection: Linear,
    encoder: UpsampleConformerEncoder,
    encoder_projection: Linear,
    estimator: ConditionalDecoder,
    vocoder: Hift,
    device: Device,
    dtype: DType,
}

impl S3Gen {
    /// Loads a published checkpoint (`s3gen.safetensors`,
    /// `s3gen_meanflow.safetensors` or the zip `s3gen.pt`); meanflow is
    /// recognised by its time mixer. A file that does not fit `cfg` is an
    /// error naming it and the first tensor that does not fit.
    pub fn load(path: &Path, cfg: &S3GenConfig, device: &Device, dtype: DType) -> Result<Self> {
        let checkpoint = Checkpoint::open(path, None)?;
        let meanflow = checkpoint
            .get(
                "flow.decoder.estimator.time_embed_mixer.weight",
                &Device::Cpu,
            )
            .map_err(|e| Error::Unsupported(format!("{}: {e}", path.display())))?
            .is_some();
        let vb = checkpoint.var_builder(dtype, device);
        Self::new(cfg, meanflow, vb).map_err(|e| match e {
            Error::Candle(e) => Error::Unsupported(format!(
                "{} is not an S3Gen checkpoint of the expected sizes: {e}",
                path.display()
            )),
            other => other,
        })
    }

    /// A model of `cfg`'s sizes with random weights on `device`, for timing
    /// where the published file cannot be had ([`RandomWeights`]: speed
    /// depends on shapes, not values; its audio is noise).
    pub fn random(
        cfg: &S3GenConfig,
        meanflow: bool,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        Self::new(
            cfg,
            meanflow,
            RandomWeights::new().var_builder(dtype, device),
        )
    }

    /// Builds the model from `vb` (the checkpoint's root).
    pub fn new(cfg: &S3GenConfig, meanflow: bool, vb: VarBuilder) -> Result<Self> {
        cfg.check()?;
        let flow = vb.pp("flow");
        Ok(Self {
            cfg: cfg.clone(),
            token_embedding: embedding(
                cfg.vocab_size,
                cfg.encoder_width,
                flow.pp("input_embedding"),
            )?,
            speaker_projection: linear(
                SPEAKER_EMBEDDING,
                MEL_CHANNELS,
                flow.pp("spk_embed_affine_layer"),
            )?,
            encoder: UpsampleConformerEncoder::new(cfg, flow.pp("encoder"))?,
            encoder_projection: linear(cfg.encoder_width, MEL_CHANNELS, flow.pp("encoder_proj"))?,
            estimator: ConditionalDecoder::new(cfg, meanflow, flow.pp("decoder.estimator"))?,
            vocoder: Hift::new(cfg, vb.pp("mel2wav"))?,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The decoder's solver, fixed by the checkpoint.
    pub fn solver(&self) -> Solver {
        match self.estimator.is_meanflow() {
            true => Solver::Meanflow,
            false => Solver::GuidedCosine,
        }
    }

    /// The reference's number of decoder steps: 2 for meanflow, else 10.
    pub fn default_steps(&self) -> usize {
        match self.solver() {
            Solver::Meanflow => 2,
            Solver::GuidedCosine => 10,
        }
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The sizes it was built with.
    pub fn config(&self) -> &S3GenConfig {
        &self.cfg
    }

    /// Mel frames the flow produces for `prompt` and `tokens` (the prompt's
    /// own frames left out).
    pub fn output_frames(&self, prompt: &Prompt, tokens: usize) -> Result<usize> {
        let total = FRAMES_PER_TOKEN * (prompt.tokens.len() + tokens);
        let prompt_frames = prompt.mel.dim(0)?;
        total.checked_sub(prompt_frames).filter(|&n| n > 0).ok_or_else(|| {
            Error::InvalidInput(format!(
                "the prompt has {prompt_frames} mel frames for {} tokens: no frames left for {tokens} new tokens",
                prompt.tokens.len()
            ))
        })
    }

    /// The encoder's output projected to mels, `mu` `[1, 80, frames]`, for
    /// the prompt's tokens followed by `tokens`.
    pub fn encode(&self, prompt: &Prompt, tokens: &[u32]) -> Result<Tensor> {
        let all: Vec<u32> = prompt.tokens.iter().chain(tokens).copied().collect();
        if let Some(bad) = all.iter().find(|&&t| t as usize >= self.cfg.vocab_size) {
            return Err(Error::InvalidInput(format!(
                "speech token {bad} is out of range: S3Gen's vocabulary is 0..{}",
                self.cfg.vocab_size
            )));
        }
        let ids = Tensor::new(all.as_slice(), &self.device)?.unsqueeze(0)?;
        let emb = self.token_embedding.forward(&ids)?;
        let h = self.encoder.forward(&emb)?;
        Ok(self
            .encoder_projection
            .forward(&h)?
            .transpose(1, 2)?
            .contiguous()?)
    }

    /// The speaker condition, `normalize(embedding)` projected to 80, `[1, 80]`.
    fn speaker(&self, prompt: &Prompt) -> Result<Tensor> {
        let e = prompt
            .embedding
            .to_dtype(self.dtype)?
            .reshape((1, SPEAKER_EMBEDDING))?;
        let norm = e
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12, f64::INFINITY)?;
        Ok(self.speaker_projection.forward(&e.broadcast_div(&norm)?)?)
    }

    /// The flow: mels `[1, 80, frames]` for `tokens` in the prompt's voice,
    /// from starting `noise` `[80, ≥ total frames]` (prompt included; its
    /// first frames are used), in `steps` decoder steps. `observe` sees the
    /// state after each step (`[1, 80, total frames]`).
    pub fn flow(
        &self,
        prompt: &Prompt,
        tokens: &[u32],
        noise: &Tensor,
        steps: usize,
        observe: &mut dyn FnMut(usize, &Tensor),
    ) -> Result<Tensor> {
        let generated = self.output_frames(prompt, tokens.len())?;
        let mu = self.encode(prompt, tokens)?;
        let total = mu.dim(2)?;
        let prompt_frames = total - generated;
        let (noise_channels, noise_frames) = noise.dims2()?;
        if noise_channels != MEL_CHANNELS || noise_frames < total {
            return Err(Error::InvalidInput(format!(
                "the flow noise is [{noise_channels}, {noise_frames}]; this input needs [{MEL_CHANNELS}, ≥ {total}]"
            )));
        }
        let x0 = noise
            .narrow(1, 0, total)?
            .to_device(&self.device)?
            .to_dtype(self.dtype)?
            .unsqueeze(0)?;
        let spks = self.speaker(prompt)?;
        let prompt_mel = prompt
            .mel
            .to_dtype(self.dtype)?
            .to_device(&self.device)?
            .t()?;
        let cond = prompt_mel
            .pad_with_zeros(1, 0, total - prompt_frames)?
            .unsqueeze(0)?;
        let x = self.solve(x0, &mu, &spks, &cond, steps, observe)?;
        Ok(x.narrow(2, prompt_frames, generated)?)
    }

    /// `steps + 1` times of `schedule` on `[0, 1]`, in f32 as the reference.
    fn times(steps: usize, cosine: bool) -> Vec<f32> {
        (0..=steps)
            .map(|i| {
                let t = i as f32 / steps as f32;
                match cosine {
                    true => 1.0 - (t * 0.5 * std::f32::consts::PI).cos(),
                    false => t,
                }
            })
            .collect()
    }

    /// Euler steps from `x` over the solver's schedule; `observe` sees
    /// each step's result.
    fn solve(
        &self,
        mut x: Tensor,
        mu: &Tensor,
        spks: &Tensor,
        cond: &Tensor,
        steps: usize,
        observe: &mut dyn FnMut(usize, &Tensor),
    ) -> Result<Tensor> {
        let solver = self.solver();
        // Guidance: row 0 conditioned, row 1 unconditioned (mu, speaker
        // and prompt zero), one batch of 2.
        let guided = match solver {
            Solver::GuidedCosine => Some((
                Tensor::cat(&[mu, &mu.zeros_like()?], 0)?,
                Tensor::cat(&[spks, &spks.zeros_like()?], 0)?,
                Tensor::cat(&[cond, &cond.zeros_like()?], 0)?,
            )),
            Solver::Meanflow => None,
        };
        let times = Self::times(steps, solver == Solver::GuidedCosine);
        let scalar = |v: f32, n: usize| -> Result<Tensor> {
            Ok(Tensor::new(vec![v; n], &self.device)?.to_dtype(self.dtype)?)
        };
        for (k, pair) in times.windows(2).enumerate() {
            let (t, r) = (pair[0], pair[1]);
            let velocity = match &guided {
                Some((mu2, spks2, cond2)) => {
                    let x2 = Tensor::cat(&[&x, &x], 0)?;
                    let v = self
                        .estimator
                        .forward(&x2, mu2, &scalar(t, 2)?, spks2, cond2, None)?;
                    ((v.narrow(0, 0, 1)? * (1.0 + CFG_RATE as f64))?
                        - (v.narrow(0, 1, 1)? * CFG_RATE as f64)?)?
                }
                None => self.estimator.forward(
                    &x,
                    mu,
                    &scalar(t, 1)?,
                    spks,
                    cond,
                    Some(&scalar(r, 1)?),
                )?,
            };
            x = (x + (velocity * (r - t) as f64)?)?;
            observe(k, &x);
        }
        Ok(x)
    }

    /// The vocoder, for stage checks (its F0, source and decoder apart).
    pub fn vocoder(&self) -> &Hift {
        &self.vocoder
    }

    /// The vocoder's F0 per frame in Hz, `[1, frames]` f32, for mels
    /// `[1, 80, frames]` (any dtype and device: converted to the model's).
    pub fn f0(&self, mel: &Tensor) -> Result<Tensor> {
        let mel = mel.to_device(&self.device)?.to_dtype(self.dtype)?;
        Ok(self.vocoder.f0(&mel)?.to_dtype(DType::F32)?)
    }

    /// Audio at 24 kHz, `[frames · 480]` f32, for mels `[1, 80, frames]`
    /// (any dtype and device): the vocoder, then the reference's fade-in
    /// (20 ms of silence, a 20 ms raised-cosine ramp) against spill-over
    /// from the prompt. `noise` `None` runs the sine source without random
    /// phase or noise.
    pub fn vocode(&self, mel: &Tensor, noise: Option<&mut dyn SourceNoise>) -> Result<Tensor> {
        let mel = mel.to_device(&self.device)?.to_dtype(self.dtype)?;
        let wav = self.vocoder.forward(&mel, noise)?.squeeze(0)?;
        Ok(fade_in(&wav.to_dtype(DType::F32)?)?)
    }
}

/// Zeroes the first 480 samples and ramps the next 480 up with
/// `(cos(linspace(π, 0, 480)) + 1) / 2` (`trim_fade` of the reference).
fn fade_in(wav: &Tensor) -> candle_core::Result<Tensor> {
    let n = SAMPLE_RATE / 50;
    let len = wav.dim(D::Minus1)?;
    let ramp_len = (2 * n).min(len);
    let ramp: Vec<f32> = (0..ramp_len)
        .map(|i| match i.checked_sub(n) {
            None => 0.0,
            Some(j) => {
                let x = std::f32::consts::PI - j as f32 * (std::f32::consts::PI / (n - 1) as f32);
                (x.cos() + 1.0) / 2.0
            }
        })
        .collect();
    let ramp = Tensor::from_vec(ramp, ramp_len, wav.device())?.to_dtype(wav.dtype())?;
    let head = (wav.narrow(0, 0, ramp_len)? * ramp)?;
    Tensor::cat(&[&head, &wav.narrow(0, ramp_len, len - ramp_len)?], 0)
}
