//! Duration predictors: how many spectrogram frames each phoneme lasts.
//!
//! Mirrors `StochasticDurationPredictor` (run in reverse, as at inference),
//! `DurationPredictor`, `DDSConv`, `ConvFlow` and `ElementwiseAffine` of
//! [VITS](https://github.com/jaywalnut310/vits/blob/main/models.py).
//! Difference: the stochastic predictor's spline runs on the host in f32
//! (a few values per token), the rest on the model's device. Padded batches
//! carry a mask `[batch, 1, tokens]`; a single utterance skips it.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::spline;
use super::VitsConfig;
use crate::nn::layers::{flip_channels, masked, ChannelNorm, Conv, ConvSpec};
use crate::nn::sampling::{gaussian, SeededSource};

/// Dilated depth-separable convolutions with GELU (VITS `DDSConv`); the
/// kernel's dilation grows as `kernel^layer`.
#[derive(Debug, Clone)]
struct DdsConv {
    convs_sep: Vec<Conv>,
    convs_1x1: Vec<Conv>,
    norms_1: Vec<ChannelNorm>,
    norms_2: Vec<ChannelNorm>,
}

impl DdsConv {
    fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let c = cfg.duration_predictor_filter_channels;
        let k = cfg.duration_predictor_kernel_size;
        let eps = cfg.layer_norm_eps;
        let mut layers = Self {
            convs_sep: vec![],
            convs_1x1: vec![],
            norms_1: vec![],
            norms_2: vec![],
        };
        for i in 0..cfg.depth_separable_num_layers {
            let dilation = k.pow(i as u32);
            let sep = ConvSpec::new(c, c, k).dilation(dilation).groups(c);
            layers
                .convs_sep
                .push(sep.load(vb.pp(format!("convs_sep.{i}")))?);
            layers
                .convs_1x1
                .push(ConvSpec::new(c, c, 1).load(vb.pp(format!("convs_1x1.{i}")))?);
            layers
                .norms_1
                .push(ChannelNorm::new(c, eps, vb.pp(format!("norms_1.{i}")))?);
            layers
                .norms_2
                .push(ChannelNorm::new(c, eps, vb.pp(format!("norms_2.{i}")))?);
        }
        Ok(layers)
    }

    /// `x + g` run through the residual stack.
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>, g: Option<&Tensor>) -> Result<Tensor> {
        let mut x = match g {
            Some(g) => (x + g)?,
            None => x.clone(),
        };
        for i in 0..self.convs_sep.len() {
            let y = self.convs_sep[i].forward(&masked(&x, mask)?)?;
            let y = self.norms_1[i].forward(&y)?;
            let y = self.convs_1x1[i].forward(&y.gelu_erf()?)?;
            let y = self.norms_2[i].forward(&y)?.gelu_erf()?;
            x = (x + y)?;
        }
        masked(&x, mask)
    }
}

/// A coupling flow whose transform of the second half is a rational-quadratic
/// spline conditioned on the first half (VITS `ConvFlow`).
#[derive(Debug, Clone)]
struct ConvFlow {
    pre: Conv,
    convs: DdsConv,
    proj: Conv,
    bins: usize,
    tail_bound: f32,
    param_scale: f32,
}

impl ConvFlow {
    fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let c = cfg.duration_predictor_filter_channels;
        let bins = cfg.duration_predictor_flow_bins;
        Ok(Self {
            pre: ConvSpec::new(1, c, 1).load(vb.pp("pre"))?,
            convs: DdsConv::new(cfg, vb.pp("convs"))?,
            proj: ConvSpec::new(c, 3 * bins - 1, 1).load(vb.pp("proj"))?,
            bins,
            tail_bound: cfg.duration_predictor_tail_bound as f32,
            param_scale: 1.0 / (c as f32).sqrt(),
        })
    }

    /// Inverts the flow on `z` `[b, 2, t]` conditioned on `g` `[b, filter, t]`.
    fn reverse(&self, z: &Tensor, mask: Option<&Tensor>, g: &Tensor) -> Result<Tensor> {
        let (b, _, t) = z.dims3()?;
        let x0 = z.narrow(1, 0, 1)?;
        let x1 = z.narrow(1, 1, 1)?;
        let h = self.pre.forward(&x0)?;
        let h = masked(
            &self.proj.forward(&self.convs.forward(&h, mask, Some(g))?)?,
            mask,
        )?;
        // Host side: per (item, token), 3 * bins - 1 parameters and one spline.
        let h = h.to_dtype(DType::F32)?.transpose(1, 2)?.to_vec3::<f32>()?;
        let x1v = x1.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let n = 2 * self.bins;
        let out: Vec<f32> = x1v
            .iter()
            .zip(h.into_iter().flatten())
            .map(|(&y, mut p)| {
                p[..n].iter_mut().for_each(|v| *v *= self.param_scale);
                spline::inverse(y, &p, self.bins, self.tail_bound)
            })
            .collect();
        let x1 = Tensor::from_vec(out, (b, 1, t), z.device())?.to_dtype(z.dtype())?;
        masked(&Tensor::cat(&[&x0, &x1], 1)?, mask)
    }
}

/// The VITS stochastic duration predictor, inverted: noise → log-durations.
#[derive(Debug, Clone)]
pub struct StochasticDurationPredictor {
    pre: Conv,
    convs: DdsConv,
    proj: Conv,
    cond: Option<Conv>,
    /// `ElementwiseAffine` of `flows.0`: `m` and `exp(-logs)`, `[1, 2, 1]`.
    affine_m: Tensor,
    affine_inv_scale: Tensor,
    /// `flows.3`, `flows.5`, …: `flows.1` is skipped at inference, as in VITS.
    conv_flows: Vec<ConvFlow>,
}

impl StochasticDurationPredictor {
    /// Loads `pre`, `convs`, `proj`, `cond` and `flows.*` (the checkpoint's `dp`).
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let c = cfg.duration_predictor_filter_channels;
        let h = cfg.hidden_size;
        let cond = match cfg.num_speakers > 1 {
            true => Some(ConvSpec::new(cfg.speaker_embedding_size, c, 1).load(vb.pp("cond"))?),
            false => None,
        };
        let affine = vb.pp("flows.0");
        let affine_m = affine.get((2, 1), "m")?.reshape((1, 2, 1))?;
        let affine_inv_scale = affine
            .get((2, 1), "logs")?
            .neg()?
            .exp()?
            .reshape((1, 2, 1))?;
        let conv_flows = (1..cfg.duration_predictor_num_flows)
            .map(|j| ConvFlow::new(cfg, vb.pp(format!("flows.{}", 2 * j + 1))))
            .collect::<Result<_>>()?;
        Ok(Self {
            pre: ConvSpec::new(h, c, 1).load(vb.pp("pre"))?,
            convs: DdsConv::new(cfg, vb.pp("convs"))?,
            proj: ConvSpec::new(c, c, 1).load(vb.pp("proj"))?,
            cond,
            affine_m,
            affine_inv_scale,
            conv_flows,
        })
    }

    /// Log-durations `[b, 1, t]` for encoder states `x` `[b, hidden, t]`, from
    /// noise scaled per item by `noise_scale` (`[b, 1, 1]`; `None` gives the
    /// deterministic result) and drawn from the items' `seeds` (see [`noise`]).
    pub fn forward(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        g: Option<&Tensor>,
        noise_scale: Option<&Tensor>,
        seeds: &[Option<u64>],
    ) -> Result<Tensor> {
        let mut x = self.pre.forward(x)?;
        if let (Some(cond), Some(g)) = (&self.cond, g) {
            x = x.broadcast_add(&cond.forward(g)?)?;
        }
        let cond = masked(
            &self.proj.forward(&self.convs.forward(&x, mask, None)?)?,
            mask,
        )?;
        let (b, _, t) = x.dims3()?;
        let mut z = noise(
            (b, 2, t),
            noise_scale,
            seeds,
            NoiseStage::Durations,
            x.dtype(),
            x.device(),
        )?;
        for flow in self.conv_flows.iter().rev() {
            z = flow.reverse(&flip_channels(&z)?, mask, &cond)?;
        }
        z = flip_channels(&z)?;
        z = z
            .broadcast_sub(&self.affine_m)?
            .broadcast_mul(&self.affine_inv_scale)?;
        masked(&z.narrow(1, 0, 1)?, mask)
    }
}

/// The deterministic duration predictor of VITS (`use_sdp=False`): two
/// conv-ReLU-norm blocks and a projection to one log-duration per token.
#[derive(Debug, Clone)]
pub struct DurationPredictor {
    conv_1: Conv,
    norm_1: ChannelNorm,
    conv_2: Conv,
    norm_2: ChannelNorm,
    proj: Conv,
    cond: Option<Conv>,
}

impl DurationPredictor {
    /// Loads `conv_1`, `norm_1`, `conv_2`, `norm_2`, `proj`, `cond` (the checkpoint's `dp`).
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let (h, c, k) = (
            cfg.hidden_size,
            cfg.duration_predictor_filter_channels,
            cfg.duration_predictor_kernel_size,
        );
        let eps = cfg.layer_norm_eps;
        Ok(Self {
            conv_1: ConvSpec::new(h, c, k).load(vb.pp("conv_1"))?,
            norm_1: ChannelNorm::new(c, eps, vb.pp("norm_1"))?,
            conv_2: ConvSpec::new(c, c, k).load(vb.pp("conv_2"))?,
            norm_2: ChannelNorm::new(c, eps, vb.pp("norm_2"))?,
            proj: ConvSpec::new(c, 1, 1).load(vb.pp("proj"))?,
            cond: match cfg.num_speakers > 1 {
                true => Some(ConvSpec::new(cfg.speaker_embedding_size, h, 1).load(vb.pp("cond"))?),
                false => None,
            },
        })
    }

    /// Log-durations `[b, 1, t]` for encoder states `x` `[b, hidden, t]`.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>, g: Option<&Tensor>) -> Result<Tensor> {
        let x = match (&self.cond, g) {
            (Some(cond), Some(g)) => x.broadcast_add(&cond.forward(g)?)?,
            _ => x.clone(),
        };
        let x = self.conv_1.forward(&masked(&x, mask)?)?.relu()?;
        let x = self.norm_1.forward(&x)?;
        let x = self.conv_2.forward(&masked(&x, mask)?)?.relu()?;
        let x = self.norm_2.forward(&x)?;
        masked(&self.proj.forward(&masked(&x, mask)?)?, mask)
    }
}

/// Either duration predictor, as the checkpoint has it.
#[derive(Debug, Clone)]
pub enum Durations {
    /// `use_stochastic_duration_prediction = true` (most Piper and MMS voices).
    Stochastic(StochasticDurationPredictor),
    /// The plain convolutional predictor.
    Deterministic(DurationPredictor),
}

impl Durations {
    /// Loads the predictor `cfg` names from `vb`.
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        Ok(if cfg.use_stochastic_duration_prediction {
            Self::Stochastic(StochasticDurationPredictor::new(cfg, vb)?)
        } else {
            Self::Deterministic(DurationPredictor::new(cfg, vb)?)
        })
    }

    /// Log-durations `[b, 1, t]`; `noise_scale` is per item (`[b, 1, 1]`),
    /// and so are `seeds` (see [`noise`]).
    pub fn forward(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        g: Option<&Tensor>,
        noise_scale: Option<&Tensor>,
        seeds: &[Option<u64>],
    ) -> Result<Tensor> {
        match self {
            Self::Stochastic(p) => p.forward(x, mask, g, noise_scale, seeds),
            Self::Deterministic(p) => p.forward(x, mask, g),
        }
    }
}

/// Which of the two noises of a synthesis: each seeded item draws its own
/// stream for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseStage {
    /// The stochastic duration predictor's noise.
    Durations = 1,
    /// The prior's noise before the flow.
    Prior = 2,
}

/// Gaussian noise of `shape` `[b, c, t]` times a per-item `scale`
/// (`[b, 1, 1]`); exact zeros without a scale, so noise-free synthesis is
/// deterministic and matches the reference.
///
/// When any item has a seed in `seeds`, the noise is drawn on the host: each
/// item's channel `j` is its own stream (item seed, `stage`, `j`), read
/// from position 0, so an item gets the same values alone or padded in a
/// batch, on any device. Unseeded items of such a batch draw a fresh seed.
/// Without seeds, candle's generator draws on the device.
pub fn noise(
    shape: (usize, usize, usize),
    scale: Option<&Tensor>,
    seeds: &[Option<u64>],
    stage: NoiseStage,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let Some(scale) = scale else {
        return Tensor::zeros(shape, dtype, device);
    };
    let unit = if seeds.iter().any(Option::is_some) {
        seeded_gaussian(shape, seeds, stage)?.to_device(device)?
    } else {
        Tensor::randn(0f32, 1f32, shape, device)?
    };
    unit.to_dtype(dtype)?.broadcast_mul(scale)
}

/// Standard normal values `[b, c, t]` on the CPU, one stream per item and
/// channel (Box–Muller over [`SeededSource`]).
fn seeded_gaussian(
    (b, c, t): (usize, usize, usize),
    seeds: &[Option<u64>],
    stage: NoiseStage,
) -> Result<Tensor> {
    let mut values = Vec::with_capacity(b * c * t);
    for item in 0..b {
        let seed = seeds
            .get(item)
            .copied()
            .flatten()
            .unwrap_or_else(crate::nn::sampling::fresh_seed);
        for channel in 0..c {
            let stream = seed
                ^ (stage as u64).wrapping_mul(0xA076_1D64_78BD_642F)
                ^ (channel as u64).wrapping_mul(0xE703_7ED1_A0B4_28DB);
            values.extend(gaussian(&mut SeededSource::new(stream), t));
        }
    }
    Tensor::from_vec(values, (b, c, t), &Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(shape: (usize, usize, usize), seeds: &[Option<u64>], stage: NoiseStage) -> Vec<f32> {
        let scale = Tensor::ones((shape.0, 1, 1), DType::F32, &Device::Cpu).expect("scale");
        noise(shape, Some(&scale), seeds, stage, DType::F32, &Device::Cpu)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .expect("noise")
    }

    #[test]
    fn seeded_noise_is_reproducible_per_item_and_independent_of_padding() {
        let short = draw((1, 2, 5), &[Some(3)], NoiseStage::Prior);
        assert_eq!(short, draw((1, 2, 5), &[Some(3)], NoiseStage::Prior));
        // Padded to 9 beside another item: each channel starts the same.
        let padded = draw((2, 2, 9), &[Some(42), Some(3)], NoiseStage::Prior);
        let item = &padded[18..];
        assert_eq!(&item[..5], &short[..5]);
        assert_eq!(&item[9..14], &short[5..]);
        // Other seeds and the other stage draw other values.
        assert_ne!(short, draw((1, 2, 5), &[Some(4)], NoiseStage::Prior));
        assert_ne!(short, draw((1, 2, 5), &[Some(3)], NoiseStage::Durations));
        // Roughly standard normal.
        let many = draw((1, 1, 20_000), &[Some(1)], NoiseStage::Prior);
        let mean = many.iter().sum::<f32>() / many.len() as f32;
        let var = many.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / many.len() as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        // No scale: exact zeros.
        let zeros = noise(
            (1, 2, 3),
            None,
            &[Some(1)],
            NoiseStage::Prior,
            DType::F32,
            &Device::Cpu,
        )
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .expect("zeros");
        assert!(zeros.iter().all(|&v| v == 0.0));
    }
}
