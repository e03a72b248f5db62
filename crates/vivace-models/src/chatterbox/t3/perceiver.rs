//! T3's perceiver resampler: 32 learned queries attend to the prompt's
//! speech-token embeddings (cross-attention), then to themselves
//! (self-attention), through one shared block: the reference's
//! `Perceiver` with `AttentionBlock2` (a shared LayerNorm, biased q/k/v and
//! output projections, 4 heads, a residual). It turns a prompt of any
//! length into 32 conditioning positions.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use crate::nn::linear::{Linear, Precision};

/// Attention heads of the block (fixed in the reference).
const HEADS: usize = 4;
/// The LayerNorm's epsilon (PyTorch's default).
const NORM_EPS: f64 = 1e-5;

/// The resampler.
#[derive(Debug, Clone)]
pub struct Perceiver {
    query: Tensor,
    norm: LayerNorm,
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    proj_out: Linear,
    width: usize,
}

impl Perceiver {
    /// Loads `pre_attention_query` and `attn.*` from `vb`; the query count
    /// comes from the checkpoint.
    pub fn load(width: usize, vb: VarBuilder) -> Result<Self> {
        let query = vb.get_unchecked("pre_attention_query")?;
        match query.dims() {
            [1, _, w] if *w == width => {}
            other => candle_core::bail!(
                "perceiver query has shape {other:?}, [1, queries, {width}] expected"
            ),
        }
        let attn = vb.pp("attn");
        let proj = |name: &str| Linear::load(width, width, true, Precision::F32, attn.pp(name));
        Ok(Self {
            query,
            norm: layer_norm(width, NORM_EPS, attn.pp("norm"))?,
            to_q: proj("to_q")?,
            to_k: proj("to_k")?,
            to_v: proj("to_v")?,
            proj_out: proj("proj_out")?,
            width,
        })
    }

    /// `[1, prompt, width]` embeddings to `[1, queries, width]`.
    pub fn forward(&self, prompt: &Tensor) -> Result<Tensor> {
        let cross = self.block(&self.query, prompt)?;
        self.block(&cross, &cross)
    }

    /// `x1 + proj_out(attention(q = norm(x1), kv = norm(x2)))`.
    fn block(&self, x1: &Tensor, x2: &Tensor) -> Result<Tensor> {
        let q = self.to_q.forward(&self.norm.forward(x1)?)?;
        let x2n = self.norm.forward(x2)?;
        let k = self.to_k.forward(&x2n)?;
        let v = self.to_v.forward(&x2n)?;
        let dh = self.width / HEADS;
        let heads = |t: &Tensor| -> Result<Tensor> {
            let (b, n, _) = t.dims3()?;
            t.reshape((b, n, HEADS, dh))?.transpose(1, 2)?.contiguous()
        };
        let (q, k, v) = (heads(&q)?, heads(&k)?, heads(&v)?);
        let scores = (q.matmul(&k.t()?.contiguous()?)? * (dh as f64).powf(-0.5))?;
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let (b, _, n, _) = weights.dims4()?;
        let h = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, n, self.width))?;
        x1 + self.proj_out.forward(&h)?
    }
}
