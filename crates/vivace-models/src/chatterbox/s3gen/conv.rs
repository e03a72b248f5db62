//! The stride-1 convolutions of S3Gen: causal, look-ahead and "same"
//! padded, each keeping its input's length. On the CPU in f32 they run the
//! fused kernel of [`crate::nn::cpu_conv`] (no im2col buffer, activation and
//! residual fused); elsewhere candle's `conv1d` on a padded copy.

use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

use crate::nn::cpu_conv::FusedConv;
use crate::nn::cpu_ops;

/// How a [`PaddedConv`] runs.
#[derive(Debug, Clone)]
enum Kernel {
    Fused(FusedConv),
    Candle { weight: Tensor, bias: Tensor },
}

/// A convolution with `left` zeros before its input and
/// `dilation · (kernel − 1) − left` after it.
#[derive(Debug, Clone)]
pub(super) struct PaddedConv {
    kernel: Kernel,
    dilation: usize,
    left: usize,
    right: usize,
}

impl PaddedConv {
    /// Loads `weight` `[c_out, c_in, kernel]` and `bias` from `vb`.
    fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        dilation: usize,
        left: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get((c_out, c_in, kernel), "weight")?;
        let bias = vb.get(c_out, "bias")?;
        let span = dilation * (kernel - 1);
        let kernel = match cpu_ops::applies_on(vb.device(), vb.dtype()) {
            true => Kernel::Fused(FusedConv::with_left_padding(
                &weight,
                Some(&bias),
                dilation,
                left,
            )?),
            false => Kernel::Candle { weight, bias },
        };
        Ok(Self {
            kernel,
            dilation,
            left,
            right: span - left,
        })
    }

    /// Sees only the past: `kernel − 1` zeros on the left.
    pub(super) fn causal(c_in: usize, c_out: usize, kernel: usize, vb: VarBuilder) -> Result<Self> {
        Self::new(c_in, c_out, kernel, 1, kernel - 1, vb)
    }

    /// Sees only the future: `kernel − 1` zeros on the right.
    pub(super) fn lookahead(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::new(c_in, c_out, kernel, 1, 0, vb)
    }

    /// Centred ("same" padding, an odd kernel).
    pub(super) fn same(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        dilation: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::new(
            c_in,
            c_out,
            kernel,
            dilation,
            dilation * (kernel - 1) / 2,
            vb,
        )
    }

    /// `residual + conv(leaky_relu(xs, slope))` for `xs` `[batch, c_in, len]`
    /// (`slope = 1`: no activation).
    pub(super) fn forward_act(
        &self,
        xs: &Tensor,
        slope: f64,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        match &self.kernel {
            Kernel::Fused(conv) if cpu_ops::applies_to(xs) => {
                conv.forward(xs, slope as f32, residual)
            }
            Kernel::Fused(_) => candle_core::bail!(
                "a CPU f32 convolution got a {:?} input on {:?}",
                xs.dtype(),
                xs.device()
            ),
            Kernel::Candle { weight, bias } => {
                let xs = match slope {
                    1.0 => xs.clone(),
                    s => candle_nn::ops::leaky_relu(xs, s)?,
                };
                let xs = xs.pad_with_zeros(D::Minus1, self.left, self.right)?;
                let ys = xs.conv1d(weight, 0, 1, self.dilation, 1)?;
                let ys = ys.broadcast_add(&bias.reshape((1, (), 1))?)?;
                match residual {
                    Some(r) => ys + r,
                    None => Ok(ys),
                }
            }
        }
    }

    /// The convolution of `xs` `[batch, c_in, len]`.
    pub(super) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_act(xs, 1.0, None)
    }
}
