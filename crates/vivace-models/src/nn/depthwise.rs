//! Depth-wise 1-D convolutions (`groups = channels`, "same" padding) on any
//! device.
//!
//! candle runs a grouped `conv1d` as one convolution per group: for the
//! VITS duration predictor's 192 channels that is 192 kernel launches per
//! layer and about 2,300 per synthesis, and S3Tokenizer's FSMN memory makes
//! 1,280 per block. [`Depthwise`] instead uses the fused CPU kernel
//! ([`DepthwiseConv`]) where it applies ([`cpu_ops::applies_on`]) and
//! elsewhere [`DepthwiseTaps`]: the input padded once, then one multiply
//! and one add per tap over the whole tensor (about `2k + 5` kernels a
//! layer, the padding's included, whatever the channel count).

use candle_core::{Result, Tensor};

use super::cpu_conv::{check_depthwise_channels, depthwise_dims, DepthwiseConv};
use super::cpu_ops;

/// A depth-wise convolution as element-wise ops that every candle device
/// runs: `y = bias + Σ_j w_j · x_pad[.., j·d .. j·d + len]`, with `w_j` the
/// `[1, channels, 1]` column of tap `j` and `x_pad` the input with
/// `d · (k − 1) / 2` zeros on each side.
#[derive(Debug, Clone)]
pub struct DepthwiseTaps {
    /// One `[1, channels, 1]` weight per tap, on the weights' device and dtype.
    taps: Vec<Tensor>,
    /// `[1, channels, 1]`.
    bias: Option<Tensor>,
    channels: usize,
    dilation: usize,
}

impl DepthwiseTaps {
    /// Takes the weights (`[channels, 1, k]`), bias and dilation; the ops
    /// run on the weights' device in their dtype.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>, dilation: usize) -> Result<Self> {
        let (channels, kernel) = depthwise_dims(weight, dilation)?;
        let taps = (0..kernel)
            .map(|j| weight.narrow(2, j, 1)?.reshape((1, channels, 1)))
            .collect::<Result<Vec<_>>>()?;
        let bias = bias.map(|b| b.reshape((1, channels, 1))).transpose()?;
        Ok(Self {
            taps,
            bias,
            channels,
            dilation,
        })
    }

    /// `conv(x)` for `x` `[b, channels, len]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, c, len) = x.dims3()?;
        check_depthwise_channels(c, self.channels)?;
        let pad = self.dilation * (self.taps.len() - 1) / 2;
        let padded = x.pad_with_zeros(2, pad, pad)?;
        let tap = |j: usize| {
            padded
                .narrow(2, j * self.dilation, len)?
                .broadcast_mul(&self.taps[j])
        };
        // `depthwise_dims` refused an even kernel: there is at least one tap.
        let mut y = tap(0)?;
        for j in 1..self.taps.len() {
            y = (y + tap(j)?)?;
        }
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// A depth-wise convolution with the kernel for where its weights live: the
/// fused CPU kernel for f32 on the CPU, [`DepthwiseTaps`] elsewhere.
#[derive(Debug, Clone)]
pub enum Depthwise {
    /// f32 on the CPU.
    Cpu(DepthwiseConv),
    /// Any other device or dtype.
    Taps(DepthwiseTaps),
}

impl Depthwise {
    /// Takes the weights (`[channels, 1, k]`), bias and dilation and picks
    /// the kernel by [`cpu_ops::applies_on`] for the weights' device and dtype.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>, dilation: usize) -> Result<Self> {
        match cpu_ops::applies_on(weight.device(), weight.dtype()) {
            true => Ok(Self::Cpu(DepthwiseConv::new(weight, bias, dilation)?)),
            false => Ok(Self::Taps(DepthwiseTaps::new(weight, bias, dilation)?)),
        }
    }

    /// `conv(x)` for `x` `[b, channels, len]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Cpu(conv) => conv.forward(x),
            Self::Taps(conv) => conv.forward(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
    }

    /// The taps against the fused CPU kernel (itself tested against candle's
    /// grouped `conv1d`), with and without bias, over kernels, dilations and
    /// inputs shorter than the padding, in a batch of two.
    #[test]
    fn taps_match_the_cpu_kernel() -> Result<()> {
        let dev = Device::Cpu;
        for &(c, k, d, len, with_bias) in &[
            (6, 3, 1, 40, true),
            (192, 3, 9, 57, true),
            (3, 5, 2, 4, false),
            (4, 3, 9, 5, true),
            (2, 3, 9, 1, true),
            (5, 31, 1, 50, false),
        ] {
            let w = Tensor::randn(0f32, 0.5, (c, 1, k), &dev)?;
            let bias = Tensor::randn(0f32, 0.5, c, &dev)?;
            let bias = with_bias.then_some(&bias);
            let x = Tensor::randn(0f32, 1.0, (2, c, len), &dev)?;
            let want = DepthwiseConv::new(&w, bias, d)?.forward(&x)?;
            let got = DepthwiseTaps::new(&w, bias, d)?.forward(&x)?;
            assert_eq!(got.dims(), want.dims());
            assert!(
                max_diff(&got, &want)? < 1e-5,
                "c{c} k{k} d{d} len{len} bias {with_bias}"
            );
        }
        Ok(())
    }

    /// In f64 (a dtype the CPU kernel does not take) `Depthwise` picks the
    /// taps and still computes the convolution.
    #[test]
    fn other_dtypes_take_the_taps() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 0.5, (4, 1, 3), &dev)?;
        let x = Tensor::randn(0f32, 1.0, (1, 4, 20), &dev)?;
        let want = DepthwiseConv::new(&w, None, 2)?.forward(&x)?;
        let conv = Depthwise::new(&w.to_dtype(DType::F64)?, None, 2)?;
        assert!(matches!(conv, Depthwise::Taps(_)));
        let got = conv
            .forward(&x.to_dtype(DType::F64)?)?
            .to_dtype(DType::F32)?;
        assert!(max_diff(&got, &want)? < 1e-5);
        Ok(())
    }

    #[test]
    fn bad_shapes_are_errors() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::zeros((4, 2, 3), DType::F32, &dev)?;
        assert!(DepthwiseTaps::new(&w, None, 1).is_err(), "[c, 2, k] weight");
        let w = Tensor::zeros((4, 1, 4), DType::F32, &dev)?;
        assert!(DepthwiseTaps::new(&w, None, 1).is_err(), "even kernel");
        let w = Tensor::zeros((4, 1, 3), DType::F32, &dev)?;
        let taps = DepthwiseTaps::new(&w, None, 1)?;
        let x = Tensor::zeros((1, 5, 10), DType::F32, &dev)?;
        let err = taps.forward(&x).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("5 channels, weights expect 4"), "{err}");
        Ok(())
    }
}
