//! The flow's velocity estimator (`ConditionalDecoder`): a 1-D U-Net of
//! causal ResNet blocks and transformer blocks, conditioned on the time step.
//!
//! With one channel width (Chatterbox's `channels=[256]`) the U-Net never
//! changes resolution: one down stage (ResNet, transformer blocks, causal
//! convolution), the middle stages, one up stage over the down stage's output
//! concatenated as a skip, a final causal block and a 1×1 projection to 80
//! mel channels. Transformer blocks are diffusers' `BasicTransformerBlock`
//! (pre-norm self-attention without biases on q/k/v, exact-erf GELU
//! feed-forward).

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{layer_norm, linear, linear_no_bias, LayerNorm, Linear, VarBuilder};

use super::conv::PaddedConv;
use super::S3GenConfig;
use crate::nn::cpu_attention;
use crate::nn::cpu_conv::FusedConv;
use crate::nn::cpu_ops::{self, gelu_erf, mish};

/// Mel channels of S3Gen's output (and of each of `x`, `mu`, the speaker
/// and the prompt condition at the input).
pub const MEL_CHANNELS: usize = 80;
/// Width of the sinusoidal time embedding (the decoder's input channels).
const TIME_SINUSOID: usize = 4 * MEL_CHANNELS;

/// The sinusoidal embedding of time steps `t` `[batch]` (scale 1000, half
/// sines then half cosines, as Matcha-TTS's `SinusoidalPosEmb`).
fn time_sinusoid(t: &Tensor) -> Result<Tensor> {
    let half = TIME_SINUSOID / 2;
    let step = 10000f32.ln() / (half as f32 - 1.0);
    let freqs: Vec<f32> = (0..half).map(|i| (i as f32 * -step).exp()).collect();
    let freqs = Tensor::from_vec(freqs, (1, half), t.device())?.to_dtype(t.dtype())?;
    let args = (t.unsqueeze(1)? * 1000.0)?.broadcast_mul(&freqs)?;
    Tensor::cat(&[args.sin()?, args.cos()?], 1)
}

/// `CausalBlock1D`: causal convolution (3 taps), layer norm over channels,
/// Mish, with the mask applied before and after.
#[derive(Debug, Clone)]
struct CausalBlock {
    conv: PaddedConv,
    norm: LayerNorm,
}

impl CausalBlock {
    fn new(c_in: usize, c_out: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv: PaddedConv::causal(c_in, c_out, 3, vb.pp("block.0"))?,
            norm: layer_norm(c_out, 1e-5, vb.pp("block.2"))?,
        })
    }

    /// `xs` `[batch, channels, len]`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = self.conv.forward(xs)?;
        let ys = self.norm.forward(&ys.transpose(1, 2)?)?.transpose(1, 2)?;
        mish(&ys)
    }
}

/// `CausalResnetBlock1D`: two causal blocks with the time embedding added
/// between them, and a 1×1 convolution on the residual path.
#[derive(Debug, Clone)]
struct ResnetBlock {
    block1: CausalBlock,
    block2: CausalBlock,
    time: Linear,
    residual: PaddedConv,
}

impl ResnetBlock {
    fn new(c_in: usize, c_out: usize, time_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            block1: CausalBlock::new(c_in, c_out, vb.pp("block1"))?,
            block2: CausalBlock::new(c_out, c_out, vb.pp("block2"))?,
            time: linear(time_dim, c_out, vb.pp("mlp.1"))?,
            residual: PaddedConv::same(c_in, c_out, 1, 1, vb.pp("res_conv"))?,
        })
    }

    /// `xs` `[batch, c_in, len]`, `t` `[batch, time_dim]`.
    fn forward(&self, xs: &Tensor, t: &Tensor) -> Result<Tensor> {
        let h = self.block1.forward(xs)?;
        let h = h.broadcast_add(&self.time.forward(&mish(t)?)?.unsqueeze(2)?)?;
        let h = self.block2.forward(&h)?;
        self.residual.forward_act(xs, 1.0, Some(&h))
    }
}

/// diffusers' `BasicTransformerBlock` as the decoder configures it, on
/// channel-major activations `[batch, dim, len]` (the U-Net's own layout).
#[derive(Debug, Clone)]
enum TransformerBlock {
    /// f32 on the CPU: every linear layer a 1×1 fused convolution (packed
    /// weights, bias and residual fused), q/k/v as one, attention read in
    /// place: no transposed copies.
    Cpu(Box<CpuBlock>),
    /// Elsewhere: candle's ops on `[batch, len, dim]`.
    Candle(Box<CandleBlock>),
}

/// The CPU form of a [`TransformerBlock`].
#[derive(Debug, Clone)]
struct CpuBlock {
    norm1: (Vec<f32>, Vec<f32>),
    qkv: FusedConv,
    out: FusedConv,
    norm3: (Vec<f32>, Vec<f32>),
    ff_in: FusedConv,
    ff_out: FusedConv,
    heads: usize,
    scale: f32,
}

/// The candle form of a [`TransformerBlock`].
#[derive(Debug, Clone)]
struct CandleBlock {
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    norm3: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
    heads: usize,
    head_dim: usize,
}

/// Layer-norm epsilon of the transformer blocks (PyTorch's default).
const BLOCK_NORM_EPS: f64 = 1e-5;

impl TransformerBlock {
    fn new(cfg: &S3GenConfig, vb: VarBuilder) -> Result<Self> {
        let dim = cfg.decoder_channels;
        let inner = cfg.decoder_heads * cfg.decoder_head_dim;
        if !cpu_ops::applies_on(vb.device(), vb.dtype()) {
            return Ok(Self::Candle(Box::new(CandleBlock {
                norm1: layer_norm(dim, BLOCK_NORM_EPS, vb.pp("norm1"))?,
                q: linear_no_bias(dim, inner, vb.pp("attn1.to_q"))?,
                k: linear_no_bias(dim, inner, vb.pp("attn1.to_k"))?,
                v: linear_no_bias(dim, inner, vb.pp("attn1.to_v"))?,
                out: linear(inner, dim, vb.pp("attn1.to_out.0"))?,
                norm3: layer_norm(dim, BLOCK_NORM_EPS, vb.pp("norm3"))?,
                ff_in: linear(dim, 4 * dim, vb.pp("ff.net.0.proj"))?,
                ff_out: linear(4 * dim, dim, vb.pp("ff.net.2"))?,
                heads: cfg.decoder_heads,
                head_dim: cfg.decoder_head_dim,
            })));
        }
        let norm = |name: &str| -> Result<(Vec<f32>, Vec<f32>)> {
            let vb = vb.pp(name);
            Ok((
                vb.get(dim, "weight")?.to_vec1()?,
                vb.get(dim, "bias")?.to_vec1()?,
            ))
        };
        // A linear layer [out, in] as a 1×1 convolution [out, in, 1].
        let conv = |w: Tensor, bias: Option<Tensor>| -> Result<FusedConv> {
            let w = w.unsqueeze(2)?;
            FusedConv::new(&w, bias.as_ref(), 1)
        };
        let attn = vb.pp("attn1");
        let qkv = Tensor::cat(
            &[
                attn.get((inner, dim), "to_q.weight")?,
                attn.get((inner, dim), "to_k.weight")?,
                attn.get((inner, dim), "to_v.weight")?,
            ],
            0,
        )?;
        let ff = vb.pp("ff.net");
        Ok(Self::Cpu(Box::new(CpuBlock {
            norm1: norm("norm1")?,
            qkv: conv(qkv, None)?,
            out: conv(
                attn.get((dim, inner), "to_out.0.weight")?,
                Some(attn.get(dim, "to_out.0.bias")?),
            )?,
            norm3: norm("norm3")?,
            ff_in: conv(
                ff.get((4 * dim, dim), "0.proj.weight")?,
                Some(ff.get(4 * dim, "0.proj.bias")?),
            )?,
            ff_out: conv(
                ff.get((dim, 4 * dim), "2.weight")?,
                Some(ff.get(dim, "2.bias")?),
            )?,
            heads: cfg.decoder_heads,
            scale: 1.0 / (cfg.decoder_head_dim as f32).sqrt(),
        })))
    }

    /// `xs` `[batch, dim, len]`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::Cpu(b) => b.forward(xs),
            Self::Candle(b) => b
                .forward(&xs.transpose(1, 2)?)?
                .transpose(1, 2)?
                .contiguous(),
        }
    }
}

impl CpuBlock {
    /// `xs` `[batch, dim, len]`, f32 on the CPU.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let eps = BLOCK_NORM_EPS as f32;
        let normed = cpu_ops::channel_norm(xs, &self.norm1.0, &self.norm1.1, eps)?;
        let qkv = self.qkv.forward(&normed, 1.0, None)?;
        let ctx = cpu_attention::self_attention_channel_major(&qkv, self.heads, self.scale)?;
        let xs = self.out.forward(&ctx, 1.0, Some(xs))?;
        let normed = cpu_ops::channel_norm(&xs, &self.norm3.0, &self.norm3.1, eps)?;
        let hidden = gelu_erf(&self.ff_in.forward(&normed, 1.0, None)?)?;
        self.ff_out.forward(&hidden, 1.0, Some(&xs))
    }
}

impl CandleBlock {
    /// `xs` `[batch, len, dim]`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, len, _) = xs.dims3()?;
        let (h, dk) = (self.heads, self.head_dim);
        let normed = self.norm1.forward(xs)?;
        let heads = |t: Tensor| t.reshape((b, len, h, dk))?.transpose(1, 2)?.contiguous();
        let q = heads(self.q.forward(&normed)?)?;
        let k = heads(self.k.forward(&normed)?)?;
        let v = heads(self.v.forward(&normed)?)?;
        let scores = (q.matmul(&k.t()?)? / (dk as f64).sqrt())?;
        let attn = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = attn
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, len, h * dk))?;
        let xs = (xs + self.out.forward(&ctx)?)?;
        let ff = gelu_erf(&self.ff_in.forward(&self.norm3.forward(&xs)?)?)?;
        xs + self.ff_out.forward(&ff)?
    }
}

/// A U-Net stage: a ResNet block, transformer blocks, and (down and up
/// stages) a causal convolution after them.
#[derive(Debug, Clone)]
struct Stage {
    resnet: ResnetBlock,
    transformers: Vec<TransformerBlock>,
    conv: Option<PaddedConv>,
}

impl Stage {
    fn new(cfg: &S3GenConfig, c_in: usize, with_conv: bool, vb: VarBuilder) -> Result<Self> {
        let c = cfg.decoder_channels;
        let transformers = (0..cfg.decoder_blocks_per_stage)
            .map(|i| TransformerBlock::new(cfg, vb.pp(format!("1.{i}"))))
            .collect::<Result<_>>()?;
        let conv = match with_conv {
            true => Some(PaddedConv::causal(c, c, 3, vb.pp("2"))?),
            false => None,
        };
        Ok(Self {
            resnet: ResnetBlock::new(c_in, c, cfg.time_embed_dim(), vb.pp("0"))?,
            transformers,
            conv,
        })
    }

    /// Returns the transformer output (the skip of a down stage) and the
    /// stage's output.
    fn forward(&self, xs: &Tensor, t: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut h = self.resnet.forward(xs, t)?;
        for block in &self.transformers {
            h = block.forward(&h)?;
        }
        let out = match &self.conv {
            Some(conv) => conv.forward(&h)?,
            None => h.clone(),
        };
        Ok((h, out))
    }
}

/// The estimator: `v(x, mu, t, spks, cond)` (and `r` for meanflow).
#[derive(Debug, Clone)]
pub struct ConditionalDecoder {
    time_1: Linear,
    time_2: Linear,
    /// Meanflow's mixer of the `t` and `r` embeddings.
    time_mixer: Option<Linear>,
    down: Stage,
    mid: Vec<Stage>,
    up: Stage,
    final_block: CausalBlock,
    final_proj: PaddedConv,
}

impl ConditionalDecoder {
    /// Loads `flow.decoder.estimator.*`; `meanflow` for Turbo's decoder.
    pub fn new(cfg: &S3GenConfig, meanflow: bool, vb: VarBuilder) -> Result<Self> {
        let c = cfg.decoder_channels;
        let td = cfg.time_embed_dim();
        let mid = (0..cfg.decoder_mid_blocks)
            .map(|i| Stage::new(cfg, c, false, vb.pp(format!("mid_blocks.{i}"))))
            .collect::<Result<_>>()?;
        let time_mixer = match meanflow {
            true => Some(linear_no_bias(2 * td, td, vb.pp("time_embed_mixer"))?),
            false => None,
        };
        Ok(Self {
            time_1: linear(TIME_SINUSOID, td, vb.pp("time_mlp.linear_1"))?,
            time_2: linear(td, td, vb.pp("time_mlp.linear_2"))?,
            time_mixer,
            down: Stage::new(cfg, TIME_SINUSOID, true, vb.pp("down_blocks.0"))?,
            mid,
            up: Stage::new(cfg, 2 * c, true, vb.pp("up_blocks.0"))?,
            final_block: CausalBlock::new(c, c, vb.pp("final_block"))?,
            final_proj: PaddedConv::same(c, MEL_CHANNELS, 1, 1, vb.pp("final_proj"))?,
        })
    }

    /// Whether this is a meanflow (Turbo) estimator, which takes `r`.
    pub fn is_meanflow(&self) -> bool {
        self.time_mixer.is_some()
    }

    fn time_embedding(&self, t: &Tensor) -> Result<Tensor> {
        let e = self.time_1.forward(&time_sinusoid(t)?)?.silu()?;
        self.time_2.forward(&e)
    }

    /// The velocity for `x`, `mu`, `cond` `[batch, 80, len]`, `spks`
    /// `[batch, 80]`, `t` (and meanflow's `r`) `[batch]`.
    pub fn forward(
        &self,
        x: &Tensor,
        mu: &Tensor,
        t: &Tensor,
        spks: &Tensor,
        cond: &Tensor,
        r: Option<&Tensor>,
    ) -> Result<Tensor> {
        let mut temb = self.time_embedding(t)?;
        if let (Some(mixer), Some(r)) = (&self.time_mixer, r) {
            let remb = self.time_embedding(r)?;
            temb = mixer.forward(&Tensor::cat(&[&temb, &remb], 1)?)?;
        }
        let len = x.dim(D::Minus1)?;
        let spks = spks.unsqueeze(2)?.repeat((1, 1, len))?;
        let xs = Tensor::cat(&[x, mu, &spks, cond], 1)?;
        let (skip, mut xs) = self.down.forward(&xs, &temb)?;
        for stage in &self.mid {
            xs = stage.forward(&xs, &temb)?.1;
        }
        let xs = Tensor::cat(&[&xs, &skip], 1)?;
        let xs = self.up.forward(&xs, &temb)?.1;
        let xs = self.final_block.forward(&xs)?;
        self.final_proj.forward(&xs)
    }
}
