//! The VITS text encoder: phoneme embeddings, a transformer with relative
//! position attention, and the projection to the prior's mean and log-scale.
//!
//! Mirrors `TextEncoder`, `attentions.Encoder`, `MultiHeadAttention` and `FFN` of
//! [VITS](https://github.com/jaywalnut310/vits) (also Piper's `piper_train/vits`).
//! Batches of different lengths carry a padding mask; a single utterance skips it.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};

use super::VitsConfig;
use crate::nn::layers::{masked, ChannelNorm, Conv, ConvSpec};

/// Multi-head self-attention with learned relative-position embeddings for
/// keys and values within `window_size` positions (Shaw et al. 2018).
#[derive(Debug, Clone)]
struct RelativeAttention {
    conv_q: Conv,
    conv_k: Conv,
    conv_v: Conv,
    conv_o: Conv,
    /// `[2 * window + 1, head_dim]`, relative offsets `-window..=window`.
    emb_rel_k: Tensor,
    emb_rel_v: Tensor,
    heads: usize,
    head_dim: usize,
    window: usize,
}

impl RelativeAttention {
    fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let heads = cfg.num_attention_heads;
        let head_dim = h / heads;
        let window = cfg.window_size;
        let rel = (1, 2 * window + 1, head_dim);
        let proj = match cfg.use_bias {
            true => ConvSpec::new(h, h, 1),
            false => ConvSpec::new(h, h, 1).no_bias(),
        };
        Ok(Self {
            conv_q: proj.load(vb.pp("conv_q"))?,
            conv_k: proj.load(vb.pp("conv_k"))?,
            conv_v: proj.load(vb.pp("conv_v"))?,
            conv_o: proj.load(vb.pp("conv_o"))?,
            emb_rel_k: vb.get(rel, "emb_rel_k")?.squeeze(0)?,
            emb_rel_v: vb.get(rel, "emb_rel_v")?.squeeze(0)?,
            heads,
            head_dim,
            window,
        })
    }

    /// The embeddings for relative offsets `-(len-1)..=(len-1)`, zero beyond the window.
    fn relative_embeddings(&self, emb: &Tensor, len: usize) -> Result<Tensor> {
        let w = self.window;
        let pad = len.saturating_sub(w + 1);
        let start = (w + 1).saturating_sub(len);
        emb.pad_with_zeros(0, pad, pad)?
            .narrow(0, start, 2 * len - 1)
    }

    /// `[h, l, 2l-1]` indexed by relative offset → `[h, l, l]` indexed by key position.
    fn relative_to_absolute(x: &Tensor) -> Result<Tensor> {
        let (h, l, _) = x.dims3()?;
        let x = x.pad_with_zeros(2, 0, 1)?.reshape((h, l * 2 * l))?;
        let x = x
            .pad_with_zeros(1, 0, l - 1)?
            .reshape((h, l + 1, 2 * l - 1))?;
        x.narrow(1, 0, l)?.narrow(2, l - 1, l)
    }

    /// `[h, l, l]` indexed by key position → `[h, l, 2l-1]` indexed by relative offset.
    fn absolute_to_relative(x: &Tensor) -> Result<Tensor> {
        let (h, l, _) = x.dims3()?;
        let x = x
            .pad_with_zeros(2, 0, l - 1)?
            .reshape((h, l * (2 * l - 1)))?;
        let x = x.pad_with_zeros(1, l, 0)?.reshape((h, l, 2 * l))?;
        x.narrow(2, 1, 2 * l - 1)
    }

    /// `[b, hidden, t]` → `[b * heads, t, head_dim]`.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, _, t) = x.dims3()?;
        x.reshape((b * self.heads, self.head_dim, t))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Self-attention over `x` `[b, hidden, t]`; `mask` `[b, 1, t]` marks real
    /// positions (scores involving padding are set to -1e4, as VITS does).
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, _, t) = x.dims3()?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let q = (self.split_heads(&self.conv_q.forward(x)?)? * scale)?;
        let k = self.split_heads(&self.conv_k.forward(x)?)?;
        let v = self.split_heads(&self.conv_v.forward(x)?)?;

        let rel_k = self.relative_embeddings(&self.emb_rel_k, t)?; // [2t-1, d]
        let rel_logits = q.broadcast_matmul(&rel_k.t()?)?; // [b*h, t, 2t-1]
        let mut scores = (q.matmul(&k.t()?)? + Self::relative_to_absolute(&rel_logits)?)?;
        if let Some(mask) = mask {
            // [b, 1, t, 1] * [b, 1, 1, t] → [b*h, t, t]
            let pair = mask
                .unsqueeze(3)?
                .broadcast_mul(&mask.unsqueeze(2)?)?
                .broadcast_as((b, self.heads, t, t))?
                .reshape((b * self.heads, t, t))?
                .ne(0.0)?;
            let fill = Tensor::new(-1e4f32, x.device())?
                .to_dtype(scores.dtype())?
                .broadcast_as(scores.shape())?;
            scores = pair.where_cond(&scores, &fill)?;
        }
        let p = candle_nn::ops::softmax_last_dim(&scores)?;

        let rel_v = self.relative_embeddings(&self.emb_rel_v, t)?; // [2t-1, d]
        let out = (p.matmul(&v)?
            + Self::absolute_to_relative(&p)?
                .contiguous()?
                .broadcast_matmul(&rel_v)?)?; // [b*h, t, d]
        let out = out
            .reshape((b, self.heads, t, self.head_dim))?
            .transpose(2, 3)?
            .reshape((b, self.heads * self.head_dim, t))?;
        self.conv_o.forward(&out)
    }
}

/// The transformer's position-wise feed-forward block: conv, ReLU, conv.
#[derive(Debug, Clone)]
struct FeedForward {
    conv_1: Conv,
    conv_2: Conv,
}

impl FeedForward {
    fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let (h, f, k) = (cfg.hidden_size, cfg.ffn_dim, cfg.ffn_kernel_size);
        Ok(Self {
            conv_1: ConvSpec::new(h, f, k).load(vb.pp("conv_1"))?,
            conv_2: ConvSpec::new(f, h, k).load(vb.pp("conv_2"))?,
        })
    }
}

impl FeedForward {
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let h = self.conv_1.forward(&masked(x, mask)?)?.relu()?;
        masked(&self.conv_2.forward(&masked(&h, mask)?)?, mask)
    }
}

/// The text encoder: `[1, tokens]` phoneme ids → hidden states and the prior's
/// per-token mean and log standard deviation (`m_p`, `logs_p`).
#[derive(Debug, Clone)]
pub struct TextEncoder {
    emb: Embedding,
    attn_layers: Vec<RelativeAttention>,
    norm_layers_1: Vec<ChannelNorm>,
    ffn_layers: Vec<FeedForward>,
    norm_layers_2: Vec<ChannelNorm>,
    proj: Conv,
    hidden: usize,
    flow_size: usize,
    span: tracing::Span,
}

/// What the text encoder hands on: `x` for the duration predictor, `m_p` and
/// `logs_p` for the prior, each `[1, channels, tokens]`.
#[derive(Debug, Clone)]
pub struct EncodedText {
    /// Hidden states `[batch, hidden, tokens]`.
    pub x: Tensor,
    /// Prior mean `[batch, flow_size, tokens]`.
    pub m_p: Tensor,
    /// Prior log standard deviation `[batch, flow_size, tokens]`.
    pub logs_p: Tensor,
}

impl TextEncoder {
    /// Loads `emb`, `encoder.*` and `proj` from `vb` (the checkpoint's `enc_p`).
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let enc = vb.pp("encoder");
        let n = cfg.num_hidden_layers;
        let eps = cfg.layer_norm_eps;
        Ok(Self {
            emb: candle_nn::embedding(cfg.vocab_size, h, vb.pp("emb"))?,
            attn_layers: (0..n)
                .map(|i| RelativeAttention::new(cfg, enc.pp(format!("attn_layers.{i}"))))
                .collect::<Result<_>>()?,
            norm_layers_1: (0..n)
                .map(|i| ChannelNorm::new(h, eps, enc.pp(format!("norm_layers_1.{i}"))))
                .collect::<Result<_>>()?,
            ffn_layers: (0..n)
                .map(|i| FeedForward::new(cfg, enc.pp(format!("ffn_layers.{i}"))))
                .collect::<Result<_>>()?,
            norm_layers_2: (0..n)
                .map(|i| ChannelNorm::new(h, eps, enc.pp(format!("norm_layers_2.{i}"))))
                .collect::<Result<_>>()?,
            proj: ConvSpec::new(h, 2 * cfg.flow_size, 1).load(vb.pp("proj"))?,
            hidden: h,
            flow_size: cfg.flow_size,
            span: tracing::span!(tracing::Level::TRACE, "text-encoder"),
        })
    }

    /// Encodes `ids` (`[batch, tokens]`, u32 or i64); `mask` `[batch, 1,
    /// tokens]` marks real tokens when the batch is padded.
    pub fn forward(&self, ids: &Tensor, mask: Option<&Tensor>) -> Result<EncodedText> {
        let _enter = self.span.enter();
        let x = (self.emb.forward(ids)? * (self.hidden as f64).sqrt())?
            .transpose(1, 2)?
            .contiguous()?;
        let mut x = masked(&x, mask)?;
        for i in 0..self.attn_layers.len() {
            let y = self.attn_layers[i].forward(&x, mask)?;
            x = self.norm_layers_1[i].forward(&(x + y)?)?;
            let y = self.ffn_layers[i].forward(&x, mask)?;
            x = self.norm_layers_2[i].forward(&(x + y)?)?;
        }
        let x = masked(&x, mask)?;
        let stats = masked(&self.proj.forward(&x)?, mask)?;
        let m_p = stats.narrow(1, 0, self.flow_size)?;
        let logs_p = stats.narrow(1, self.flow_size, self.flow_size)?;
        Ok(EncodedText { x, m_p, logs_p })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// VITS `_relative_position_to_absolute_position` defines out[i][j] = x[i][j - i + l - 1];
    /// for `arange(15).view(3, 5)` (l = 3) that is `[[2,3,4],[6,7,8],[10,11,12]]`.
    #[test]
    fn relative_to_absolute_matches_vits() -> Result<()> {
        let x = Tensor::arange(0f32, 15., &Device::Cpu)?.reshape((1, 3, 5))?;
        let y = RelativeAttention::relative_to_absolute(&x)?;
        assert_eq!(
            y.squeeze(0)?.to_vec2::<f32>()?,
            vec![vec![2., 3., 4.], vec![6., 7., 8.], vec![10., 11., 12.]]
        );
        Ok(())
    }

    /// VITS `_absolute_position_to_relative_position` defines out[i][m] = x[i][m + i - (l - 1)]
    /// (zero outside); for `arange(9).view(3, 3)` that is `[[0,0,0,1,2],[0,3,4,5,0],[6,7,8,0,0]]`.
    #[test]
    fn absolute_to_relative_matches_vits() -> Result<()> {
        let x = Tensor::arange(0f32, 9., &Device::Cpu)?.reshape((1, 3, 3))?;
        let y = RelativeAttention::absolute_to_relative(&x)?;
        assert_eq!(
            y.squeeze(0)?.to_vec2::<f32>()?,
            vec![
                vec![0., 0., 0., 1., 2.],
                vec![0., 3., 4., 5., 0.],
                vec![6., 7., 8., 0., 0.]
            ]
        );
        Ok(())
    }
}
