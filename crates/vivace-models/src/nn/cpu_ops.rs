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

/// Runs `f` compiled for the widest vectors this CPU has: AVX-512, else
/// AVX2 with FMA, else the build's baseline (SSE2 on x86-64). The loops of
/// `f` (inlined into the dispatch target) then vectorize 16 or 8 lanes wide
/// instead of 4; a crate built for the baseline target never uses the wider
/// registers otherwise.
#[inline(always)]
pub fn with_wide_vectors<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if super::cpu_gemm::has_avx512() {
            // SAFETY: AVX-512F was detected on this CPU.
            return unsafe { run_avx512(f) };
        }
        if super::cpu_kernel::avx2() {
            // SAFETY: AVX2 and FMA were detected on this CPU.
            return unsafe { run_avx2(f) };
        }
    }
    f()
}

/// `f()` compiled with AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `f()` compiled with AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// The first index of the largest value (torch's and numpy's `argmax`).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (k, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = k;
        }
    }
    best
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
    // 2^n through the exponent bits; n ∈ [-126, 127] after the clamp, so
    // n + 127 ∈ [1, 254]. `ROUND + n + 127` holds that integer in its low
    // mantissa bits (exactly), and shifting left by 23 moves them into the
    // exponent field: no float-to-int conversion, which Rust's saturating
    // `as` would turn into a scalar call per lane.
    let biased = (n + 127.0 + ROUND).to_bits();
    p * f32::from_bits(biased << 23)
}

/// `sin(x)` in f32, branch-free so loops over it vectorize: `x = k·π + r`
/// with a three-part π (Cody–Waite), `|r| ≤ π/2`, then a degree-11 odd
/// Taylor polynomial (truncation under 6e-8) and the sign of `(−1)^k`.
/// Accurate to a few 1e-7 for `|x|` up to about 1e5.
#[inline(always)]
pub fn sin(x: f32) -> f32 {
    const PI_A: f32 = 3.140_625;
    const PI_B: f32 = 9.670_257_6e-4;
    const PI_C: f32 = 6.278_329_4e-7;
    const ROUND: f32 = 12_582_912.0;
    let k = (x * std::f32::consts::FRAC_1_PI + ROUND) - ROUND;
    let r = ((x - k * PI_A) - k * PI_B) - k * PI_C;
    let r2 = r * r;
    let p = r
        * (1.0
            + r2 * (-1.0 / 6.0
                + r2 * (1.0 / 120.0
                    + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362_880.0 - r2 / 39_916_800.0)))));
    // The parity of k in the lowest mantissa bit of ROUND + k.
    let odd = (k + ROUND).to_bits() << 31;
    f32::from_bits(p.to_bits() ^ odd)
}

/// Snake, `x + sin²(α·x) / (α + 1e-9)` with one `α` per channel of `x`
/// `[b, c, len]`, in one pass on the CPU in f32; candle's ops elsewhere.
pub fn snake(x: &Tensor, alpha: &Tensor) -> Result<Tensor> {
    if !applies_to(x) {
        let a = alpha.reshape((1, (), 1))?;
        let s = x.broadcast_mul(&a)?.sin()?.sqr()?;
        return x + s.broadcast_div(&(a + 1e-9)?)?;
    }
    let (b, c, len) = x.dims3()?;
    let alpha: Vec<f32> = alpha.to_dtype(candle_core::DType::F32)?.to_vec1()?;
    if alpha.len() != c {
        candle_core::bail!("snake: {c} channels, {} alphas", alpha.len());
    }
    let mut out = vec![0f32; b * c * len];
    with_cpu_slice(x, |src| {
        out.par_chunks_mut(len)
            .zip(src.par_chunks(len))
            .enumerate()
            .for_each(|(row, (d, s))| {
                let a = alpha[row % c];
                let inv = 1.0 / (a + 1e-9);
                snake_row(d, s, a, inv);
            });
    })?;
    Tensor::from_vec(out, (b, c, len), &Device::Cpu)
}

/// One row of [`snake`], compiled for the widest vectors the CPU has.
fn snake_row(dst: &mut [f32], src: &[f32], a: f32, inv: f32) {
    with_wide_vectors(
        #[inline(always)]
        || {
            for (d, &v) in dst.iter_mut().zip(src) {
                let s = sin(a * v);
                *d = v + s * s * inv;
            }
        },
    )
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

/// `erf(x)` by Abramowitz & Stegun 7.1.26 (absolute error under 1.5e-7 in
/// exact arithmetic, 5e-7 in f32),
/// branch-free on the sign so loops over it vectorize.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// Applies `f` to every element of `x` (f32 on the CPU), rows in parallel.
#[inline(always)]
fn map_cpu(x: &Tensor, f: impl Fn(f32) -> f32 + Sync) -> Result<Tensor> {
    let mut out = vec![0f32; x.elem_count()];
    with_cpu_slice(x, |src| {
        out.par_chunks_mut(4096)
            .zip(src.par_chunks(4096))
            .for_each(|(d, s)| {
                with_wide_vectors(
                    #[inline(always)]
                    || d.iter_mut().zip(s).for_each(|(d, &s)| *d = f(s)),
                )
            });
    })?;
    Tensor::from_vec(out, x.shape(), &Device::Cpu)
}

/// GELU with the exact erf (PyTorch's default `nn.GELU()`), one pass on the
/// CPU in f32 (libm's `erff` is a scalar call), candle's op elsewhere.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    match applies_to(x) {
        true => map_cpu(x, |v| {
            0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2))
        }),
        false => x.gelu_erf(),
    }
}

/// GELU with the tanh approximation (GPT-2's `gelu_new`,
/// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`), one pass on the CPU in
/// f32 (libm's `tanhf` is a scalar call), candle's op elsewhere.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    match applies_to(x) {
        true => map_cpu(x, |v| {
            const SQRT_2_OVER_PI: f32 = 0.797_884_6;
            0.5 * v * (1.0 + tanh(SQRT_2_OVER_PI * (v + 0.044_715 * v * v * v)))
        }),
        false => x.gelu(),
    }
}

/// SwiGLU's gate, `silu(a[.., :h]) · a[.., h:]` for `a` `[.., 2h]`, in one
/// pass over `a` on the CPU in f32 (candle's `silu` calls libm's `expf` per
/// value), candle's ops elsewhere.
pub fn swiglu(a: &Tensor, h: usize) -> Result<Tensor> {
    let dims = a.dims().to_vec();
    let Some((&width, lead)) = dims.split_last() else {
        candle_core::bail!("swiglu: a scalar input");
    };
    if width != 2 * h {
        candle_core::bail!("swiglu: last dimension {width}, expected {}", 2 * h);
    }
    if !applies_to(a) {
        let d = a.rank() - 1;
        return candle_nn::ops::silu(&a.narrow(d, 0, h)?)? * a.narrow(d, h, h)?;
    }
    let rows: usize = lead.iter().product();
    let mut out = vec![0f32; rows * h];
    with_cpu_slice(a, |src| {
        out.par_chunks_mut(h)
            .zip(src.par_chunks(2 * h))
            .for_each(|(d, s)| {
                let (gate, up) = s.split_at(h);
                with_wide_vectors(
                    #[inline(always)]
                    || {
                        for ((d, &g), &u) in d.iter_mut().zip(gate).zip(up) {
                            *d = g * sigmoid(g) * u;
                        }
                    },
                )
            });
    })?;
    let mut shape = lead.to_vec();
    shape.push(h);
    Tensor::from_vec(out, shape, &Device::Cpu)
}

/// Mish, `x · tanh(softplus(x))` with PyTorch's softplus (`x` itself above
/// 20), one pass on the CPU in f32, candle's ops elsewhere.
pub fn mish(x: &Tensor) -> Result<Tensor> {
    if applies_to(x) {
        return map_cpu(x, |v| {
            let softplus = if v > 20.0 { v } else { (1.0 + exp(v)).ln() };
            v * tanh(softplus)
        });
    }
    let big = x.ge(20.0)?;
    let soft = (x.exp()? + 1.0)?.log()?;
    x * big.where_cond(x, &soft)?.tanh()?
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
    #[test]
    fn swiglu_matches_candles_ops() -> Result<()> {
        let a = Tensor::randn(0f32, 2.0, (3, 5, 2 * 37), &Device::Cpu)?;
        let got: Vec<f32> = swiglu(&a, 37)?.flatten_all()?.to_vec1()?;
        let want: Vec<f32> = (candle_nn::ops::silu(&a.narrow(2, 0, 37)?)?
            * a.narrow(2, 37, 37)?)?
        .flatten_all()?
        .to_vec1()?;
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5 * w.abs().max(1.0), "{g} vs {w}");
        }
        assert!(swiglu(&a, 36).is_err());
        Ok(())
    }

    #[test]
    fn gelu_tanh_matches_candles_on_the_cpu() -> Result<()> {
        let x = Tensor::arange(-400i64, 400, &Device::Cpu)?
            .to_dtype(candle_core::DType::F32)?
            .affine(0.02, 0.0)?;
        let got: Vec<f32> = gelu_tanh(&x)?.to_vec1()?;
        let want: Vec<f32> = x.gelu()?.to_vec1()?;
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 2e-6 * w.abs().max(1.0), "{g} vs {w}");
        }
        Ok(())
    }

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

    /// GELU and Mish against candle's ops (which use libm) over a wide range,
    /// Mish's softplus threshold included.
    #[test]
    fn gelu_and_mish_match_candle() -> Result<()> {
        let x = Tensor::arange(-3000f32, 3000f32, &Device::Cpu)?.affine(0.01, 0.0)?;
        assert!(max_diff(&gelu_erf(&x)?, &x.gelu_erf()?)? < 1e-6);
        let softplus = (x.exp()? + 1.0)?.log()?;
        let want = (&x * softplus.tanh()?)?;
        let got = mish(&x)?;
        // Above 20 PyTorch's softplus is x itself: equal to the float here.
        assert!(max_diff(&got, &want)? < 1e-5);
        let mut worst = 0f32;
        for i in -6000..=6000 {
            let v = i as f32 / 1000.0;
            worst = worst.max((erf(v) - libm_erf(v)).abs());
        }
        assert!(worst < 1e-6, "erf absolute error {worst}");
        Ok(())
    }

    /// erf by its Taylor series (exact to f64 rounding for |x| ≤ 6 after
    /// enough terms), the reference for [`erf`].
    fn libm_erf(x: f32) -> f32 {
        let x = x as f64;
        if x.abs() > 4.0 {
            return x.signum() as f32;
        }
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        (sum * 2.0 / std::f64::consts::PI.sqrt()) as f32
    }

    /// sin against libm over ±1000 (the arguments Snake sees), and Snake
    /// against candle's ops.
    #[test]
    fn sin_and_snake_match_libm() -> Result<()> {
        let mut worst = 0f32;
        for i in -1_000_000..=1_000_000 {
            let x = i as f32 / 1000.0;
            worst = worst.max((sin(x) - x.sin()).abs());
        }
        assert!(worst < 5e-7, "sin absolute error {worst}");
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 3.0, (2, 5, 301), &dev)?;
        let alpha = (Tensor::randn(0f32, 0.5, 5, &dev)? + 1.0)?;
        let a = alpha.reshape((1, 5, 1))?;
        let want = (&x
            + x.broadcast_mul(&a)?
                .sin()?
                .sqr()?
                .broadcast_div(&(a + 1e-9)?)?)?;
        assert!(max_diff(&snake(&x, &alpha)?, &want)? < 1e-5);
        Ok(())
    }
}
