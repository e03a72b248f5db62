//! Elementwise CPU kernels that replace chains of candle ops: WaveNet's gate
//! and the channel-wise layer norm, each one pass over its input (candle
//! makes a new tensor per op), with an exponential the compiler vectorizes
//! (libm's `tanhf`/`expf` are scalar calls).

use candle_core::{Device, Result, Storage, Tensor};
use rayon::prelude::*;

/// Whether Vivace's CPU kernels (these and `cpu_conv`'s) run for weights or
/// activations of `dtype` on `device`: f32 on the CPU; otherwise candle's
/// ops run. The one rule every layer and report uses.
pub fn applies_on(device: &Device, dtype: candle_core::DType) -> bool {
    device.is_cpu() && dtype == candle_core::DType::F32
}

/// [`applies_on`] for the tensor `x`.
pub fn applies_to(x: &Tensor) -> bool {
    applies_on(x.device(), x.dtype())
}

/// Runs `f` on the f32 values of a CPU tensor in row-major order, borrowing
/// its storage when it is contiguous (no copy), else a contiguous copy.
pub(crate) fn with_cpu_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("CPU kernel: the tensor is not on the CPU");
    };
    let all = cpu.as_slice::<f32>()?;
    let (start, end) = layout.contiguous_offsets().ok_or_else(|| {
        candle_core::Error::Msg("CPU kernel: the tensor is not contiguous".into())
    })?;
    Ok(f(&all[start..end]))
}

/// `e^x` in f32, branch-free so loops over it vectorize: Cody–Waite range
/// reduction to `r ∈ [-ln2/2, ln2/2]`, a degree-6 Taylor polynomial
/// (truncation below 3e-8 relative) and the exponent set directly.
/// Saturates to 0 below −87 and to `e^88` above 88.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5 · 2^23 rounds to the nearest integer (ties
    // to even) with plain float adds: `f32::round` is a libm call on the
    // baseline x86-64 target, which kept these loops scalar.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2^n through the exponent bits; n ∈ [-126, 127] after the clamp.
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `tanh(x)`, as `1 − 2 / (e^{2x} + 1)`: absolute error about 1e-7.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// The logistic sigmoid `1 / (1 + e^{−x})`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// WaveNet's gate, `tanh(a[:, :h]) * sigmoid(a[:, h:])` for `a` `[b, 2h, len]`,
/// in one pass over `a`; f32 on the CPU, candle's ops elsewhere.
pub fn gated_tanh_sigmoid(a: &Tensor, h: usize) -> Result<Tensor> {
    if !applies_to(a) {
        return a.narrow(1, 0, h)?.tanh()? * candle_nn::ops::sigmoid(&a.narrow(1, h, h)?)?;
    }
    let (b, two_h, len) = a.dims3()?;
    if two_h != 2 * h {
        candle_core::bail!("gate: {two_h} channels, expected {}", 2 * h);
    }
    let mut out = vec![0f32; b * h * len];
    with_cpu_slice(a, |a| {
        out.par_chunks_mut(len).enumerate().for_each(|(row, dst)| {
            let (item, c) = (row / h, row % h);
            let base = item * two_h * len;
            let t = &a[base + c * len..base + (c + 1) * len];
            let s = &a[base + (h + c) * len..base + (h + c + 1) * len];
            for ((d, &x), &y) in dst.iter_mut().zip(t).zip(s) {
                *d = tanh(x) * sigmoid(y);
            }
        });
    })?;
    Tensor::from_vec(out, (b, h, len), &Device::Cpu)
}

/// Layer norm over the channel axis of `x` `[b, c, len]` (VITS
/// `modules.LayerNorm`): each time step normalized over its `c` channels,
/// then scaled by `gamma` and shifted by `beta` (both length `c`). Mean and
/// variance are accumulated channel by channel, so every pass reads rows
/// contiguously.
pub fn channel_norm(x: &Tensor, gamma: &[f32], beta: &[f32], eps: f32) -> Result<Tensor> {
    let (b, c, len) = x.dims3()?;
    if gamma.len() != c || beta.len() != c {
        candle_core::bail!("channel norm: {c} channels, parameters for {}", gamma.len());
    }
    let mut out = vec![0f32; b * c * len];
    with_cpu_slice(x, |x| {
        let mut mean = vec![0f32; len];
        let mut scale = vec![0f32; len];
        for (xs, ys) in x.chunks(c * len).zip(out.chunks_mut(c * len)) {
            mean.fill(0.0);
            for row in xs.chunks(len) {
                mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v);
            }
            mean.iter_mut().for_each(|m| *m /= c as f32);
            scale.fill(0.0);
            for row in xs.chunks(len) {
                for ((s, &m), &v) in scale.iter_mut().zip(&mean).zip(row) {
                    *s += (v - m) * (v - m);
                }
            }
            scale
                .iter_mut()
                .for_each(|s| *s = 1.0 / (*s / c as f32 + eps).sqrt());
            for (ch, (row, dst)) in xs.chunks(len).zip(ys.chunks_mut(len)).enumerate() {
                let (g, bt) = (gamma[ch], beta[ch]);
                for (((d, &v), &m), &s) in dst.iter_mut().zip(row).zip(&mean).zip(&scale) {
                    *d = (v - m) * s * g + bt;
                }
            }
        }
    })?;
    Tensor::from_vec(out, (b, c, len), &Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.max_all()?.to_scalar::<f32>()
    }

    /// Against the standard library over the whole useful range.
    #[test]
    fn exp_tanh_sigmoid_match_libm() {
        let mut worst = (0f32, 0f32, 0f32);
        for i in -20_000..=20_000 {
            let x = i as f32 / 1000.0; // -20 ..= 20
            worst.0 = worst.0.max((exp(x) - x.exp()).abs() / x.exp());
            worst.1 = worst.1.max((tanh(x) - x.tanh()).abs());
            worst.2 = worst.2.max((sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs());
        }
        assert!(worst.0 < 5e-7, "exp relative error {}", worst.0);
        assert!(worst.1 < 3e-7, "tanh absolute error {}", worst.1);
        assert!(worst.2 < 3e-7, "sigmoid absolute error {}", worst.2);
        // Saturation: tiny and huge arguments stay finite.
        assert!((0.0..1e-37).contains(&exp(-200.0)));
        assert!(exp(200.0).is_finite() && tanh(200.0) == 1.0 && tanh(-200.0) == -1.0);
    }

    #[test]
    fn gate_matches_candle() -> Result<()> {
        let a = Tensor::randn(0f32, 2.0, (2, 8, 37), &Device::Cpu)?;
        let want = (a.narrow(1, 0, 4)?.tanh()? * candle_nn::ops::sigmoid(&a.narrow(1, 4, 4)?)?)?;
        let got = gated_tanh_sigmoid(&a, 4)?;
        assert!(max_diff(&got, &want)? < 1e-6);
        Ok(())
    }

    /// Against the same layer norm written with candle's ops.
    #[test]
    fn channel_norm_matches_candle() -> Result<()> {
        let dev = Device::Cpu;
        let (b, c, len) = (2, 6, 29);
        let x = (Tensor::randn(0f32, 3.0, (b, c, len), &dev)? + 1.5)?;
        let gamma = Tensor::randn(0f32, 1.0, c, &dev)?;
        let beta = Tensor::randn(0f32, 1.0, c, &dev)?;
        let mean = x.mean_keepdim(1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(1)?;
        let want = centred
            .broadcast_div(&(var + 1e-5)?.sqrt()?)?
            .broadcast_mul(&gamma.reshape((1, c, 1))?)?
            .broadcast_add(&beta.reshape((1, c, 1))?)?;
        let got = channel_norm(&x, &gamma.to_vec1()?, &beta.to_vec1()?, 1e-5)?;
        assert!(max_diff(&got, &want)? < 1e-5);
        Ok(())
    }
}
