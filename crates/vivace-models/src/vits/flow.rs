//! The normalizing flow between the prior's and the decoder's latents.
//!
//! Mirrors `ResidualCouplingBlock` and `ResidualCouplingLayer` (mean-only)
//! of [VITS](https://github.com/jaywalnut310/vits/blob/main/modules.py):
//! VITS synthesis runs it in reverse; OpenVoice's converter runs it forward
//! with the source speaker, then in reverse with the target. The coupling
//! body is the shared [`WaveNet`]. Padded batches carry a mask.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::VitsConfig;
use crate::nn::layers::{flip_channels, masked, Conv, ConvSpec};
use crate::nn::wavenet::{WaveNet, WaveNetSpec};

/// The flow's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSpec {
    /// Channels of the latents (split in halves by each coupling).
    pub channels: usize,
    /// Coupling layers (`flows.0`, `flows.2`, …; flips between them).
    pub couplings: usize,
    /// Each coupling's WaveNet.
    pub wavenet: WaveNetSpec,
}

impl FlowSpec {
    /// The flow of a VITS checkpoint (transformers' config names).
    pub fn vits(cfg: &VitsConfig) -> Self {
        Self {
            channels: cfg.flow_size,
            couplings: cfg.prior_encoder_num_flows,
            wavenet: WaveNetSpec {
                hidden: cfg.hidden_size,
                kernel: cfg.wavenet_kernel_size,
                dilation_rate: cfg.wavenet_dilation_rate,
                layers: cfg.prior_encoder_num_wavenet_layers,
                cond_channels: (cfg.num_speakers > 1).then_some(cfg.speaker_embedding_size),
            },
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
    fn new(spec: &FlowSpec, vb: VarBuilder) -> Result<Self> {
        let half = spec.channels / 2;
        let h = spec.wavenet.hidden;
        Ok(Self {
            pre: ConvSpec::new(half, h, 1).load(vb.pp("pre"))?,
            enc: WaveNet::new(&spec.wavenet, vb.pp("enc"))?,
            post: ConvSpec::new(h, half, 1).load(vb.pp("post"))?,
            half,
        })
    }

    /// The shift `m` computed from the first half, and the two halves.
    fn shift(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        g: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let x0 = x.narrow(1, 0, self.half)?;
        let x1 = x.narrow(1, self.half, self.half)?;
        let h = masked(&self.pre.forward(&x0)?, mask)?;
        let h = self.enc.forward(&h, mask, g)?;
        let m = masked(&self.post.forward(&h)?, mask)?;
        Ok((x0, x1, m))
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>, g: Option<&Tensor>) -> Result<Tensor> {
        let (x0, x1, m) = self.shift(x, mask, g)?;
        Tensor::cat(&[&x0, &masked(&(x1 + m)?, mask)?], 1)
    }

    fn reverse(&self, x: &Tensor, mask: Option<&Tensor>, g: Option<&Tensor>) -> Result<Tensor> {
        let (x0, x1, m) = self.shift(x, mask, g)?;
        Tensor::cat(&[&x0, &masked(&(x1 - m)?, mask)?], 1)
    }
}

/// The flow `flows.{0,2,4,…}` of coupling layers with channel flips between
/// them (VITS `ResidualCouplingBlock`).
#[derive(Debug, Clone)]
pub struct Flow {
    couplings: Vec<ResidualCoupling>,
    span: tracing::Span,
}

impl Flow {
    /// Loads a VITS checkpoint's flow (its `flow`).
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        Self::with_spec(&FlowSpec::vits(cfg), vb)
    }

    /// Loads `flows.{2i}` for each coupling layer of `spec`.
    pub fn with_spec(spec: &FlowSpec, vb: VarBuilder) -> Result<Self> {
        let couplings = (0..spec.couplings)
            .map(|i| ResidualCoupling::new(spec, vb.pp(format!("flows.{}", 2 * i))))
            .collect::<Result<_>>()?;
        Ok(Self {
            couplings,
            span: tracing::span!(tracing::Level::TRACE, "flow"),
        })
    }

    /// Maps the decoder's latent `z` `[b, channels, frames]` to the prior's
    /// space (`z_p`), conditioned on `g`.
    pub fn forward(&self, z: &Tensor, mask: Option<&Tensor>, g: Option<&Tensor>) -> Result<Tensor> {
        let _enter = self.span.enter();
        let mut x = z.clone();
        for coupling in &self.couplings {
            x = flip_channels(&coupling.forward(&x, mask, g)?)?;
        }
        Ok(x)
    }

    /// Maps `z_p` `[b, channels, frames]` to the decoder's latent `z`.
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
