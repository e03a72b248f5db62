//! A CPU kernel for the generator's convolutions: tiled im2col + GEMM, with
//! the leaky ReLU before the convolution fused into the gather and the bias
//! and residual add fused into the output.
//!
//! candle's `conv1d` builds the whole im2col matrix (`[length, c_in * k]`,
//! ~100 MB for the last HiFi-GAN stage of a 5-second sentence), and every
//! `leaky_relu`, `+` and `/` around it allocates and walks a full tensor. Here
//! each time tile's im2col block stays in cache, and the activation and the
//! residual cost nothing extra. Tiles run in parallel on rayon's pool, each
//! with a single-threaded GEMM (the `gemm` crate, which candle uses too).
//! Tested against candle's `conv1d` (see the tests below).

use candle_core::{DType, Device, Result, Storage, Tensor};
use rayon::prelude::*;

/// Output samples per tile: the im2col block is `c_in * k * TILE` floats
/// (at most 896 × 256 × 4 B ≈ 0.9 MB for joe-medium's first stage).
const TILE: usize = 256;

/// A 1-D convolution with "same" padding, prepared for [`FusedConv::forward`].
#[derive(Debug, Clone)]
pub struct FusedConv {
    /// `[c_out, c_in, k]`, read as the row-major matrix `[c_out, c_in * k]`;
    /// the same storage as the layer's candle weight (no copy).
    weight: Tensor,
    bias: Vec<f32>,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    dilation: usize,
}

/// A raw pointer that tiles may share: each tile writes a disjoint column range.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: tiles write disjoint ranges of the output; see `forward`.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer (a method, so closures capture the `Sync` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }
}

impl FusedConv {
    /// Takes the weights (`[c_out, c_in, k]`) and bias of a dense convolution.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>, dilation: usize) -> Result<Self> {
        let (c_out, c_in, kernel) = weight.dims3()?;
        let weight = weight.to_dtype(DType::F32)?.contiguous()?;
        let bias = match bias {
            Some(b) => b.to_dtype(DType::F32)?.to_vec1::<f32>()?,
            None => vec![0.0; c_out],
        };
        Ok(Self {
            weight,
            bias,
            c_in,
            c_out,
            kernel,
            dilation,
        })
    }

    /// Whether the kernel can run on `x` (f32 on the CPU); otherwise use candle's ops.
    pub fn applies_to(x: &Tensor) -> bool {
        matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32
    }

    /// `residual + conv(leaky_relu(x, slope))` for `x` `[b, c_in, len]`
    /// (`slope = 1` is no activation); the result is `[b, c_out, len]`.
    pub fn forward(&self, x: &Tensor, slope: f32, residual: Option<&Tensor>) -> Result<Tensor> {
        let (b, c_in, len) = x.dims3()?;
        if c_in != self.c_in {
            candle_core::bail!(
                "fused conv: {c_in} input channels, weights expect {}",
                self.c_in
            );
        }
        // The output starts as the residual (the bias is added per tile) or,
        // without one, as the bias itself: one pass over the output either way.
        let mut out = Vec::with_capacity(b * self.c_out * len);
        let add_bias = residual.is_some();
        match residual {
            Some(r) => {
                if r.dims3()? != (b, self.c_out, len) {
                    candle_core::bail!(
                        "fused conv: residual shape {:?} does not match the output",
                        r.dims()
                    );
                }
                with_cpu_slice(r, |r| out.extend_from_slice(r))?;
            }
            None => {
                for _ in 0..b {
                    for &bias in &self.bias {
                        out.extend(std::iter::repeat_n(bias, len));
                    }
                }
            }
        }
        with_cpu_slice(&self.weight, |w| {
            with_cpu_slice(x, |x| {
                for (item, ys) in out.chunks_mut(self.c_out * len).enumerate() {
                    let xs = &x[item * c_in * len..(item + 1) * c_in * len];
                    self.forward_item(w, xs, ys, len, slope, add_bias);
                }
            })
        })??;
        Tensor::from_vec(out, (b, self.c_out, len), &Device::Cpu)
    }

    /// One item: `ys [c_out, len] += W · im2col(act(xs))` (plus the bias when
    /// `add_bias`), tile by tile.
    fn forward_item(
        &self,
        weight: &[f32],
        xs: &[f32],
        ys: &mut [f32],
        len: usize,
        slope: f32,
        add_bias: bool,
    ) {
        let (c_in, c_out, k, d) = (self.c_in, self.c_out, self.kernel, self.dilation);
        let rows = c_in * k;
        let pad = d * (k - 1) / 2;
        let out = SharedOut(ys.as_mut_ptr());
        let tiles = len.div_ceil(TILE);
        (0..tiles).into_par_iter().for_each_init(
            || vec![0f32; rows * TILE],
            |cols, tile| {
                let t0 = tile * TILE;
                let n = TILE.min(len - t0);
                // Gather: cols[(c, j), t] = act(x[c, t0 + t + j*d - pad]), zero outside.
                for c in 0..c_in {
                    let src = &xs[c * len..(c + 1) * len];
                    for j in 0..k {
                        let row = &mut cols[(c * k + j) * TILE..(c * k + j) * TILE + n];
                        // Source index of row[t] is shift + t; split off the
                        // out-of-range ends so the middle is a tight loop.
                        let shift = (t0 + j * d) as isize - pad as isize;
                        let lo = (-shift).clamp(0, n as isize) as usize;
                        let hi = (len as isize - shift).clamp(lo as isize, n as isize) as usize;
                        row[..lo].fill(0.0);
                        row[hi..].fill(0.0);
                        if hi == lo {
                            continue; // the whole row reads past an end
                        }
                        let from = (shift + lo as isize) as usize;
                        let inner = &src[from..from + (hi - lo)];
                        if slope == 1.0 {
                            row[lo..hi].copy_from_slice(inner);
                        } else {
                            for (v, &x) in row[lo..hi].iter_mut().zip(inner) {
                                *v = x.max(0.0) + slope * x.min(0.0);
                            }
                        }
                    }
                }
                // SAFETY: this tile owns columns t0..t0+n of every output row;
                // no other tile touches them, and `ys` outlives the loop.
                let dst = unsafe { out.get().add(t0) };
                if add_bias {
                    for (o, &bias) in self.bias.iter().enumerate() {
                        // SAFETY: row o, columns t0..t0+n are inside `ys`.
                        let row = unsafe { std::slice::from_raw_parts_mut(dst.add(o * len), n) };
                        row.iter_mut().for_each(|v| *v += bias);
                    }
                }
                // SAFETY: the matrices are the live buffers above with the
                // strides given; dst += W (c_out × rows) · cols (rows × n).
                unsafe {
                    gemm::gemm(
                        c_out,
                        n,
                        rows,
                        dst,
                        1,
                        len as isize,
                        true,
                        weight.as_ptr(),
                        1,
                        rows as isize,
                        cols.as_ptr(),
                        1,
                        TILE as isize,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            },
        );
    }
}

/// WaveNet's gate, `tanh(a[:, :h]) * sigmoid(a[:, h:])` for `a` `[b, 2h, len]`,
/// in one pass over `a` (candle would make four tensors); f32 on the CPU,
/// candle's ops elsewhere.
pub fn gated_tanh_sigmoid(a: &Tensor, h: usize) -> Result<Tensor> {
    if !FusedConv::applies_to(a) {
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
                *d = x.tanh() / (1.0 + (-y).exp());
            }
        });
    })?;
    Tensor::from_vec(out, (b, h, len), &Device::Cpu)
}

/// Runs `f` on the f32 values of a CPU tensor in row-major order, borrowing
/// its storage when it is contiguous (no copy), else a contiguous copy.
fn with_cpu_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("fused conv: the tensor is not on the CPU");
    };
    let all = cpu.as_slice::<f32>()?;
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("fused conv: tensor is not contiguous".into()))?;
    Ok(f(&all[start..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.max_all()?.to_scalar::<f32>()
    }

    /// Against candle's `leaky_relu` + `conv1d` + add, over dilations, kernels,
    /// lengths that are and are not multiples of the tile, and a batch of two.
    #[test]
    fn gate_matches_candle() -> Result<()> {
        let a = Tensor::randn(0f32, 2.0, (2, 8, 37), &Device::Cpu)?;
        let want = (a.narrow(1, 0, 4)?.tanh()? * candle_nn::ops::sigmoid(&a.narrow(1, 4, 4)?)?)?;
        let got = gated_tanh_sigmoid(&a, 4)?;
        assert!(max_diff(&got, &want)? < 1e-6);
        Ok(())
    }

    #[test]
    fn matches_candle_conv1d() -> Result<()> {
        let dev = Device::Cpu;
        for &(c_in, c_out, k, d, len) in &[
            (8, 6, 3, 1, 100),
            (16, 16, 5, 2, 700),
            (4, 4, 7, 12, 300),
            (12, 1, 7, 1, 513),
            // Shorter than the padding: whole rows read past both ends.
            (4, 4, 7, 12, 20),
        ] {
            let w = Tensor::randn(0f32, 0.3, (c_out, c_in, k), &dev)?;
            let bias = Tensor::randn(0f32, 0.3, c_out, &dev)?;
            let x = Tensor::randn(0f32, 1.0, (2, c_in, len), &dev)?;
            let pad = d * (k - 1) / 2;
            let act = candle_nn::ops::leaky_relu(&x, 0.1)?;
            let want = act
                .conv1d(&w, pad, 1, d, 1)?
                .broadcast_add(&bias.reshape((1, c_out, 1))?)?;
            let conv = FusedConv::new(&w, Some(&bias), d)?;
            let got = conv.forward(&x, 0.1, None)?;
            assert!(
                max_diff(&got, &want)? < 1e-4,
                "{c_in}x{c_out} k{k} d{d} len{len}"
            );
            if c_in == c_out {
                let got = conv.forward(&x, 0.1, Some(&x))?;
                assert!(max_diff(&got, &(&want + &x)?)? < 1e-4);
            }
            let plain = conv.forward(&x, 1.0, None)?;
            let want = x
                .conv1d(&w, pad, 1, d, 1)?
                .broadcast_add(&bias.reshape((1, c_out, 1))?)?;
            assert!(max_diff(&plain, &want)? < 1e-4);
        }
        Ok(())
    }
}
