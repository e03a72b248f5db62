//! The normalizing flow that maps the prior's sample to the decoder's latent.
//!
//! Mirrors `ResidualCouplingBlock`, `ResidualCouplingLayer` (mean-only) and
//! `WN` (the WaveNet-style gated stack) of
//! [VITS](https://github.com/jaywalnut310/vits/blob/main/modules.py), run in
//! reverse as at inference. Padded batches carry a mask; one utterance skips it.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::VitsConfig;
use crate::nn::cpu_ops::gated_tanh_sigmoid;
use crate::nn::layers::{flip_channels, masked, Conv, ConvSpec};

/// The gated, dilated convolution stack of WaveNet (VITS `WN`), summing skip outputs.
#[derive(Debug, Clone)]
struct WaveNet {
    in_layers: Vec<Conv>,
    res_skip_layers: Vec<Conv>,
    cond_layer: Option<Conv>,
    hidden: usize,
}

impl WaveNet {
    fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let n = cfg.prior_encoder_num_wavenet_layers;
        let k = cfg.wavenet_kernel_size;
        let mut in_layers = Vec::with_capacity(n);
        let mut res_skip_layers = Vec::with_capacity(n);
        for i in 0..n {
            let dilation = cfg.wavenet_dilation_rate.pow(i as u32);
            in_layers.push(
                ConvSpec::new(h, 2 * h, k)
                    .dilation(dilation)
                    .load(vb.pp(format!("in_layers.{i}")))?,
            );
            let out = if i + 1 < n { 2 * h } else { h };
            res_skip_layers
                .push(ConvSpec::new(h, out, 1).load(vb.pp(format!("res_skip_layers.{i}")))?);
        }
        let cond_layer = match cfg.num_speakers > 1 {
            true => Some(
                ConvSpec::new(cfg.speaker_embedding_size, 2 * h * n, 1)
                    .load(vb.pp("cond_layer"))?,
            ),
            false => None,
        };
        Ok(Self {
            in_layers,
            res_skip_layers,
            cond_layer,
            hidden: h,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>, g: Option<&Tensor>) -> Result<Tensor> {
        let h = self.hidden;
        let g = match (&self.cond_layer, g) {
            (Some(layer), Some(g)) => Some(layer.forward(g)?),
            _ => None,
        };
        let mut x = x.clone();
        let mut output: Option<Tensor> = None;
        let n = self.in_layers.len();
        for i in 0..n {
            let mut a = self.in_layers[i].forward(&x)?;
            if let Some(g) = &g {
                a = a.broadcast_add(&g.narrow(1, i * 2 * h, 2 * h)?)?;
            }
            let acts = gated_tanh_sigmoid(&a, h)?;
            let res_skip = self.res_skip_layers[i].forward(&acts)?;
            let skip = if i + 1 < n {
                x = masked(&(x + res_skip.narrow(1, 0, h)?)?, mask)?;
                res_skip.narrow(1, h, h)?
            } else {
                res_skip
            };
            output = Some(match output {
                Some(o) => (o + skip)?,
                None => skip,
            });
        }
        match output {
            Some(o) => masked(&o, mask),
            None => x.zeros_like(),
        }
    }
}

/// An affine coupling layer with mean-only shift: the second half of the
/// channels is shifted by a function of the first half.
#[derive(Debug, Clone)]
struct ResidualCoupling {
    pre: Conv,
    enc: WaveNet,
    post: Conv,
    half: usize,
}

impl ResidualCoupling {
    fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let half = cfg.flow_size / 2;
        let h = cfg.hidden_size;
        Ok(Self {
            pre: ConvSpec::new(half, h, 1).load(vb.pp("pre"))?,
            enc: WaveNet::new(cfg, vb.pp("enc"))?,
            post: ConvSpec::new(h, half, 1).load(vb.pp("post"))?,
            half,
        })
    }

    fn reverse(&self, x: &Tensor, mask: Option<&Tensor>, g: Option<&Tensor>) -> Result<Tensor> {
        let x0 = x.narrow(1, 0, self.half)?;
        let x1 = x.narrow(1, self.half, self.half)?;
        let h = masked(&self.pre.forward(&x0)?, mask)?;
        let h = self.enc.forward(&h, mask, g)?;
        let m = masked(&self.post.forward(&h)?, mask)?;
        Tensor::cat(&[&x0, &masked(&(x1 - m)?, mask)?], 1)
    }
}

/// The flow `flows.{0,2,4,…}` of coupling layers with channel flips between
/// them (VITS `ResidualCouplingBlock`), inverted.
#[derive(Debug, Clone)]
pub struct Flow {
    couplings: Vec<ResidualCoupling>,
    span: tracing::Span,
}

impl Flow {
    /// Loads `flows.{2i}` for each coupling layer (the checkpoint's `flow`).
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let couplings = (0..cfg.prior_encoder_num_flows)
            .map(|i| ResidualCoupling::new(cfg, vb.pp(format!("flows.{}", 2 * i))))
            .collect::<Result<_>>()?;
        Ok(Self {
            couplings,
            span: tracing::span!(tracing::Level::TRACE, "flow"),
        })
    }

    /// Maps `z_p` `[b, flow_size, frames]` to the decoder's latent `z`.
    pub fn reverse(
        &self,
        z_p: &Tensor,
        mask: Option<&Tensor>,
        g: Option<&Tensor>,
    ) -> Result<Tensor> {
        let _enter = self.span.enter();
        let mut x = z_p.clone();
        for coupling in self.couplings.iter().rev() {
            x = coupling.reverse(&flip_channels(&x)?, mask, g)?;
        }
        Ok(x)
    }
}
