//! The S3 speech tokenizer v2 (CosyVoice 2's, `s3tokenizer` 0.3.0 as
//! Chatterbox uses it): a 16 kHz recording's 128-band log-mel
//! (`vivace_frontend::mel::MelSpectrogram::s3_tokenizer`, 100 frames/s) to
//! speech tokens at 25/s, the vocabulary S3Gen and T3 speak.
//!
//! - two GELU convolutions of stride 2 (100 → 25 frames/s);
//! - transformer blocks whose attention has rotary positions (64-wide
//!   heads, the rotate-half form), `q` and `k` each scaled by `d^-1/4`, and
//!   an FSMN memory: a depth-wise convolution of 31 taps over the values,
//!   added to the attention's output; both layer norms with ε = 1e-5
//!   (0.3.0; 0.2.0 had 1e-6 on the attention's);
//! - FSQ: a projection to 8 values, `tanh · 0.999`, rounded (half to even)
//!   to {−1, 0, 1}, read as a base-3 number: 3⁸ = 6561 codes.
//!
//! Weights are read under S3Gen's prefix `tokenizer.` as the reference
//! saves them. One utterance of up to 30 s (3000 mel frames) at a time: the
//! reference splits longer ones into windows, which Chatterbox never asks
//! of it (its prompts are 6 to 15 s).

use std::path::Path;

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{
    layer_norm, linear, linear_no_bias, Conv1d, Conv1dConfig, LayerNorm, Linear, VarBuilder,
};
use serde::Deserialize;

use crate::nn::checkpoint::Checkpoint;
use crate::nn::depthwise::Depthwise;
use crate::nn::{cpu_attention, cpu_ops};

/// Bands of the log-mel the tokenizer reads.
pub const MELS: usize = 128;
/// The longest input, in mel frames (30 s).
pub const MAX_FRAMES: usize = 3000;
/// Width of each attention head (fixed by the rotary table).
const HEAD_DIM: usize = 64;
/// Taps of the FSMN memory.
const FSMN_KERNEL: usize = 31;
const NORM_EPS: f64 = 1e-5;
/// FSQ's scale before rounding: the f32 nearest 0.999, which the reference
/// writes out as 0.9990000128746033.
const FSQ_SCALE: f32 = 0.999;

/// The sizes of a tokenizer; [`S3TokenizerConfig::v2`] is the published one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3TokenizerConfig {
    /// Width of the encoder.
    pub n_audio_state: usize,
    /// Attention heads (each 64 wide).
    pub n_audio_head: usize,
    /// Transformer blocks.
    pub n_audio_layer: usize,
}

impl S3TokenizerConfig {
    /// `speech_tokenizer_v2_25hz`.
    pub fn v2() -> Self {
        Self {
            n_audio_state: 1280,
            n_audio_head: 20,
            n_audio_layer: 6,
        }
    }
}

/// One transformer block.
#[derive(Debug, Clone)]
struct Block {
    attn_ln: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    /// The FSMN memory: a depth-wise convolution over the values.
    fsmn: Depthwise,
    mlp_ln: LayerNorm,
    mlp_in: Linear,
    mlp_out: Linear,
    heads: usize,
}

impl Block {
    fn new(cfg: &S3TokenizerConfig, vb: VarBuilder) -> Result<Self> {
        let n = cfg.n_audio_state;
        let attn = vb.pp("attn");
        let w = attn.get((n, 1, FSMN_KERNEL), "fsmn_block.weight")?;
        let fsmn = Depthwise::new(&w, None, 1)?;
        Ok(Self {
            attn_ln: layer_norm(n, NORM_EPS, vb.pp("attn_ln"))?,
            query: linear(n, n, attn.pp("query"))?,
            key: linear_no_bias(n, n, attn.pp("key"))?,
            value: linear(n, n, attn.pp("value"))?,
            out: linear(n, n, attn.pp("out"))?,
            fsmn,
            mlp_ln: layer_norm(n, NORM_EPS, vb.pp("mlp_ln"))?,
            mlp_in: linear(n, 4 * n, vb.pp("mlp.0"))?,
            mlp_out: linear(4 * n, n, vb.pp("mlp.2"))?,
            heads: cfg.n_audio_head,
        })
    }

    /// `xs` `[1, len, width]`; `cos`, `sin` `[len, 64]`.
    fn forward(&self, xs: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (b, len, width) = xs.dims3()?;
        let h = self.heads;
        let normed = self.attn_ln.forward(xs)?;
        let split = |t: Tensor| t.reshape((b, len, h, HEAD_DIM));
        let scale = (HEAD_DIM as f64).powf(-0.25);
        let q = (rotate(&split(self.query.forward(&normed)?)?, cos, sin)? * scale)?;
        let k = (rotate(&split(self.key.forward(&normed)?)?, cos, sin)? * scale)?;
        let v = self.value.forward(&normed)?;
        // The FSMN memory over the values, residual included.
        let memory = {
            let t = v.transpose(1, 2)?.contiguous()?;
            let m = self.fsmn.forward(&t)?;
            (m.transpose(1, 2)? + &v)?
        };
        let heads = |t: Tensor| t.transpose(1, 2)?.contiguous();
        let (q, k, v) = (heads(q)?, heads(k)?, heads(split(v)?)?);
        let ctx = if cpu_ops::applies_to(&q) {
            cpu_attention::attention(&q, &k, &v, 1.0, None)?
        } else {
            let attn = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
            attn.matmul(&v)?.transpose(1, 2)?.reshape((b, len, width))?
        };
        let xs = (xs + (self.out.forward(&ctx)? + memory)?)?;
        let mlp = cpu_ops::gelu_erf(&self.mlp_in.forward(&self.mlp_ln.forward(&xs)?)?)?;
        xs + self.mlp_out.forward(&mlp)?
    }
}

/// Rotary positions, rotate-half form: `x·cos + [−x₂, x₁]·sin` per head,
/// `x` `[b, len, heads, 64]`, `cos`/`sin` `[len, 64]`.
fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let half = HEAD_DIM / 2;
    let rotated = Tensor::cat(
        &[
            &x.narrow(D::Minus1, half, half)?.neg()?,
            &x.narrow(D::Minus1, 0, half)?,
        ],
        D::Minus1,
    )?;
    let (len, dim) = cos.dims2()?;
    let cos = cos.reshape((1, len, 1, dim))?;
    let sin = sin.reshape((1, len, 1, dim))?;
    x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?
}

/// The rotary table for `len` positions: cos and sin `[len, 64]`, each
/// half the 32 frequencies `10000^(−2i/64)` (f32 as the reference).
fn rotary_table(len: usize, device: &Device) -> Result<(Tensor, Tensor)> {
    let half = HEAD_DIM / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|i| 1.0 / 10000f32.powf((2 * i) as f32 / HEAD_DIM as f32))
        .collect();
    let mut cos = Vec::with_capacity(len * HEAD_DIM);
    let mut sin = Vec::with_capacity(len * HEAD_DIM);
    for t in 0..len {
        for _ in 0..2 {
            for f in &freqs {
                let angle = t as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
    }
    Ok((
        Tensor::from_vec(cos, (len, HEAD_DIM), device)?,
        Tensor::from_vec(sin, (len, HEAD_DIM), device)?,
    ))
}

/// The tokenizer.
#[derive(Debug, Clone)]
pub struct S3Tokenizer {
    conv1: Conv1d,
    conv2: Conv1d,
    blocks: Vec<Block>,
    project_down: Linear,
    device: Device,
    dtype: DType,
}

impl S3Tokenizer {
    /// Loads the tokenizer of an S3Gen checkpoint (`s3gen.safetensors`,
    /// `s3gen.pt`: the tensors under `tokenizer.`), in f32. A file that does
    /// not fit is an error naming it and the first tensor.
    pub fn load(path: &Path, cfg: &S3TokenizerConfig, device: &Device) -> crate::Result<Self> {
        let what = "S3 speech tokenizer";
        Checkpoint::build(path, None, "tokenizer", DType::F32, device, what, |vb| {
            Self::new(cfg, vb)
        })
    }

    /// Loads the network from `vb` (the checkpoint's `tokenizer.`).
    pub fn new(cfg: &S3TokenizerConfig, vb: VarBuilder) -> Result<Self> {
        let n = cfg.n_audio_state;
        if cfg.n_audio_head * HEAD_DIM != n {
            candle_core::bail!(
                "S3 tokenizer: {n} wide is not {} heads of {HEAD_DIM}",
                cfg.n_audio_head
            );
        }
        let enc = vb.pp("encoder");
        let strided = Conv1dConfig {
            padding: 1,
            stride: 2,
            ..Default::default()
        };
        let conv = |c_in: usize, vb: VarBuilder| -> Result<Conv1d> {
            Ok(Conv1d::new(
                vb.get((n, c_in, 3), "weight")?,
                Some(vb.get(n, "bias")?),
                strided,
            ))
        };
        let blocks = (0..cfg.n_audio_layer)
            .map(|i| Block::new(cfg, enc.pp(format!("blocks.{i}"))))
            .collect::<Result<_>>()?;
        Ok(Self {
            conv1: conv(MELS, enc.pp("conv1"))?,
            conv2: conv(n, enc.pp("conv2"))?,
            blocks,
            project_down: linear(n, 8, vb.pp("quantizer._codebook.project_down"))?,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The encoder's output `[1, tokens, width]` for a log-mel `[frames, 128]`.
    pub fn encode(&self, mel: &Tensor) -> Result<Tensor> {
        let (frames, bands) = mel.dims2()?;
        if bands != MELS || frames == 0 || frames > MAX_FRAMES {
            candle_core::bail!(
                "the S3 tokenizer reads up to {MAX_FRAMES} frames (30 s) of {MELS}-band log-mel, got [{frames}, {bands}]"
            );
        }
        let x = mel
            .to_device(&self.device)?
            .to_dtype(self.dtype)?
            .t()?
            .unsqueeze(0)?;
        let x = cpu_ops::gelu_erf(&self.conv1.forward(&x)?)?;
        let x = cpu_ops::gelu_erf(&self.conv2.forward(&x)?)?;
        let mut x = x.transpose(1, 2)?.contiguous()?;
        let (cos, sin) = rotary_table(x.dim(1)?, &self.device)?;
        let (cos, sin) = (cos.to_dtype(self.dtype)?, sin.to_dtype(self.dtype)?);
        for block in &self.blocks {
            x = block.forward(&x, &cos, &sin)?;
        }
        Ok(x)
    }

    /// FSQ's values before rounding, `tanh(project_down(h)) · 0.999`,
    /// `[tokens, 8]` f32.
    pub fn pre_round(&self, hidden: &Tensor) -> Result<Tensor> {
        let h = self
            .project_down
            .forward(hidden)?
            .to_dtype(DType::F32)?
            .tanh()?;
        (h * f64::from(FSQ_SCALE))?.squeeze(0)
    }

    /// Speech tokens (25/s) of a log-mel `[frames, 128]`.
    pub fn tokenize(&self, mel: &Tensor) -> Result<Vec<u32>> {
        let values: Vec<Vec<f32>> = self.pre_round(&self.encode(mel)?)?.to_vec2()?;
        Ok(values.iter().map(|v| fsq_code(v)).collect())
    }
}

/// The code of 8 FSQ values: each rounded half to even (PyTorch's
/// `round`) to {−1, 0, 1}, plus 1, as the digits of a base-3 number (the
/// first the least significant).
fn fsq_code(values: &[f32]) -> u32 {
    values.iter().rev().fold(0u32, |acc, &v| {
        acc * 3 + (v.round_ties_even() + 1.0).clamp(0.0, 2.0) as u32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsq_digits_are_base_three_least_significant_first() {
        assert_eq!(fsq_code(&[-0.9; 8]), 0);
        assert_eq!(fsq_code(&[0.9; 8]), 6560);
        assert_eq!(
            fsq_code(&[0.7, -0.7, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            2 + 9 + 27 + 81 + 243 + 729 + 2187
        );
        // Half to even: 0.5 rounds to 0, −0.5 to −0.
        assert_eq!(
            fsq_code(&[0.5, -0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            1 + 3 + 9 + 27 + 81 + 243 + 729 + 2187
        );
    }
}
