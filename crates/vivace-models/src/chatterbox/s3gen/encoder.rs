//! S3Gen's token encoder (`UpsampleConformerEncoder`): speech-token
//! embeddings at 25 frames/s to 50 frames/s hidden states.
//!
//! Linear embedding with ESPnet relative positions, a look-ahead
//! convolution, conformer blocks (relative-position self-attention and a
//! SiLU feed-forward, pre-norm, no convolution module), 2× nearest
//! upsampling with a causal convolution, a second embedding and more
//! conformer blocks, then a final layer norm.

use candle_core::{Device, Module, Result, Tensor, D};
use candle_nn::{layer_norm, linear, linear_no_bias, LayerNorm, Linear, VarBuilder};

use super::conv::PaddedConv;
use super::S3GenConfig;
use crate::nn::{cpu_attention, cpu_ops};

/// Layer-norm epsilon of the conformer blocks (WeNet's `1e-12`).
const BLOCK_NORM_EPS: f64 = 1e-12;
/// Layer-norm epsilon of the embeddings and the final norm.
const NORM_EPS: f64 = 1e-5;

/// ESPnet's relative positional encoding for `len` frames: rows for relative
/// positions `len − 1` down to `−(len − 1)`, `[1, 2·len − 1, width]`,
/// computed in f32 as the reference does.
pub fn relative_positions(len: usize, width: usize, device: &Device) -> Result<Tensor> {
    let half = width / 2;
    let scale = -(10000f32.ln() / width as f32);
    let div: Vec<f32> = (0..half).map(|i| ((2 * i) as f32 * scale).exp()).collect();
    let rows = 2 * len - 1;
    let mut pe = vec![0f32; rows * width];
    for (row, chunk) in pe.chunks_exact_mut(width).enumerate() {
        let pos = (len as isize - 1 - row as isize) as f32;
        for (i, d) in div.iter().enumerate() {
            let angle = pos * d;
            chunk[2 * i] = angle.sin();
            chunk[2 * i + 1] = angle.cos();
        }
    }
    Tensor::from_vec(pe, (1, rows, width), device)
}

/// `LinearNoSubsampling`: linear, layer norm, then `× √width` (the
/// positional encoding's input scaling).
#[derive(Debug, Clone)]
struct LinearEmbed {
    linear: Linear,
    norm: LayerNorm,
    scale: f64,
}

impl LinearEmbed {
    fn new(width: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            linear: linear(width, width, vb.pp("out.0"))?,
            norm: layer_norm(width, NORM_EPS, vb.pp("out.1"))?,
            scale: (width as f64).sqrt(),
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.norm.forward(&self.linear.forward(xs)?)? * self.scale
    }
}

/// ESPnet's relative-position multi-head self-attention
/// (`RelPositionMultiHeadedAttention`, with `pos_bias_u`/`pos_bias_v`).
#[derive(Debug, Clone)]
struct RelPositionAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    pos: Linear,
    bias_u: Tensor,
    bias_v: Tensor,
    heads: usize,
    head_dim: usize,
}

impl RelPositionAttention {
    fn new(width: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        let head_dim = width / heads;
        Ok(Self {
            q: linear(width, width, vb.pp("linear_q"))?,
            k: linear(width, width, vb.pp("linear_k"))?,
            v: linear(width, width, vb.pp("linear_v"))?,
            out: linear(width, width, vb.pp("linear_out"))?,
            pos: linear_no_bias(width, width, vb.pp("linear_pos"))?,
            bias_u: vb.get((heads, head_dim), "pos_bias_u")?,
            bias_v: vb.get((heads, head_dim), "pos_bias_v")?,
            heads,
            head_dim,
        })
    }

    /// `xs` `[batch, len, width]`, `pos` from [`relative_positions`].
    fn forward(&self, xs: &Tensor, pos: &Tensor) -> Result<Tensor> {
        let (b, len, width) = xs.dims3()?;
        let (h, dk) = (self.heads, self.head_dim);
        let split = |t: Tensor, n: usize| t.reshape((n, (), h, dk));
        let q = split(self.q.forward(xs)?, b)?;
        let k = split(self.k.forward(xs)?, b)?
            .transpose(1, 2)?
            .contiguous()?;
        let v = split(self.v.forward(xs)?, b)?
            .transpose(1, 2)?
            .contiguous()?;
        let p = split(self.pos.forward(pos)?, 1)?
            .transpose(1, 2)?
            .contiguous()?;
        let q_u = q
            .broadcast_add(&self.bias_u)?
            .transpose(1, 2)?
            .contiguous()?;
        let q_v = q
            .broadcast_add(&self.bias_v)?
            .transpose(1, 2)?
            .contiguous()?;
        let position = rel_shift(&q_v.broadcast_matmul(&p.t()?)?)?;
        let scale = 1.0 / (dk as f64).sqrt();
        let ctx = if cpu_ops::applies_to(&q_u) {
            // The position scores enter as a bias, scaled like the content ones.
            let bias = (position * scale)?.contiguous()?;
            cpu_attention::attention(&q_u, &k, &v, scale as f32, Some(&bias))?
        } else {
            let scores = ((q_u.matmul(&k.t()?)? + position)? * scale)?;
            let attn = candle_nn::ops::softmax_last_dim(&scores)?;
            attn.matmul(&v)?.transpose(1, 2)?.reshape((b, len, width))?
        };
        self.out.forward(&ctx)
    }
}

/// Transformer-XL's shift: `out[…, i, j] = x[…, i, len − 1 − i + j]`, the
/// score of query `i` for key `j` at relative position `i − j`.
fn rel_shift(x: &Tensor) -> Result<Tensor> {
    let (b, h, len, rows) = x.dims4()?;
    let padded = x.pad_with_zeros(D::Minus1, 1, 0)?;
    padded
        .reshape((b, h, rows + 1, len))?
        .narrow(2, 1, rows)?
        .contiguous()?
        .reshape((b, h, len, rows))?
        .narrow(3, 0, len)
}

/// A pre-norm conformer block without convolution module or macaron
/// feed-forward: attention, then a SiLU feed-forward, each residual.
#[derive(Debug, Clone)]
struct ConformerBlock {
    norm_mha: LayerNorm,
    attn: RelPositionAttention,
    norm_ff: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
}

impl ConformerBlock {
    fn new(cfg: &S3GenConfig, vb: VarBuilder) -> Result<Self> {
        let w = cfg.encoder_width;
        Ok(Self {
            norm_mha: layer_norm(w, BLOCK_NORM_EPS, vb.pp("norm_mha"))?,
            attn: RelPositionAttention::new(w, cfg.encoder_heads, vb.pp("self_attn"))?,
            norm_ff: layer_norm(w, BLOCK_NORM_EPS, vb.pp("norm_ff"))?,
            ff_in: linear(w, cfg.encoder_linear_units, vb.pp("feed_forward.w_1"))?,
            ff_out: linear(cfg.encoder_linear_units, w, vb.pp("feed_forward.w_2"))?,
        })
    }

    fn forward(&self, xs: &Tensor, pos: &Tensor) -> Result<Tensor> {
        let xs = (xs + self.attn.forward(&self.norm_mha.forward(xs)?, pos)?)?;
        let ff = self.ff_in.forward(&self.norm_ff.forward(&xs)?)?.silu()?;
        xs + self.ff_out.forward(&ff)?
    }
}

/// `PreLookaheadLayer`: a convolution that sees 3 frames ahead, a leaky
/// ReLU, a causal convolution, and the residual.
#[derive(Debug, Clone)]
struct PreLookahead {
    conv1: PaddedConv,
    conv2: PaddedConv,
}

impl PreLookahead {
    const LOOKAHEAD: usize = 3;

    fn new(width: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv1: PaddedConv::lookahead(width, width, Self::LOOKAHEAD + 1, vb.pp("conv1"))?,
            conv2: PaddedConv::causal(width, width, 3, vb.pp("conv2"))?,
        })
    }

    /// `xs` `[batch, len, width]`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let t = xs.transpose(1, 2)?.contiguous()?;
        let t = self.conv1.forward(&t)?;
        let t = self.conv2.forward_act(&t, 0.01, None)?;
        t.transpose(1, 2)? + xs
    }
}

/// The encoder, from token embeddings `[batch, tokens, width]` to hidden
/// states `[batch, 2·tokens, width]`.
#[derive(Debug, Clone)]
pub struct UpsampleConformerEncoder {
    embed: LinearEmbed,
    pre_lookahead: PreLookahead,
    blocks: Vec<ConformerBlock>,
    up_conv: PaddedConv,
    up_embed: LinearEmbed,
    up_blocks: Vec<ConformerBlock>,
    after_norm: LayerNorm,
    width: usize,
}

impl UpsampleConformerEncoder {
    /// Loads `flow.encoder.*`.
    pub fn new(cfg: &S3GenConfig, vb: VarBuilder) -> Result<Self> {
        let w = cfg.encoder_width;
        let blocks = (0..cfg.encoder_blocks)
            .map(|i| ConformerBlock::new(cfg, vb.pp(format!("encoders.{i}"))))
            .collect::<Result<_>>()?;
        let up_blocks = (0..cfg.encoder_up_blocks)
            .map(|i| ConformerBlock::new(cfg, vb.pp(format!("up_encoders.{i}"))))
            .collect::<Result<_>>()?;
        Ok(Self {
            embed: LinearEmbed::new(w, vb.pp("embed"))?,
            pre_lookahead: PreLookahead::new(w, vb.pp("pre_lookahead_layer"))?,
            blocks,
            up_conv: PaddedConv::causal(w, w, 5, vb.pp("up_layer.conv"))?,
            up_embed: LinearEmbed::new(w, vb.pp("up_embed"))?,
            up_blocks,
            after_norm: layer_norm(w, NORM_EPS, vb.pp("after_norm"))?,
            width: w,
        })
    }

    /// Encodes `xs` `[batch, tokens, width]` (no padding: every row full).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let device = xs.device();
        let len = xs.dim(1)?;
        let pos = relative_positions(len, self.width, device)?.to_dtype(xs.dtype())?;
        let mut xs = self.embed.forward(xs)?;
        xs = self.pre_lookahead.forward(&xs)?;
        for block in &self.blocks {
            xs = block.forward(&xs, &pos)?;
        }
        // 2× nearest upsampling, then a causal convolution of 5 taps.
        let t = xs.transpose(1, 2)?.contiguous()?;
        let t = t.upsample_nearest1d(2 * len)?;
        let t = self.up_conv.forward(&t)?;
        let pos = relative_positions(2 * len, self.width, device)?.to_dtype(xs.dtype())?;
        let mut xs = self.up_embed.forward(&t.transpose(1, 2)?.contiguous()?)?;
        for block in &self.up_blocks {
            xs = block.forward(&xs, &pos)?;
        }
        self.after_norm.forward(&xs)
    }
}
