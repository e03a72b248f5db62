//! The HiFi-GAN generator: the flow's latent frames → waveform.
//!
//! Mirrors `Generator`, `ResBlock1` and `ResBlock2` of
//! [VITS](https://github.com/jaywalnut310/vits/blob/main/models.py) (from
//! [HiFi-GAN](https://arxiv.org/abs/2010.05646)), with weight norm already
//! folded into the weights. Difference: transposed convolutions run unpadded
//! and are trimmed (same result, faster on candle's CPU backend).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{Conv, ConvSpec, TrimmedConvTranspose1d};
use super::{ResBlockKind, VitsConfig};

/// Slope of the leaky ReLUs inside the generator (`LRELU_SLOPE` in VITS).
const LRELU_SLOPE: f64 = 0.1;
/// Slope of the last leaky ReLU, before `conv_post` (PyTorch's default).
const FINAL_LRELU_SLOPE: f64 = 0.01;

/// A multi-receptive-field residual block: `convs1`/`convs2` pairs (type 1)
/// or single `convs` (type 2), each preceded by a leaky ReLU.
#[derive(Debug, Clone)]
struct ResBlock {
    /// Per residual step: the dilated convolution, and for type 1 the second one.
    steps: Vec<(Conv, Option<Conv>)>,
}

impl ResBlock {
    fn new(
        kind: ResBlockKind,
        channels: usize,
        kernel: usize,
        dilations: &[usize],
        vb: VarBuilder,
    ) -> Result<Self> {
        let spec = ConvSpec::new(channels, channels, kernel);
        let steps = dilations
            .iter()
            .enumerate()
            .map(|(i, &d)| match kind {
                ResBlockKind::One => Ok((
                    spec.dilation(d).load(vb.pp(format!("convs1.{i}")))?,
                    Some(spec.load(vb.pp(format!("convs2.{i}")))?),
                )),
                ResBlockKind::Two => {
                    Ok((spec.dilation(d).load(vb.pp(format!("convs.{i}")))?, None))
                }
            })
            .collect::<Result<_>>()?;
        Ok(Self { steps })
    }
}

impl Module for ResBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for (c1, c2) in &self.steps {
            x = match c2 {
                None => c1.forward_act(&x, LRELU_SLOPE, Some(&x))?,
                Some(c2) => {
                    let xt = c1.forward_act(&x, LRELU_SLOPE, None)?;
                    c2.forward_act(&xt, LRELU_SLOPE, Some(&x))?
                }
            };
        }
        Ok(x)
    }
}

/// The HiFi-GAN generator (the checkpoint's `dec`).
#[derive(Debug, Clone)]
pub struct Generator {
    conv_pre: Conv,
    cond: Option<Conv>,
    ups: Vec<TrimmedConvTranspose1d>,
    /// `resblock_kernel_sizes.len()` blocks per upsampling stage.
    resblocks: Vec<Vec<ResBlock>>,
    conv_post: Conv,
    span: tracing::Span,
}

impl Generator {
    /// Loads `conv_pre`, `ups.*`, `resblocks.*`, `conv_post` and `cond`.
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let c0 = cfg.upsample_initial_channel;
        let conv_pre = ConvSpec::new(cfg.flow_size, c0, 7).load(vb.pp("conv_pre"))?;
        let cond = match cfg.num_speakers > 1 {
            true => Some(ConvSpec::new(cfg.speaker_embedding_size, c0, 1).load(vb.pp("cond"))?),
            false => None,
        };
        let mut ups = Vec::new();
        let mut resblocks = Vec::new();
        let mut channels = c0;
        let kinds = cfg
            .resblock_kernel_sizes
            .iter()
            .zip(&cfg.resblock_dilation_sizes);
        for (i, (&rate, &kernel)) in cfg
            .upsample_rates
            .iter()
            .zip(&cfg.upsample_kernel_sizes)
            .enumerate()
        {
            let out = channels / 2;
            ups.push(TrimmedConvTranspose1d::new(
                channels,
                out,
                kernel,
                rate,
                (kernel - rate) / 2,
                vb.pp(format!("ups.{i}")),
            )?);
            let stage = kinds
                .clone()
                .enumerate()
                .map(|(j, (&k, d))| {
                    let index = i * cfg.resblock_kernel_sizes.len() + j;
                    ResBlock::new(cfg.resblock, out, k, d, vb.pp(format!("resblocks.{index}")))
                })
                .collect::<Result<_>>()?;
            resblocks.push(stage);
            channels = out;
        }
        let conv_post = ConvSpec::new(channels, 1, 7)
            .no_bias()
            .load(vb.pp("conv_post"))?;
        Ok(Self {
            conv_pre,
            cond,
            ups,
            resblocks,
            conv_post,
            span: tracing::span!(tracing::Level::TRACE, "hifigan"),
        })
    }

    /// Decodes `z` `[1, flow_size, frames]` into a waveform `[1, 1, samples]` in `[-1, 1]`.
    pub fn forward(&self, z: &Tensor, g: Option<&Tensor>) -> Result<Tensor> {
        let _enter = self.span.enter();
        let mut x = self.conv_pre.forward(z)?;
        if let (Some(cond), Some(g)) = (&self.cond, g) {
            x = x.broadcast_add(&cond.forward(g)?)?;
        }
        for (up, blocks) in self.ups.iter().zip(&self.resblocks) {
            x = up.forward_act(&x, LRELU_SLOPE)?;
            let mut sum: Option<Tensor> = None;
            for block in blocks {
                let y = block.forward(&x)?;
                sum = Some(match sum {
                    Some(s) => (s + y)?,
                    None => y,
                });
            }
            if let Some(sum) = sum {
                x = (sum / blocks.len() as f64)?;
            }
        }
        self.conv_post
            .forward_act(&x, FINAL_LRELU_SLOPE, None)?
            .tanh()
    }
}
