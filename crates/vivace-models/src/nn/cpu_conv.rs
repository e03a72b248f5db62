//! CPU kernels for the generator's convolutions, each tested against
//! candle's op (see the tests below):
//!
//! - [`FusedConv`]: dense convolutions as `W · windows` with the weights packed
//!   once ([`super::cpu_gemm`]); the leaky ReLU before the convolution is
//!   applied while each input window is read, with no im2col copy (the GEMM
//!   reads each tap's rows through pointers into the activated window), and
//!   the bias and residual add go into the output;
//! - [`FusedConvTranspose`]: the upsamplers, split by output phase into
//!   ordinary convolutions over the input;
//! - [`DepthwiseConv`]: one filter per channel (the duration predictor's
//!   depth-separable layers), instead of candle's one conv per channel.
//!
//! candle's `conv1d` builds the whole im2col matrix (`[length, c_in * k]`,
//! ~100 MB for the last HiFi-GAN stage of a 5-second sentence), and every
//! `leaky_relu`, `+` and `/` around it allocates and walks a full tensor.
//! Time tiles run in parallel on rayon's pool.

use candle_core::{DType, Device, Result, Tensor};
use rayon::prelude::*;

use super::cpu_gemm::{Init, PackedMatrix};
use super::cpu_gemm_int8::{ByteScale, QuantizedMatrix};
use super::cpu_ops::with_cpu_slice;

/// Output samples per tile for `c_in` input channels and `len` samples: a
/// multiple of the GEMM kernel's 64-step block, with an activated input
/// window of at most about 256 KiB (a quarter of the L2 of the machine
/// measured), and at least one tile per thread, balanced, so a short input
/// (a few hundred frames) keeps every core busy.
fn tile_len(c_in: usize, len: usize) -> usize {
    const BLOCK_FLOATS: usize = 65_536;
    const STEP: usize = 64;
    let max = (BLOCK_FLOATS / c_in.max(1) / STEP * STEP).clamp(STEP, 4096);
    let threads = rayon::current_num_threads().max(1);
    let tiles = len.div_ceil(max).div_ceil(threads) * threads;
    (len.div_ceil(tiles).div_ceil(STEP) * STEP).min(max)
}

/// A convolution's weights as its GEMM takes them: f32 (the default), or
/// signed bytes for `--precision int8` ([`super::cpu_gemm_int8`]), whose
/// inputs are then quantized per time tile.
#[derive(Debug, Clone)]
enum Weights {
    F32(PackedMatrix),
    Int8(QuantizedMatrix),
}

/// A 1-D convolution that keeps its input's length, prepared for
/// [`FusedConv::forward`]: "same" padding, or any split of the
/// `dilation · (kernel − 1)` padded zeros between the two ends (causal
/// convolutions pad only the left).
#[derive(Debug, Clone)]
pub struct FusedConv {
    /// `[c_out, c_in, k]` as the matrix `[c_out, c_in * k]`, packed for the kernel.
    weight: Weights,
    bias: Vec<f32>,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    dilation: usize,
    /// Zeros before the input (the rest of `dilation · (kernel − 1)` after it).
    left_pad: usize,
}

/// Checks that a convolution with "same" padding (`dilation · (kernel − 1) / 2`
/// on each side, as VITS pads) keeps its input length: an odd kernel and a
/// dilation of at least 1. A checkpoint with anything else is refused at load.
pub fn check_same_padding(kernel: usize, dilation: usize) -> Result<()> {
    if kernel.is_multiple_of(2) || dilation == 0 {
        candle_core::bail!(
            "convolution with kernel size {kernel} and dilation {dilation}: \
             \"same\" padding needs an odd kernel size and a dilation of at least 1 \
             (the checkpoint's config or weights are not a VITS model's)"
        );
    }
    Ok(())
}

/// A raw output pointer that parallel tasks share, each writing a disjoint
/// set of elements (a convolution's tiles: column ranges; attention's
/// tasks: their own queries).
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub(crate) *mut f32);
// SAFETY: the tasks sharing it write disjoint elements of the output
// (checked at each use: `FusedConv::forward`, `cpu_attention::attend`).
unsafe impl Send for SharedOut {}
// SAFETY: as for `Send`: no task reads or writes what another writes.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer (a method, so closures capture the `Sync` wrapper).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

impl FusedConv {
    /// Takes the weights (`[c_out, c_in, k]`) and bias of a dense convolution.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>, dilation: usize) -> Result<Self> {
        let (_, _, kernel) = weight.dims3()?;
        check_same_padding(kernel, dilation)?;
        Self::with_left_padding(weight, bias, dilation, dilation * (kernel - 1) / 2)
    }

    /// A convolution of `weight` (`[c_out, c_in, k]`) over the input with
    /// `left_pad` zeros before it and `dilation · (k − 1) − left_pad` after
    /// (`left_pad = dilation · (k − 1)`: causal).
    pub fn with_left_padding(
        weight: &Tensor,
        bias: Option<&Tensor>,
        dilation: usize,
        left_pad: usize,
    ) -> Result<Self> {
        let (c_out, c_in, kernel) = weight.dims3()?;
        if dilation == 0 || kernel == 0 || left_pad > dilation * (kernel - 1) {
            candle_core::bail!(
                "convolution with kernel {kernel}, dilation {dilation}: \
                 {left_pad} zeros on the left is more than its receptive field"
            );
        }
        let w = weight
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let weight = Weights::F32(PackedMatrix::new(&w, c_out, c_in * kernel));
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
            left_pad,
        })
    }

    /// The same convolution with int8 weights (one scale per output
    /// channel) and its input quantized to bytes per time tile: 2.9× the
    /// multiply-adds per instruction with AVX-512 VNNI, at a quantization
    /// error `docs/PERFORMANCE.md` measures. Already int8: a clone.
    pub fn quantized(&self) -> Self {
        let Weights::F32(packed) = &self.weight else {
            return self.clone();
        };
        let (c_in, k) = (self.c_in, self.kernel);
        let w = packed.to_row_major();
        // Quad row (q, j): channels 4q..4q + 4 at tap j.
        let column = |g: usize, b: usize| {
            let (q, j) = (g / k, g % k);
            let c = 4 * q + b;
            (c < c_in).then_some(c * k + j)
        };
        let matrix = QuantizedMatrix::new(&w, self.c_out, c_in * k, c_in.div_ceil(4) * k, column);
        Self {
            weight: Weights::Int8(matrix),
            ..self.clone()
        }
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
        let residual = match residual {
            Some(r) => {
                if r.dims3()? != (b, self.c_out, len) {
                    candle_core::bail!(
                        "fused conv: residual shape {:?} does not match the output",
                        r.dims()
                    );
                }
                Some(r.contiguous()?)
            }
            None => None,
        };
        // ResBlock2 adds a layer's input to its output: then the input's
        // slice serves as the residual too, under the one read guard (a
        // second guard on the same storage can deadlock behind a queued writer).
        let residual_is_input = residual.as_ref().is_some_and(|r| r.id() == x.id());
        let per_item = self.c_out * len;
        let mut out: Vec<f32> = Vec::with_capacity(b * per_item);
        let base = out.as_mut_ptr();
        with_cpu_slice(x, |x| {
            let item_x = |item: usize| &x[item * c_in * len..(item + 1) * c_in * len];
            let ys = |item: usize| SharedOut(base.wrapping_add(item * per_item));
            match &residual {
                Some(_) if residual_is_input => {
                    for item in 0..b {
                        self.forward_item(item_x(item), ys(item), len, slope, Some(item_x(item)));
                    }
                    Ok(())
                }
                Some(r) => with_cpu_slice(r, |r| {
                    for item in 0..b {
                        let rs = &r[item * per_item..(item + 1) * per_item];
                        self.forward_item(item_x(item), ys(item), len, slope, Some(rs));
                    }
                }),
                None => {
                    for item in 0..b {
                        self.forward_item(item_x(item), ys(item), len, slope, None);
                    }
                    Ok(())
                }
            }
        })??;
        // SAFETY: `forward_item` wrote every element of every item.
        unsafe { out.set_len(b * per_item) };
        Tensor::from_vec(out, (b, self.c_out, len), &Device::Cpu)
    }

    /// One item: `ys [c_out, len] = residual + bias + W · im2col(act(xs))`,
    /// tile by tile; writes every element of `ys` (which may be uninitialized)
    /// and reads none.
    fn forward_item(
        &self,
        xs: &[f32],
        out: SharedOut,
        len: usize,
        slope: f32,
        residual: Option<&[f32]>,
    ) {
        let packed = match &self.weight {
            Weights::F32(packed) => packed,
            Weights::Int8(matrix) => {
                return self.forward_item_int8(matrix, xs, out, len, slope, residual)
            }
        };
        let (c_in, k, d) = (self.c_in, self.kernel, self.dilation);
        let rows = c_in * k;
        let pad = self.left_pad;
        let tile_len = tile_len(c_in, len);
        let tiles = len.div_ceil(tile_len);
        let width = tile_len + d * (k - 1);
        (0..tiles).into_par_iter().for_each_init(
            || (vec![0f32; c_in * width], Vec::with_capacity(rows)),
            |(window, row_ptrs), tile| {
                let t0 = tile * tile_len;
                let n = tile_len.min(len - t0);
                // window[c, u] = act(x[c, t0 - pad + u]), zero outside; the
                // im2col row (c, j) is window[c] shifted by j·d.
                let width = n + d * (k - 1);
                row_ptrs.clear();
                for c in 0..c_in {
                    let win = &mut window[c * width..(c + 1) * width];
                    activate_window(
                        &xs[c * len..(c + 1) * len],
                        t0 as isize - pad as isize,
                        slope,
                        win,
                    );
                    row_ptrs.extend((0..k).map(|j| win[j * d..].as_ptr()));
                }
                let init = match residual {
                    // SAFETY: the residual has the output's shape.
                    Some(r) => Init::From(unsafe { r.as_ptr().add(t0) }, len),
                    None => Init::Zero,
                };
                // SAFETY: this tile owns columns t0..t0+n of every output row
                // (no other tile touches them, and `ys` outlives the loop);
                // row (c, j) has (k - 1 - j)·d + n ≥ n readable elements.
                unsafe {
                    let dst = out.get().add(t0);
                    packed.product(n, dst, len, row_ptrs, init, Some(&self.bias));
                }
            },
        );
    }

    /// [`Self::forward_item`] on int8 weights: each tile's activated
    /// window is quantized to bytes, four channels a 32-bit lane.
    fn forward_item_int8(
        &self,
        matrix: &QuantizedMatrix,
        xs: &[f32],
        out: SharedOut,
        len: usize,
        slope: f32,
        residual: Option<&[f32]>,
    ) {
        let (c_in, k, d) = (self.c_in, self.kernel, self.dilation);
        let quads = c_in.div_ceil(4);
        let tile_len = tile_len(c_in, len);
        let tiles = len.div_ceil(tile_len);
        let width = tile_len + d * (k - 1);
        (0..tiles).into_par_iter().for_each_init(
            || (vec![0u32; quads * width], Vec::with_capacity(quads * k)),
            |(window, row_ptrs), tile| {
                let t0 = tile * tile_len;
                let n = tile_len.min(len - t0);
                let width = n + d * (k - 1);
                let start = t0 as isize - self.left_pad as isize;
                let scale =
                    quantize_window(xs, c_in, len, start, slope, &mut window[..quads * width]);
                // Quad row (q, j) is quad q of the window shifted by j·d.
                row_ptrs.clear();
                for q in 0..quads {
                    row_ptrs.extend((0..k).map(|j| window[q * width + j * d..].as_ptr()));
                }
                let init = match residual {
                    // SAFETY: the residual has the output's shape.
                    Some(r) => Init::From(unsafe { r.as_ptr().add(t0) }, len),
                    None => Init::Zero,
                };
                // SAFETY: this tile owns columns t0..t0+n of every output row;
                // quad row (q, j) has (k - 1 - j)·d + n ≥ n readable lanes.
                unsafe {
                    let dst = out.get().add(t0);
                    matrix.product(n, dst, len, row_ptrs, scale, init, Some(&self.bias));
                }
            },
        );
    }
}

/// A transposed 1-D convolution (PyTorch's `ConvTranspose1d` with stride,
/// padding, no output padding, dilation 1), by phases: output sample
/// `n = Q·stride + r − padding` reads inputs `Q − j` through kernel taps
/// `r + j·stride`, so for a tile of `Q`s one GEMM `[(r, o), (j, i)] ·
/// [(j, i), Q]` computes every phase at once, with the leaky ReLU fused into
/// the gather and the bias into the interleaving write. No `[len, c_out·k]`
/// column buffer and no scatter-add, unlike im2col/col2im.
#[derive(Debug, Clone)]
pub struct FusedConvTranspose {
    /// `[(r, o), (j, i)]` = `w[i, o, r + j·stride]`, zero where that tap is
    /// past the kernel; packed for the kernel.
    weight: Weights,
    /// The bias of output channel `o` at every row `(r, o)`.
    phase_bias: Vec<f32>,
    c_in: usize,
    c_out: usize,
    stride: usize,
    padding: usize,
    kernel: usize,
    /// Input offsets per phase: `ceil(kernel / stride)`.
    taps: usize,
}

/// Super-samples `Q` per transposed-convolution tile.
const TRANSPOSE_TILE: usize = 128;

impl FusedConvTranspose {
    /// Takes PyTorch's weight layout `[c_in, c_out, k]`, the bias, stride and padding.
    pub fn new(
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let (c_in, c_out, kernel) = weight.dims3()?;
        if stride == 0 || kernel == 0 {
            candle_core::bail!(
                "transposed conv: stride {stride} and kernel {kernel} must be positive"
            );
        }
        let w = weight
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let taps = kernel.div_ceil(stride);
        let cols = taps * c_in;
        let mut arranged = vec![0f32; stride * c_out * cols];
        for r in 0..stride {
            for o in 0..c_out {
                let row = &mut arranged[(r * c_out + o) * cols..(r * c_out + o + 1) * cols];
                for j in 0..taps {
                    let k = r + j * stride;
                    if k >= kernel {
                        continue;
                    }
                    for i in 0..c_in {
                        row[j * c_in + i] = w[(i * c_out + o) * kernel + k];
                    }
                }
            }
        }
        let bias = match bias {
            Some(b) => b.to_dtype(DType::F32)?.to_vec1::<f32>()?,
            None => vec![0.0; c_out],
        };
        Ok(Self {
            weight: Weights::F32(PackedMatrix::new(&arranged, stride * c_out, cols)),
            phase_bias: (0..stride).flat_map(|_| bias.iter().copied()).collect(),
            c_in,
            c_out,
            stride,
            padding,
            kernel,
            taps,
        })
    }

    /// The same convolution with int8 weights (one scale per output phase
    /// and channel) and its input quantized per tile, as
    /// [`FusedConv::quantized`]. Already int8: a clone.
    pub fn quantized(&self) -> Self {
        let Weights::F32(packed) = &self.weight else {
            return self.clone();
        };
        let (c_in, quads) = (self.c_in, self.c_in.div_ceil(4));
        let w = packed.to_row_major();
        // Quad row (j, q): channels 4q..4q + 4 at input offset j.
        let column = |g: usize, b: usize| {
            let (j, q) = (g / quads, g % quads);
            let i = 4 * q + b;
            (i < c_in).then_some(j * c_in + i)
        };
        let matrix = QuantizedMatrix::new(
            &w,
            self.stride * self.c_out,
            self.taps * c_in,
            self.taps * quads,
            column,
        );
        Self {
            weight: Weights::Int8(matrix),
            ..self.clone()
        }
    }

    /// Output length for `len` input samples: `(len − 1)·stride − 2·padding + kernel`.
    pub fn output_len(&self, len: usize) -> usize {
        ((len.max(1) - 1) * self.stride + self.kernel).saturating_sub(2 * self.padding)
    }

    /// `conv_transpose(leaky_relu(x, slope))` for `x` `[b, c_in, len]` (`slope = 1`:
    /// no activation); the result is `[b, c_out, output_len(len)]`.
    pub fn forward(&self, x: &Tensor, slope: f32) -> Result<Tensor> {
        let (b, c_in, len) = x.dims3()?;
        if c_in != self.c_in {
            candle_core::bail!(
                "transposed conv: {c_in} input channels, weights expect {}",
                self.c_in
            );
        }
        let out_len = self.output_len(len);
        let per_item = self.c_out * out_len;
        let mut out: Vec<f32> = Vec::with_capacity(b * per_item);
        with_cpu_slice(x, |x| {
            for item in 0..b {
                let xs = &x[item * c_in * len..(item + 1) * c_in * len];
                let ys = SharedOut(out.as_mut_ptr().wrapping_add(item * per_item));
                self.forward_item(xs, ys, len, out_len, slope);
            }
        })?;
        // SAFETY: `forward_item` wrote every element of every item.
        unsafe { out.set_len(b * per_item) };
        Tensor::from_vec(out, (b, self.c_out, out_len), &Device::Cpu)
    }

    /// One item; writes every element of `out` (`[c_out, out_len]`, may be
    /// uninitialized) and reads none: every output position is some
    /// `Q·stride + r − padding` with `Q < q_count`.
    fn forward_item(&self, xs: &[f32], out: SharedOut, len: usize, out_len: usize, slope: f32) {
        let (c_in, s, taps) = (self.c_in, self.stride, self.taps);
        let phases = s * self.c_out;
        // Q runs over every super-sample that produces an output in range.
        let q_count = (out_len + self.padding).div_ceil(s);
        let tiles = q_count.div_ceil(TRANSPOSE_TILE);
        let width = TRANSPOSE_TILE + taps - 1;
        let quads = c_in.div_ceil(4);
        (0..tiles).into_par_iter().for_each_init(
            || {
                let (f32_width, byte_width) = match self.weight {
                    Weights::F32(_) => (width, 0),
                    Weights::Int8(_) => (0, width),
                };
                (
                    vec![0f32; c_in * f32_width],
                    vec![0u32; quads * byte_width],
                    Vec::with_capacity(taps * c_in),
                    Vec::with_capacity(taps * quads),
                    vec![0f32; phases * TRANSPOSE_TILE],
                )
            },
            |(window, bytes, row_ptrs, quad_ptrs, prod), tile| {
                let q0 = tile * TRANSPOSE_TILE;
                let n = TRANSPOSE_TILE.min(q_count - q0);
                // window[i, u] = act(x[i, q0 - (taps - 1) + u]), zero outside;
                // row (j, i) of the product, x[i, q0 + q - j], is window[i]
                // shifted by taps - 1 - j.
                let width = n + taps - 1;
                let start = q0 as isize - (taps as isize - 1);
                match &self.weight {
                    Weights::F32(packed) => {
                        for i in 0..c_in {
                            let win = &mut window[i * width..(i + 1) * width];
                            activate_window(&xs[i * len..(i + 1) * len], start, slope, win);
                        }
                        row_ptrs.clear();
                        for j in 0..taps {
                            row_ptrs.extend(
                                (0..c_in).map(|i| window[i * width + taps - 1 - j..].as_ptr()),
                            );
                        }
                        // SAFETY: `prod` is phases × TRANSPOSE_TILE, owned by
                        // this tile; each row pointer has at least n readable
                        // elements.
                        unsafe {
                            packed.product(
                                n,
                                prod.as_mut_ptr(),
                                TRANSPOSE_TILE,
                                row_ptrs,
                                Init::Zero,
                                Some(&self.phase_bias),
                            );
                        }
                    }
                    Weights::Int8(matrix) => {
                        let window = &mut bytes[..quads * width];
                        let scale = quantize_window(xs, c_in, len, start, slope, window);
                        quad_ptrs.clear();
                        for j in 0..taps {
                            quad_ptrs.extend(
                                (0..quads).map(|q| window[q * width + taps - 1 - j..].as_ptr()),
                            );
                        }
                        // SAFETY: as above, with n readable lanes per quad row.
                        unsafe {
                            matrix.product(
                                n,
                                prod.as_mut_ptr(),
                                TRANSPOSE_TILE,
                                quad_ptrs,
                                scale,
                                Init::Zero,
                                Some(&self.phase_bias),
                            );
                        }
                    }
                }
                // Interleave the phases into the output: y[o, Q·s + r − p].
                for o in 0..self.c_out {
                    for r in 0..s {
                        let src = &prod[(r * self.c_out + o) * TRANSPOSE_TILE..][..n];
                        for (q, &v) in src.iter().enumerate() {
                            let pos = (q0 + q) * s + r;
                            if pos < self.padding || pos - self.padding >= out_len {
                                continue;
                            }
                            // SAFETY: output index o·out_len + pos − p is in
                            // range, and only this tile writes Q in q0..q0+n.
                            unsafe {
                                *out.get().add(o * out_len + pos - self.padding) = v;
                            }
                        }
                    }
                }
            },
        );
    }
}

/// A depth-wise 1-D convolution (`groups = channels`) with "same" padding.
/// candle runs a grouped convolution as one `conv1d` per group, which for
/// the duration predictor's 192 channels is 192 tiny calls per layer.
#[derive(Debug, Clone)]
pub struct DepthwiseConv {
    /// `[channels, k]`.
    weight: Vec<f32>,
    bias: Vec<f32>,
    channels: usize,
    kernel: usize,
    dilation: usize,
}

impl DepthwiseConv {
    /// Takes the weights (`[channels, 1, k]`), bias and dilation.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>, dilation: usize) -> Result<Self> {
        let (channels, one, kernel) = weight.dims3()?;
        check_same_padding(kernel, dilation)?;
        if one != 1 {
            candle_core::bail!(
                "depth-wise conv: weight {:?} is not [c, 1, k]",
                weight.dims()
            );
        }
        let bias = match bias {
            Some(b) => b.to_dtype(DType::F32)?.to_vec1::<f32>()?,
            None => vec![0.0; channels],
        };
        Ok(Self {
            weight: weight
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?,
            bias,
            channels,
            kernel,
            dilation,
        })
    }

    /// `conv(x)` for `x` `[b, channels, len]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, len) = x.dims3()?;
        if c != self.channels {
            candle_core::bail!(
                "depth-wise conv: {c} channels, weights expect {}",
                self.channels
            );
        }
        let (k, d) = (self.kernel, self.dilation);
        let pad = d * (k - 1) / 2;
        let mut out = vec![0f32; b * c * len];
        with_cpu_slice(x, |x| {
            out.par_chunks_mut(len).enumerate().for_each_init(
                || vec![0f32; len + 2 * pad],
                |window, (row, dst)| {
                    let ch = row % c;
                    // window[u] = x[row, u − pad], zero outside (the same
                    // boundary handling as the dense kernels).
                    activate_window(&x[row * len..(row + 1) * len], -(pad as isize), 1.0, window);
                    dst.fill(self.bias[ch]);
                    for (j, &w) in self.weight[ch * k..(ch + 1) * k].iter().enumerate() {
                        for (y, &v) in dst.iter_mut().zip(&window[j * d..]) {
                            *y += w * v;
                        }
                    }
                },
            );
        })?;
        Tensor::from_vec(out, (b, c, len), &Device::Cpu)
    }
}

/// `win[u] = act(src[start + u])` for every `u`, zero where `start + u` is
/// outside `src`; `act` is the leaky ReLU of `slope` (none at `slope = 1`).
fn activate_window(src: &[f32], start: isize, slope: f32, win: &mut [f32]) {
    let width = win.len();
    let lo = (-start).clamp(0, width as isize) as usize;
    let hi = (src.len() as isize - start).clamp(lo as isize, width as isize) as usize;
    win[..lo].fill(0.0);
    win[hi..].fill(0.0);
    if hi == lo {
        return;
    }
    let from = (start + lo as isize) as usize;
    let inner = &src[from..from + (hi - lo)];
    if slope == 1.0 {
        win[lo..hi].copy_from_slice(inner);
    } else {
        for (v, &x) in win[lo..hi].iter_mut().zip(inner) {
            *v = x.max(0.0) + slope * x.min(0.0);
        }
    }
}

/// Quantizes `act(x[c, start + u])` (zero outside `0..len`; `act` the
/// leaky ReLU of `slope`) for `u < width = window.len() / quads` into
/// `window[q·width + u]`, channels `4q..4q + 4` a lane (channels past
/// `c_in` hold the byte for zero), with one scale for the whole window,
/// which it returns. The leaky ReLU is monotone on each side of zero, so
/// the range of its outputs is that of its inputs' extremes and zero.
fn quantize_window(
    xs: &[f32],
    c_in: usize,
    len: usize,
    start: isize,
    slope: f32,
    window: &mut [u32],
) -> ByteScale {
    // AVX2 on the AVX-512 paths too: an AVX-512 copy took 0.75 % less of
    // the whole process's CPU time (docs/PERFORMANCE.md), not worth a
    // second copy.
    #[cfg(target_arch = "x86_64")]
    if super::cpu_kernel::avx2() {
        // SAFETY: the CPU runs AVX2 and FMA.
        return unsafe { quantize_window_avx2(xs, c_in, len, start, slope, window) };
    }
    quantize_window_lanes(xs, c_in, len, start, slope, window)
}

/// [`quantize_window`] with AVX2 intrinsics, 8 time steps a vector (LLVM
/// keeps `f32::min`'s NaN rule and `as u32`'s saturation scalar). The
/// bytes equal the portable loops': `vfmadd` and `vcvtps2dq` (round to
/// nearest even) round as `mul_add` and `round_ties_even` do, and NaN ends
/// at byte 0 in both.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_window_avx2(
    xs: &[f32],
    c_in: usize,
    len: usize,
    start: isize,
    slope: f32,
    window: &mut [u32],
) -> ByteScale {
    use std::arch::x86_64::*;
    /// `-1` for a lane to use, `0` for one to skip: eight lanes from `8 − n`.
    const LANES: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    let quads = c_in.div_ceil(4);
    let width = window.len() / quads.max(1);
    let lo_u = (-start).clamp(0, width as isize) as usize;
    let hi_u = (len as isize - start).clamp(lo_u as isize, width as isize) as usize;
    let inside = hi_u - lo_u;
    let from = (start + lo_u as isize).max(0) as usize;
    let channel = |c: usize| &xs[c * len + from..][..inside];
    // SAFETY: `LANES` is read at `8 − lanes ∈ 0..=8`, 8 values.
    let mask = |u: usize| unsafe {
        _mm256_loadu_si256(LANES.as_ptr().add(8 - (inside - u).min(8)).cast())
    };
    let zeros = _mm256_setzero_ps();
    let (mut lo, mut hi) = (zeros, zeros);
    for c in (0..c_in).filter(|_| inside > 0) {
        let x = channel(c);
        for u in (0..inside).step_by(8) {
            // SAFETY: lanes past the slice's end are masked off (read as 0,
            // which every range holds anyway).
            let v = unsafe { _mm256_maskload_ps(x.as_ptr().add(u), mask(u)) };
            lo = _mm256_min_ps(lo, v);
            hi = _mm256_max_ps(hi, v);
        }
    }
    let (mut los, mut his) = ([0f32; 8], [0f32; 8]);
    // SAFETY: two 8-float arrays.
    unsafe {
        _mm256_storeu_ps(los.as_mut_ptr(), lo);
        _mm256_storeu_ps(his.as_mut_ptr(), hi);
    }
    let act = |x: f32| x.max(0.0) + slope * x.min(0.0);
    let (a, b) = (
        act(los.iter().fold(0f32, |m, &v| m.min(v))),
        act(his.iter().fold(0f32, |m, &v| m.max(v))),
    );
    let scale = ByteScale::covering(a.min(b), a.max(b));
    let byte = scale.quantizer();
    let zero = u32::from(scale.zero);
    let inverse = _mm256_set1_ps(1.0 / scale.scale);
    let zero_f = _mm256_set1_ps(f32::from(scale.zero));
    let (slope_v, top) = (_mm256_set1_ps(slope), _mm256_set1_epi32(255));
    let quantize = |v: __m256| {
        let act = _mm256_add_ps(
            _mm256_max_ps(v, zeros),
            _mm256_mul_ps(slope_v, _mm256_min_ps(v, zeros)),
        );
        let q = _mm256_cvtps_epi32(_mm256_fmadd_ps(act, inverse, zero_f));
        _mm256_min_epi32(_mm256_max_epi32(q, _mm256_setzero_si256()), top)
    };
    for q in 0..quads {
        let lanes = &mut window[q * width..(q + 1) * width];
        lanes[..lo_u].fill(zero * 0x0101_0101);
        lanes[hi_u..].fill(zero * 0x0101_0101);
        if inside == 0 {
            continue;
        }
        let lanes = &mut lanes[lo_u..hi_u];
        if 4 * q + 4 > c_in {
            // A last quad only partly filled: lane by lane.
            for (u, lane) in lanes.iter_mut().enumerate() {
                *lane = (0..4).fold(0, |acc, b| {
                    let c = 4 * q + b;
                    let v = if c < c_in {
                        byte.byte(act(channel(c)[u]))
                    } else {
                        zero
                    };
                    acc | v << (8 * b)
                });
            }
            continue;
        }
        let [c0, c1, c2, c3] = [0, 1, 2, 3].map(|b| channel(4 * q + b).as_ptr());
        for u in (0..inside).step_by(8) {
            let m = mask(u);
            // SAFETY: each channel slice and `lanes` hold `inside` values;
            // lanes past it are masked off.
            unsafe {
                let b0 = quantize(_mm256_maskload_ps(c0.add(u), m));
                let b1 = quantize(_mm256_maskload_ps(c1.add(u), m));
                let b2 = quantize(_mm256_maskload_ps(c2.add(u), m));
                let b3 = quantize(_mm256_maskload_ps(c3.add(u), m));
                let packed = _mm256_or_si256(
                    _mm256_or_si256(b0, _mm256_slli_epi32::<8>(b1)),
                    _mm256_or_si256(_mm256_slli_epi32::<16>(b2), _mm256_slli_epi32::<24>(b3)),
                );
                _mm256_maskstore_epi32(lanes.as_mut_ptr().add(u).cast(), m, packed);
            }
        }
    }
    scale
}

/// [`quantize_window`]'s portable loops (and the SIMD versions' reference).
fn quantize_window_lanes(
    xs: &[f32],
    c_in: usize,
    len: usize,
    start: isize,
    slope: f32,
    window: &mut [u32],
) -> ByteScale {
    let quads = c_in.div_ceil(4);
    let width = window.len() / quads.max(1);
    let lo_u = (-start).clamp(0, width as isize) as usize;
    let hi_u = (len as isize - start).clamp(lo_u as isize, width as isize) as usize;
    let inside = hi_u - lo_u;
    let from = (start + lo_u as isize).max(0) as usize;
    let channel = |c: usize| &xs[c * len + from..][..inside];
    // Sixteen lanes of minima and maxima, so the loop vectorizes.
    let (mut lo, mut hi) = ([0f32; 16], [0f32; 16]);
    for c in (0..c_in).filter(|_| inside > 0) {
        let mut chunks = channel(c).chunks_exact(16);
        for chunk in &mut chunks {
            for l in 0..16 {
                lo[l] = lo[l].min(chunk[l]);
                hi[l] = hi[l].max(chunk[l]);
            }
        }
        for (l, &v) in chunks.remainder().iter().enumerate() {
            lo[l] = lo[l].min(v);
            hi[l] = hi[l].max(v);
        }
    }
    let act = |x: f32| x.max(0.0) + slope * x.min(0.0);
    let (a, b) = (
        act(lo.iter().fold(0f32, |m, &v| m.min(v))),
        act(hi.iter().fold(0f32, |m, &v| m.max(v))),
    );
    let scale = ByteScale::covering(a.min(b), a.max(b));
    let byte = scale.quantizer();
    let zero = u32::from(scale.zero);
    for q in 0..quads {
        let lanes = &mut window[q * width..(q + 1) * width];
        lanes[..lo_u].fill(zero * 0x0101_0101);
        lanes[hi_u..].fill(zero * 0x0101_0101);
        if inside == 0 {
            continue;
        }
        let lanes = &mut lanes[lo_u..hi_u];
        if 4 * q + 4 <= c_in {
            let [c0, c1, c2, c3] = [0, 1, 2, 3].map(|b| channel(4 * q + b));
            for (u, lane) in lanes.iter_mut().enumerate() {
                *lane = byte.byte(act(c0[u]))
                    | byte.byte(act(c1[u])) << 8
                    | byte.byte(act(c2[u])) << 16
                    | byte.byte(act(c3[u])) << 24;
            }
        } else {
            for (u, lane) in lanes.iter_mut().enumerate() {
                *lane = (0..4).fold(0, |acc, b| {
                    let c = 4 * q + b;
                    let v = if c < c_in {
                        byte.byte(act(channel(c)[u]))
                    } else {
                        zero
                    };
                    acc | v << (8 * b)
                });
            }
        }
    }
    scale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zero or even kernel (or no dilation) used to load and then underflow
    /// the padding in `forward`; now the checkpoint is refused at load.
    #[test]
    fn kernels_without_same_padding_are_refused_at_load() -> Result<()> {
        let dev = Device::Cpu;
        for (k, d) in [(0, 1), (2, 1), (4, 2), (3, 0)] {
            let dense = Tensor::zeros((2, 2, k), DType::F32, &dev)?;
            let err = FusedConv::new(&dense, None, d).expect_err("dense conv loaded");
            assert!(err.to_string().contains("odd kernel size"), "{err}");
            let depthwise = Tensor::zeros((2, 1, k), DType::F32, &dev)?;
            assert!(
                DepthwiseConv::new(&depthwise, None, d).is_err(),
                "k {k} d {d}"
            );
            let spec = crate::nn::layers::ConvSpec::new(2, 2, k).dilation(d);
            let vb = candle_nn::VarBuilder::zeros(DType::F32, &dev);
            assert!(spec.load(vb).is_err(), "ConvSpec k {k} d {d}");
        }
        let w = Tensor::zeros((2, 2, 3), DType::F32, &dev)?;
        FusedConv::new(&w, None, 2)?;
        Ok(())
    }

    /// The int8 convolutions' largest relative L2 error against f32 on
    /// these random layers (measured up to ~1e-2: a byte per activation
    /// over the tile's range, a signed byte per weight over its row's).
    const INT8_BOUND: f32 = 2e-2;

    /// `‖a − b‖ / ‖b‖`.
    fn relative_l2(a: &Tensor, b: &Tensor) -> Result<f32> {
        let diff = (a - b)?.sqr()?.sum_all()?.to_scalar::<f32>()?;
        let norm = b.sqr()?.sum_all()?.to_scalar::<f32>()?;
        Ok((diff / norm).sqrt())
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.max_all()?.to_scalar::<f32>()
    }

    /// Against candle's `conv_transpose1d` (run unpadded and trimmed: candle's
    /// padded CPU path is a different, slow loop) over HiFi-GAN's shapes and
    /// ones where the kernel is not a multiple of the stride, with and
    /// without the leaky ReLU.
    #[test]
    fn transposed_matches_candle() -> Result<()> {
        let dev = Device::Cpu;
        for &(c_in, c_out, k, s, p, len) in &[
            (8, 4, 16, 8, 4, 20),
            (6, 3, 8, 4, 2, 300),
            (4, 4, 4, 2, 1, 1),
            (5, 3, 7, 3, 2, 33),
            (4, 2, 5, 5, 0, 17),
            (3, 2, 3, 1, 1, 9),
        ] {
            let w = Tensor::randn(0f32, 0.3, (c_in, c_out, k), &dev)?;
            let bias = Tensor::randn(0f32, 0.3, c_out, &dev)?;
            let x = Tensor::randn(0f32, 1.0, (2, c_in, len), &dev)?;
            let conv = FusedConvTranspose::new(&w, Some(&bias), s, p)?;
            let quantized = conv.quantized();
            for slope in [1.0f32, 0.1] {
                let act = if slope == 1.0 {
                    x.clone()
                } else {
                    candle_nn::ops::leaky_relu(&x, slope as f64)?
                };
                let got = conv.forward(&x, slope)?;
                for item in 0..2 {
                    let full = act
                        .narrow(0, item, 1)?
                        .conv_transpose1d(&w, 0, 0, s, 1, 1)?;
                    let out_len = full.dim(2)? - 2 * p;
                    let want = full
                        .narrow(2, p, out_len)?
                        .broadcast_add(&bias.reshape((1, c_out, 1))?)?;
                    assert_eq!(got.dim(2)?, out_len, "k{k} s{s} p{p} len{len}");
                    let diff = max_diff(&got.narrow(0, item, 1)?, &want)?;
                    assert!(diff < 1e-4, "k{k} s{s} p{p} len{len} slope {slope}: {diff}");
                    let int8 = quantized.forward(&x, slope)?.narrow(0, item, 1)?;
                    let err = relative_l2(&int8, &want)?;
                    assert!(
                        err < INT8_BOUND,
                        "int8 k{k} s{s} p{p} len{len} slope {slope}: {err}"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn depthwise_matches_candle() -> Result<()> {
        let dev = Device::Cpu;
        // The last two are shorter than the padding (a one-letter sentence
        // through the duration predictor's dilation-9 layer).
        for &(c, k, d, len) in &[
            (6, 3, 1, 40),
            (4, 3, 9, 30),
            (3, 5, 2, 4),
            (4, 3, 9, 5),
            (2, 3, 9, 1),
        ] {
            let w = Tensor::randn(0f32, 0.5, (c, 1, k), &dev)?;
            let bias = Tensor::randn(0f32, 0.5, c, &dev)?;
            let x = Tensor::randn(0f32, 1.0, (2, c, len), &dev)?;
            let pad = d * (k - 1) / 2;
            let want = x
                .conv1d(&w, pad, 1, d, c)?
                .broadcast_add(&bias.reshape((1, c, 1))?)?;
            let got = DepthwiseConv::new(&w, Some(&bias), d)?.forward(&x)?;
            assert!(max_diff(&got, &want)? < 1e-5, "c{c} k{k} d{d} len{len}");
        }
        Ok(())
    }

    /// Against candle's `leaky_relu` + `conv1d` + add, over dilations, kernels,
    /// lengths that are and are not multiples of the tile, and a batch of two.
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
            // A last quad of channels only half full (int8).
            (6, 5, 3, 2, 150),
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
            let quantized = conv.quantized();
            let err = relative_l2(&quantized.forward(&x, 0.1, None)?, &want)?;
            assert!(
                err < INT8_BOUND,
                "int8 {c_in}x{c_out} k{k} d{d} len{len}: {err}"
            );
            if c_in == c_out {
                let got = quantized.forward(&x, 0.1, Some(&x))?;
                let err = relative_l2(&(got - &x)?, &want)?;
                assert!(
                    err < INT8_BOUND,
                    "int8 residual {c_in} k{k} d{d} len{len}: {err}"
                );
            }
            let plain = conv.forward(&x, 1.0, None)?;
            let want = x
                .conv1d(&w, pad, 1, d, 1)?
                .broadcast_add(&bias.reshape((1, c_out, 1))?)?;
            assert!(max_diff(&plain, &want)? < 1e-4);
            let err = relative_l2(&quantized.forward(&x, 1.0, None)?, &want)?;
            assert!(
                err < INT8_BOUND,
                "int8 unactivated {c_in}x{c_out} k{k} d{d} len{len}: {err}"
            );
        }
        Ok(())
    }

    /// The AVX2 window quantizer writes the portable loops' bytes and
    /// scale, at every offset (padding on either side, none, all), with
    /// and without the activation, for full and partial quads.
    #[test]
    fn quantized_windows_equal_on_every_path() {
        let cpu = crate::nn::cpu_kernel::Features::of_this_cpu();
        let mut seed = 99u32;
        let mut rand = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.3
        };
        for &(c_in, len, width) in &[
            (8usize, 100usize, 40usize),
            (6, 50, 70),
            (4, 20, 64),
            (3, 37, 17),
        ] {
            let xs: Vec<f32> = (0..c_in * len).map(|_| 3.0 * rand()).collect();
            let quads = c_in.div_ceil(4);
            for start in [-30isize, -3, 0, 5, 20, 60, 200] {
                for slope in [1.0, 0.1] {
                    let mut want = vec![0u32; quads * width];
                    let scale = quantize_window_lanes(&xs, c_in, len, start, slope, &mut want);
                    // Padding is the zero point, inside is the activation's byte.
                    let byte = scale.quantizer();
                    for q in 0..quads {
                        for u in 0..width {
                            let t = start + u as isize;
                            for b in 0..4 {
                                let c = 4 * q + b;
                                let v = match (c < c_in, (0..len as isize).contains(&t)) {
                                    (true, true) => {
                                        let x = xs[c * len + t as usize];
                                        byte.byte(x.max(0.0) + slope * x.min(0.0))
                                    }
                                    _ => u32::from(scale.zero),
                                };
                                let got = want[q * width + u] >> (8 * b) & 255;
                                assert_eq!(got, v, "c{c} t{t} start {start}");
                            }
                        }
                    }
                    #[cfg(target_arch = "x86_64")]
                    if cpu.avx2_fma {
                        let mut got = vec![0u32; quads * width];
                        // SAFETY: the CPU runs AVX2 and FMA.
                        let s =
                            unsafe { quantize_window_avx2(&xs, c_in, len, start, slope, &mut got) };
                        assert_eq!(
                            (s, &got),
                            (scale, &want),
                            "avx2 {c_in} {len} {start} {slope}"
                        );
                    }
                }
            }
        }
        let _ = cpu;
    }

    /// Uneven padding (causal, look-ahead, between), even kernels
    /// included, against candle's `conv1d` of an explicitly padded input.
    #[test]
    fn uneven_padding_matches_candle() -> Result<()> {
        let dev = Device::Cpu;
        for &(c_in, c_out, k, d, left, len) in &[
            (8, 6, 3, 1, 2, 100),
            (16, 16, 4, 1, 0, 300),
            (4, 5, 5, 1, 4, 77),
            (6, 6, 3, 2, 1, 50),
            (3, 3, 3, 1, 2, 1),
        ] {
            let w = Tensor::randn(0f32, 0.3, (c_out, c_in, k), &dev)?;
            let bias = Tensor::randn(0f32, 0.3, c_out, &dev)?;
            let x = Tensor::randn(0f32, 1.0, (2, c_in, len), &dev)?;
            let right = d * (k - 1) - left;
            let want = x
                .pad_with_zeros(2, left, right)?
                .conv1d(&w, 0, 1, d, 1)?
                .broadcast_add(&bias.reshape((1, c_out, 1))?)?;
            let got =
                FusedConv::with_left_padding(&w, Some(&bias), d, left)?.forward(&x, 1.0, None)?;
            assert!(
                max_diff(&got, &want)? < 1e-4,
                "{c_in}x{c_out} k{k} d{d} left{left} len{len}"
            );
        }
        let w = Tensor::zeros((2, 2, 3), DType::F32, &dev)?;
        assert!(FusedConv::with_left_padding(&w, None, 1, 3).is_err());
        Ok(())
    }
}
