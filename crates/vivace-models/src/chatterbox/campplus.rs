//! CAMPPlus (CAM++, 3D-Speaker), the speaker encoder of Chatterbox's
//! S3Gen: mean-normalized Kaldi filterbanks (`[frames, 80]`, 100 frames/s
//! at 16 kHz; `vivace_frontend::kaldi_fbank`) to a 192-wide x-vector.
//!
//! - a 2-D convolutional head (`FCM`): ResNet basic blocks that halve the
//!   frequency axis three times, 32 channels × 10 bands flattened to 320;
//! - a TDNN layer with stride 2 (50 frames/s);
//! - three densely connected blocks of context-aware masking layers (12,
//!   24 and 16 layers): each adds `growth` channels, gated by a sigmoid of
//!   the utterance mean plus 100-frame segment means;
//! - transit layers halving the channels after each block;
//! - mean and standard-deviation pooling over time and a dense layer.
//!
//! Batch norms run with their stored statistics (inference). Weights are
//! read under S3Gen's prefix `speaker_encoder.` as the reference saves them.

use std::path::Path;

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, VarBuilder};
use serde::Deserialize;

use crate::nn::checkpoint::Checkpoint;

/// Filterbank bands CAMPPlus reads.
pub const FEATURES: usize = 80;
/// Channels of the head's 2-D convolutions.
const HEAD_CHANNELS: usize = 32;
/// Layers, kernel and dilation of the three dense blocks.
const BLOCKS: [(usize, usize, usize); 3] = [(12, 3, 1), (24, 3, 2), (16, 3, 2)];
/// Frames per segment of the context pooling.
const SEGMENT: usize = 100;
const BN_EPS: f64 = 1e-5;

/// The sizes of a CAMPPlus network; [`CampPlusConfig::chatterbox`] is S3Gen's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampPlusConfig {
    /// Channels each dense layer adds.
    pub growth_rate: usize,
    /// Bottleneck width of a dense layer, in multiples of the growth rate.
    pub bn_size: usize,
    /// Channels out of the TDNN layer.
    pub init_channels: usize,
}

impl CampPlusConfig {
    /// S3Gen's speaker encoder.
    pub fn chatterbox() -> Self {
        Self {
            growth_rate: 32,
            bn_size: 4,
            init_channels: 128,
        }
    }
}

/// Width of the x-vector.
pub const EMBEDDING: usize = 192;

/// Batch norm in inference: `(x − mean) / √(var + ε) · γ + β` per channel
/// (axis 1), folded into one scale and shift.
#[derive(Debug, Clone)]
struct BatchNorm {
    scale: Tensor,
    shift: Tensor,
}

impl BatchNorm {
    fn new(channels: usize, affine: bool, vb: VarBuilder) -> Result<Self> {
        let mean = vb.get(channels, "running_mean")?;
        let var = vb.get(channels, "running_var")?;
        let inv = (var + BN_EPS)?.sqrt()?.recip()?;
        let (scale, shift) = match affine {
            true => {
                let gamma = vb.get(channels, "weight")?;
                let beta = vb.get(channels, "bias")?;
                let scale = (inv * gamma)?;
                let shift = (beta - (&mean * &scale)?)?;
                (scale, shift)
            }
            false => {
                let shift = (mean.neg()? * &inv)?;
                (inv, shift)
            }
        };
        Ok(Self { scale, shift })
    }

    /// `x` `[batch, channels, …]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut shape = vec![1, self.scale.dim(0)?];
        shape.extend(std::iter::repeat_n(1, x.rank() - 2));
        x.broadcast_mul(&self.scale.reshape(shape.as_slice())?)?
            .broadcast_add(&self.shift.reshape(shape.as_slice())?)
    }

    /// Batch norm then ReLU (`config_str = "batchnorm-relu"`).
    fn relu(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x)?.relu()
    }
}

/// A 3×3 convolution (padding 1, no bias) with stride 1 or `(2, 1)`
/// (frequency halved): candle's `conv2d` takes one stride for both axes, so
/// stride 2 on frequency keeps every other row of the stride-1 output.
#[derive(Debug, Clone)]
struct Conv3x3 {
    conv: Conv2d,
    halve: bool,
}

impl Conv3x3 {
    fn new(c_in: usize, c_out: usize, halve: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get((c_out, c_in, 3, 3), "weight")?;
        let cfg = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        Ok(Self {
            conv: Conv2d::new(weight, None, cfg),
            halve,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.conv.forward(x)?;
        match self.halve {
            true => every_other_row(&y),
            false => Ok(y),
        }
    }
}

/// Rows `0, 2, 4, …` of `[b, c, h, w]` along `h`.
fn every_other_row(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let kept = h.div_ceil(2);
    let padded = x.pad_with_zeros(2, 0, 2 * kept - h)?;
    padded
        .reshape((b, c, kept, 2, w))?
        .narrow(3, 0, 1)?
        .squeeze(3)
}

/// ResNet's basic block with an optional frequency-halving first conv.
#[derive(Debug, Clone)]
struct BasicBlock {
    conv1: Conv3x3,
    bn1: BatchNorm,
    conv2: Conv3x3,
    bn2: BatchNorm,
    shortcut: Option<(Conv2d, BatchNorm)>,
}

impl BasicBlock {
    fn new(halve: bool, vb: VarBuilder) -> Result<Self> {
        let c = HEAD_CHANNELS;
        let shortcut = match halve {
            true => {
                let w = vb.get((c, c, 1, 1), "shortcut.0.weight")?;
                Some((
                    Conv2d::new(w, None, Conv2dConfig::default()),
                    BatchNorm::new(c, true, vb.pp("shortcut.1"))?,
                ))
            }
            false => None,
        };
        Ok(Self {
            conv1: Conv3x3::new(c, c, halve, vb.pp("conv1"))?,
            bn1: BatchNorm::new(c, true, vb.pp("bn1"))?,
            conv2: Conv3x3::new(c, c, false, vb.pp("conv2"))?,
            bn2: BatchNorm::new(c, true, vb.pp("bn2"))?,
            shortcut,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out = self.bn1.relu(&self.conv1.forward(x)?)?;
        let out = self.bn2.forward(&self.conv2.forward(&out)?)?;
        let skip = match &self.shortcut {
            Some((conv, bn)) => bn.forward(&every_other_row(&conv.forward(x)?)?)?,
            None => x.clone(),
        };
        (out + skip)?.relu()
    }
}

/// A 1-D convolution without bias (`padding`, `stride`, `dilation`).
fn conv1d(
    c_in: usize,
    c_out: usize,
    kernel: usize,
    cfg: Conv1dConfig,
    bias: bool,
    vb: VarBuilder,
) -> Result<Conv1d> {
    let weight = vb.get((c_out, c_in, kernel), "weight")?;
    let bias = match bias {
        true => Some(vb.get(c_out, "bias")?),
        false => None,
    };
    Ok(Conv1d::new(weight, bias, cfg))
}

/// A dense layer: BN-ReLU, 1×1 bottleneck, BN-ReLU, then the
/// context-aware masked convolution.
#[derive(Debug, Clone)]
struct CamDenseLayer {
    norm1: BatchNorm,
    bottleneck: Conv1d,
    norm2: BatchNorm,
    local: Conv1d,
    context1: Conv1d,
    context2: Conv1d,
}

impl CamDenseLayer {
    fn new(
        c_in: usize,
        cfg: &CampPlusConfig,
        kernel: usize,
        dilation: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let bn = cfg.bn_size * cfg.growth_rate;
        let local = Conv1dConfig {
            padding: (kernel - 1) / 2 * dilation,
            dilation,
            ..Default::default()
        };
        let cam = vb.pp("cam_layer");
        Ok(Self {
            norm1: BatchNorm::new(c_in, true, vb.pp("nonlinear1.batchnorm"))?,
            bottleneck: conv1d(c_in, bn, 1, Default::default(), false, vb.pp("linear1"))?,
            norm2: BatchNorm::new(bn, true, vb.pp("nonlinear2.batchnorm"))?,
            local: conv1d(
                bn,
                cfg.growth_rate,
                kernel,
                local,
                false,
                cam.pp("linear_local"),
            )?,
            context1: conv1d(bn, bn / 2, 1, Default::default(), true, cam.pp("linear1"))?,
            context2: conv1d(
                bn / 2,
                cfg.growth_rate,
                1,
                Default::default(),
                true,
                cam.pp("linear2"),
            )?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bottleneck.forward(&self.norm1.relu(x)?)?;
        let h = self.norm2.relu(&h)?;
        let y = self.local.forward(&h)?;
        let context = h
            .mean_keepdim(D::Minus1)?
            .broadcast_add(&segment_means(&h)?)?;
        let context = self.context1.forward(&context)?.relu()?;
        let mask = candle_nn::ops::sigmoid(&self.context2.forward(&context)?)?;
        y * mask
    }
}

/// Each frame replaced by the mean of its 100-frame segment (the last
/// segment may be shorter and averages what it has), as
/// `avg_pool1d(ceil_mode=True)` expanded back.
fn segment_means(x: &Tensor) -> Result<Tensor> {
    let len = x.dim(D::Minus1)?;
    let mut parts = Vec::with_capacity(len.div_ceil(SEGMENT));
    let mut start = 0;
    while start < len {
        let n = SEGMENT.min(len - start);
        let mean = x.narrow(D::Minus1, start, n)?.mean_keepdim(D::Minus1)?;
        parts.push(mean.repeat((1, 1, n))?);
        start += n;
    }
    Tensor::cat(&parts, D::Minus1)
}

/// BN-ReLU then a 1×1 convolution without bias.
#[derive(Debug, Clone)]
struct Transit {
    norm: BatchNorm,
    conv: Conv1d,
}

/// The CAMPPlus network.
#[derive(Debug, Clone)]
pub struct CampPlus {
    head_conv1: Conv3x3,
    head_bn1: BatchNorm,
    head_blocks: Vec<BasicBlock>,
    head_conv2: Conv3x3,
    head_bn2: BatchNorm,
    tdnn: Conv1d,
    tdnn_norm: BatchNorm,
    blocks: Vec<(Vec<CamDenseLayer>, Transit)>,
    out_norm: BatchNorm,
    dense: Conv1d,
    dense_norm: BatchNorm,
}

impl CampPlus {
    /// Loads the speaker encoder of an S3Gen checkpoint (`s3gen.safetensors`,
    /// `s3gen.pt`: the tensors under `speaker_encoder.`), in f32. A file
    /// that does not fit is an error naming it and the first tensor.
    pub fn load(path: &Path, cfg: &CampPlusConfig, device: &Device) -> crate::Result<Self> {
        let what = "CAMPPlus speaker encoder";
        Checkpoint::build(
            path,
            None,
            "speaker_encoder",
            DType::F32,
            device,
            what,
            |vb| Self::new(cfg, vb),
        )
    }

    /// Loads the network from `vb` (the checkpoint's `speaker_encoder.`).
    pub fn new(cfg: &CampPlusConfig, vb: VarBuilder) -> Result<Self> {
        let head = vb.pp("head");
        let mut head_blocks = vec![];
        for layer in ["layer1", "layer2"] {
            head_blocks.push(BasicBlock::new(true, head.pp(format!("{layer}.0")))?);
            head_blocks.push(BasicBlock::new(false, head.pp(format!("{layer}.1")))?);
        }
        let xv = vb.pp("xvector");
        let head_out = HEAD_CHANNELS * (FEATURES / 8);
        let tdnn_cfg = Conv1dConfig {
            padding: 2,
            stride: 2,
            ..Default::default()
        };
        let mut channels = cfg.init_channels;
        let mut blocks = vec![];
        for (i, &(layers, kernel, dilation)) in BLOCKS.iter().enumerate() {
            let block = xv.pp(format!("block{}", i + 1));
            let dense = (0..layers)
                .map(|l| {
                    let c_in = channels + l * cfg.growth_rate;
                    CamDenseLayer::new(
                        c_in,
                        cfg,
                        kernel,
                        dilation,
                        block.pp(format!("tdnnd{}", l + 1)),
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            channels += layers * cfg.growth_rate;
            let transit = xv.pp(format!("transit{}", i + 1));
            let t = Transit {
                norm: BatchNorm::new(channels, true, transit.pp("nonlinear.batchnorm"))?,
                conv: conv1d(
                    channels,
                    channels / 2,
                    1,
                    Default::default(),
                    false,
                    transit.pp("linear"),
                )?,
            };
            channels /= 2;
            blocks.push((dense, t));
        }
        Ok(Self {
            head_conv1: Conv3x3::new(1, HEAD_CHANNELS, false, head.pp("conv1"))?,
            head_bn1: BatchNorm::new(HEAD_CHANNELS, true, head.pp("bn1"))?,
            head_blocks,
            head_conv2: Conv3x3::new(HEAD_CHANNELS, HEAD_CHANNELS, true, head.pp("conv2"))?,
            head_bn2: BatchNorm::new(HEAD_CHANNELS, true, head.pp("bn2"))?,
            tdnn: conv1d(
                head_out,
                cfg.init_channels,
                5,
                tdnn_cfg,
                false,
                xv.pp("tdnn.linear"),
            )?,
            tdnn_norm: BatchNorm::new(cfg.init_channels, true, xv.pp("tdnn.nonlinear.batchnorm"))?,
            blocks,
            out_norm: BatchNorm::new(channels, true, xv.pp("out_nonlinear.batchnorm"))?,
            dense: conv1d(
                2 * channels,
                EMBEDDING,
                1,
                Default::default(),
                false,
                xv.pp("dense.linear"),
            )?,
            dense_norm: BatchNorm::new(EMBEDDING, false, xv.pp("dense.nonlinear.batchnorm"))?,
        })
    }

    /// The head's output `[1, 320, frames]` for features `[frames, 80]`.
    pub fn head(&self, features: &Tensor) -> Result<Tensor> {
        let (frames, bands) = features.dims2()?;
        if bands != FEATURES {
            candle_core::bail!("CAMPPlus reads {FEATURES} filterbank bands, got {bands}");
        }
        let x = features.t()?.reshape((1, 1, FEATURES, frames))?;
        let mut x = self.head_bn1.relu(&self.head_conv1.forward(&x)?)?;
        for block in &self.head_blocks {
            x = block.forward(&x)?;
        }
        let x = self.head_bn2.relu(&self.head_conv2.forward(&x)?)?;
        let (b, c, h, w) = x.dims4()?;
        x.reshape((b, c * h, w))
    }

    /// The frame-level features before pooling, `[1, channels, frames / 2]`,
    /// and the TDNN layer's output on the way.
    fn frames(&self, features: &Tensor) -> Result<(Tensor, Tensor)> {
        let x = self.head(features)?;
        let tdnn = self.tdnn_norm.relu(&self.tdnn.forward(&x)?)?;
        let mut x = tdnn.clone();
        for (layers, transit) in &self.blocks {
            for layer in layers {
                let y = layer.forward(&x)?;
                x = Tensor::cat(&[&x, &y], 1)?;
            }
            x = transit.conv.forward(&transit.norm.relu(&x)?)?;
        }
        Ok((tdnn, self.out_norm.relu(&x)?))
    }

    /// Stage outputs for parity checks: the TDNN layer's and the
    /// frame-level features before pooling.
    pub fn stages(&self, features: &Tensor) -> Result<(Tensor, Tensor)> {
        self.frames(features)
    }

    /// The x-vector `[192]` of mean-normalized filterbanks `[frames, 80]`
    /// (at least 2 frames after the stride-2 TDNN, for a standard deviation).
    pub fn embed(&self, features: &Tensor) -> Result<Tensor> {
        let features = features.to_dtype(self.dense.weight().dtype())?;
        let (_, x) = self.frames(&features)?;
        let n = x.dim(D::Minus1)?;
        if n < 2 {
            candle_core::bail!("CAMPPlus needs at least 4 filterbank frames (0.07 s of audio)");
        }
        // Mean and unbiased standard deviation over time.
        let mean = x.mean_keepdim(D::Minus1)?;
        let var = (x.broadcast_sub(&mean)?.sqr()?.sum_keepdim(D::Minus1)? / (n - 1) as f64)?;
        let stats = Tensor::cat(&[&mean, &var.sqrt()?], 1)?;
        let y = self.dense_norm.forward(&self.dense.forward(&stats)?)?;
        y.flatten_all()?.to_dtype(DType::F32)
    }
}
