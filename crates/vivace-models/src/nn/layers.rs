//! Small building blocks shared by the VITS stages: loading convolutions,
//! channel-wise layer norm, the channel flip of the flows.

use candle_core::{Module, Result, Tensor, D};

use super::cpu_conv::{check_same_padding, FusedConv, FusedConvTranspose};
use super::cpu_gemm_int8::Lanes;
use super::cpu_ops;
use super::depthwise::Depthwise;
use candle_nn::{Conv1d, Conv1dConfig, ConvTranspose1d, ConvTranspose1dConfig, VarBuilder};

/// Hyper-parameters of one 1-D convolution as the checkpoint defines it.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel width.
    pub kernel: usize,
    /// Dilation.
    pub dilation: usize,
    /// Groups (`in_channels` for a depth-wise convolution).
    pub groups: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl ConvSpec {
    /// A dense convolution with bias and "same" padding semantics.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            dilation: 1,
            groups: 1,
            bias: true,
        }
    }

    /// The same convolution with dilation `d`.
    pub fn dilation(self, dilation: usize) -> Self {
        Self { dilation, ..self }
    }

    /// The same convolution split into `groups` groups.
    pub fn groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }

    /// The same convolution without bias.
    pub fn no_bias(self) -> Self {
        Self {
            bias: false,
            ..self
        }
    }

    /// Loads the layer from `vb` (`weight`, `bias`) with "same" padding
    /// (`dilation * (kernel - 1) / 2` on each side), as every VITS convolution uses.
    pub fn load(self, vb: VarBuilder) -> Result<Conv> {
        check_same_padding(self.kernel, self.dilation)?;
        if self.groups == 0
            || !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            candle_core::bail!(
                "convolution of {} to {} channels in {} groups: the groups must divide both",
                self.in_channels,
                self.out_channels,
                self.groups
            );
        }
        let weight = vb.get(
            (
                self.out_channels,
                self.in_channels / self.groups,
                self.kernel,
            ),
            "weight",
        )?;
        let bias = if self.bias {
            Some(vb.get(self.out_channels, "bias")?)
        } else {
            None
        };
        let on_cpu = cpu_ops::applies_on(vb.device(), vb.dtype());
        let depthwise = self.groups == self.in_channels && self.groups == self.out_channels;
        let kernel = match (on_cpu, self.groups) {
            (true, 1) => ConvKernel::Dense(FusedConv::new(&weight, bias.as_ref(), self.dilation)?),
            (_, g) if g > 1 && depthwise => {
                ConvKernel::Depthwise(Depthwise::new(&weight, bias.as_ref(), self.dilation)?)
            }
            _ => {
                let cfg = Conv1dConfig {
                    padding: self.dilation * (self.kernel - 1) / 2,
                    dilation: self.dilation,
                    groups: self.groups,
                    ..Default::default()
                };
                ConvKernel::Candle(Conv1d::new(weight, bias, cfg))
            }
        };
        Ok(Conv { kernel })
    }
}

/// What runs a [`Conv`]: a kernel of [`super::cpu_conv`] for f32 weights on
/// the CPU (which keep only their packed copy), [`Depthwise`] for any
/// depth-wise one, candle's `conv1d` for the rest.
#[derive(Debug, Clone)]
enum ConvKernel {
    /// `groups = 1` on the CPU: tiled im2col + GEMM with fused activation and residual.
    Dense(FusedConv),
    /// `groups = channels`, on any device ([`Depthwise`]: the CPU kernel or
    /// the device-generic taps).
    Depthwise(Depthwise),
    /// Any other device, dtype or grouping.
    Candle(Conv1d),
}

/// A 1-D convolution that can take a leaky ReLU on its input and a residual
/// added to its output (fused on the CPU).
#[derive(Debug, Clone)]
pub struct Conv {
    kernel: ConvKernel,
}

impl Conv {
    /// `residual + conv(leaky_relu(x, slope))`; `slope = 1` applies no activation.
    pub fn forward_act(&self, x: &Tensor, slope: f64, residual: Option<&Tensor>) -> Result<Tensor> {
        let y = match &self.kernel {
            ConvKernel::Dense(fused) => return fused.forward(x, slope as f32, residual),
            ConvKernel::Depthwise(fused) if slope == 1.0 => fused.forward(x)?,
            ConvKernel::Depthwise(fused) => {
                fused.forward(&candle_nn::ops::leaky_relu(x, slope)?)?
            }
            ConvKernel::Candle(conv) if slope == 1.0 => conv.forward(x)?,
            ConvKernel::Candle(conv) => conv.forward(&candle_nn::ops::leaky_relu(x, slope)?)?,
        };
        match residual {
            Some(r) => y + r,
            None => Ok(y),
        }
    }
}

impl Conv {
    /// The CPU's dense kernel, where this convolution runs on it (to run
    /// several convolutions together: [`super::cpu_mrf`]).
    pub(crate) fn fused(&self) -> Option<&FusedConv> {
        match &self.kernel {
            ConvKernel::Dense(fused) => Some(fused),
            _ => None,
        }
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_act(x, 1.0, None)
    }
}

impl Conv {
    /// Runs a dense CPU convolution on integer weights and per-tile
    /// integer inputs in `lanes` ([`FusedConv::quantized`]) and reports
    /// whether it did: other kernels (candle's, depth-wise) stay as they are.
    pub fn quantize(&mut self, lanes: Lanes) -> bool {
        match &mut self.kernel {
            ConvKernel::Dense(fused) => {
                *fused = fused.quantized(lanes);
                true
            }
            _ => false,
        }
    }
}

/// A transposed convolution, PyTorch's `ConvTranspose1d(padding=p)`.
///
/// On the CPU in f32 the phase-split kernel of [`super::cpu_conv`]; elsewhere
/// candle's, run without padding and trimmed (candle's CPU kernel only takes
/// its fast path at padding 0; dropping `p` samples at each end is the same
/// result).
#[derive(Debug, Clone)]
pub struct TrimmedConvTranspose1d {
    inner: ConvTranspose1d,
    fused: Option<FusedConvTranspose>,
    trim: usize,
}

impl TrimmedConvTranspose1d {
    /// Loads `weight` `[in, out, kernel]` and `bias` from `vb`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get((in_channels, out_channels, kernel), "weight")?;
        let bias = vb.get(out_channels, "bias")?;
        let fused = match cpu_ops::applies_on(vb.device(), vb.dtype()) {
            true => Some(FusedConvTranspose::new(
                &weight,
                Some(&bias),
                stride,
                padding,
            )?),
            false => None,
        };
        let cfg = ConvTranspose1dConfig {
            stride,
            ..Default::default()
        };
        Ok(Self {
            inner: ConvTranspose1d::new(weight, Some(bias), cfg),
            fused,
            trim: padding,
        })
    }

    /// `conv_transpose(leaky_relu(x, slope))`; `slope = 1` applies no activation.
    pub fn forward_act(&self, xs: &Tensor, slope: f64) -> Result<Tensor> {
        match (&self.fused, cpu_ops::applies_to(xs)) {
            (Some(fused), true) => fused.forward(xs, slope as f32),
            _ if slope == 1.0 => self.unfused(xs),
            _ => self.unfused(&candle_nn::ops::leaky_relu(xs, slope)?),
        }
    }

    /// Runs the CPU kernel on integer weights and per-tile integer inputs
    /// in `lanes` ([`FusedConvTranspose::quantized`]) and reports whether
    /// it did (not on another device or dtype).
    pub fn quantize(&mut self, lanes: Lanes) -> bool {
        match &mut self.fused {
            Some(fused) => {
                *fused = fused.quantized(lanes);
                true
            }
            None => false,
        }
    }

    /// candle's transposed convolution, unpadded, then trimmed.
    fn unfused(&self, xs: &Tensor) -> Result<Tensor> {
        // candle 0.11.1's CPU fast path (col2im) is wrong for every batch item
        // after the first (regression test below): run items one at a time.
        let batch = xs.dim(0)?;
        let ys = if batch == 1 {
            self.inner.forward(xs)?
        } else {
            let items = (0..batch)
                .map(|i| self.inner.forward(&xs.narrow(0, i, 1)?))
                .collect::<Result<Vec<_>>>()?;
            Tensor::cat(&items, 0)?
        };
        let len = ys.dim(D::Minus1)?;
        ys.narrow(D::Minus1, self.trim, len - 2 * self.trim)
    }
}

impl Module for TrimmedConvTranspose1d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_act(xs, 1.0)
    }
}

/// Layer norm over the channel axis of a `[batch, channels, time]` tensor
/// (VITS `modules.LayerNorm`, parameters `gamma` and `beta`); one fused pass
/// on the CPU in f32 ([`cpu_ops::channel_norm`]), candle's ops elsewhere.
#[derive(Debug, Clone)]
pub struct ChannelNorm {
    gamma: Tensor,
    beta: Tensor,
    /// `gamma` and `beta` on the host, for the CPU kernel.
    host: Option<(Vec<f32>, Vec<f32>)>,
    eps: f64,
}

impl ChannelNorm {
    /// Loads `gamma` and `beta` of size `channels`.
    pub fn new(channels: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let gamma = vb.get(channels, "gamma")?;
        let beta = vb.get(channels, "beta")?;
        let host = match cpu_ops::applies_on(vb.device(), vb.dtype()) {
            true => Some((gamma.to_vec1::<f32>()?, beta.to_vec1::<f32>()?)),
            false => None,
        };
        Ok(Self {
            gamma: gamma.reshape((1, channels, 1))?,
            beta: beta.reshape((1, channels, 1))?,
            host,
            eps,
        })
    }
}

impl Module for ChannelNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if let (Some((gamma, beta)), true) = (&self.host, cpu_ops::applies_to(xs)) {
            return cpu_ops::channel_norm(xs, gamma, beta, self.eps as f32);
        }
        let mean = xs.mean_keepdim(1)?;
        let centred = xs.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(1)?;
        centred
            .broadcast_div(&(var + self.eps)?.sqrt()?)?
            .broadcast_mul(&self.gamma)?
            .broadcast_add(&self.beta)
    }
}

/// Reverses the channel axis (the `Flip` flow of VITS).
pub fn flip_channels(xs: &Tensor) -> Result<Tensor> {
    xs.flip(&[1])
}

/// `xs * mask` for a batch of different lengths (`mask` `[batch, 1, time]`,
/// 1 on real positions, 0 on padding); `xs` itself when there is no padding.
pub fn masked(xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    match mask {
        Some(m) => xs.broadcast_mul(m),
        None => Ok(xs.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    /// A depth-wise `Conv` loaded in a dtype the CPU kernel does not take
    /// (what a GPU or a reduced-precision load gets) runs the device-generic
    /// taps, not candle's per-channel `conv1d`, and computes the same
    /// convolution as the CPU kernel does in f32.
    #[test]
    fn depthwise_convs_off_the_cpu_kernel_take_the_taps() -> Result<()> {
        let dev = Device::Cpu;
        let (c, k, d) = (6, 3, 3);
        let mut weights = HashMap::new();
        weights.insert(
            "weight".to_string(),
            Tensor::randn(0f32, 0.5, (c, 1, k), &dev)?,
        );
        weights.insert("bias".to_string(), Tensor::randn(0f32, 0.5, c, &dev)?);
        let spec = ConvSpec::new(c, c, k).dilation(d).groups(c);
        let f32_conv = spec.load(VarBuilder::from_tensors(weights.clone(), DType::F32, &dev))?;
        let f64_conv = spec.load(VarBuilder::from_tensors(weights, DType::F64, &dev))?;
        assert!(matches!(
            f32_conv.kernel,
            ConvKernel::Depthwise(Depthwise::Cpu(_))
        ));
        assert!(matches!(
            f64_conv.kernel,
            ConvKernel::Depthwise(Depthwise::Taps(_))
        ));
        let x = Tensor::randn(0f32, 1., (2, c, 30), &dev)?;
        let want = f32_conv.forward_act(&x, 0.1, Some(&x))?;
        let got = f64_conv
            .forward_act(
                &x.to_dtype(DType::F64)?,
                0.1,
                Some(&x.to_dtype(DType::F64)?),
            )?
            .to_dtype(DType::F32)?;
        let diff = (got - want)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-5, "{diff}");
        Ok(())
    }

    /// Regression: candle 0.11.1's `conv_transpose1d` at padding 0 returns
    /// wrong values for batch items after the first (found when batching
    /// VITS: the second utterance of a batch came out as noise). Each batched
    /// path is checked against the other implementation item by item: candle
    /// with the workaround (`unfused`) against the CPU kernel, and the CPU
    /// kernel's batch against candle at batch 1 (where candle is right).
    #[test]
    fn batched_transposed_convolution_equals_per_item() -> Result<()> {
        let dev = Device::Cpu;
        let mut weights = HashMap::new();
        weights.insert(
            "weight".to_string(),
            Tensor::randn(0f32, 1., (8, 4, 16), &dev)?,
        );
        weights.insert("bias".to_string(), Tensor::randn(0f32, 1., 4, &dev)?);
        let vb = VarBuilder::from_tensors(weights, DType::F32, &dev);
        let up = TrimmedConvTranspose1d::new(8, 4, 16, 8, 4, vb)?;
        assert!(up.fused.is_some(), "the CPU kernel is loaded on the CPU");
        let xs = Tensor::randn(0f32, 1., (3, 8, 20), &dev)?;
        let unfused = up.unfused(&xs)?;
        let fused = up.forward_act(&xs, 1.0)?;
        for batched in [&unfused, &fused] {
            assert_eq!(batched.dims(), &[3, 4, 160]);
        }
        for i in 0..3 {
            let item = xs.narrow(0, i, 1)?;
            for (batched, alone) in [
                (&unfused, up.forward_act(&item, 1.0)?),
                (&fused, up.unfused(&item)?),
            ] {
                let diff = (batched.narrow(0, i, 1)? - alone)?
                    .abs()?
                    .max_all()?
                    .to_scalar::<f32>()?;
                assert!(diff < 1e-5, "item {i}: max difference {diff}");
            }
        }
        Ok(())
    }
}
