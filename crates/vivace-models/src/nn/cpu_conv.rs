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
use super::cpu_gemm_int8::{ActScale, Lanes, QuantizedMatrix};
use super::cpu_ops::with_cpu_slice;

/// Output samples per tile for `c_in` input channels and `len` samples: a
/// multiple of the GEMM kernel's 64-step block, with an activated input
/// window of at most about 256 KiB (a quarter of the L2 of the machine
/// measured), and at least one tile per thread, balanced, so a short input
/// (a few hundred frames) keeps every core busy.
fn tile_len(c_in: usize, len: usize) -> usize {
    const BLOCK_FLOATS: usize = 65_536;
    let max = (BLOCK_FLOATS / c_in.max(1) / TILE_STEP * TILE_STEP).clamp(TILE_STEP, 4096);
    balanced_tile_len(len, max)
}

/// A tile length of at most `max` steps (a multiple of the GEMM's 64-step
/// block, as `max` must be) that splits `len` into a multiple of rayon's
/// threads, each tile as long as the others.
pub(crate) fn balanced_tile_len(len: usize, max: usize) -> usize {
    if len == 0 {
        // No tiles at all; the length only has to be non-zero.
        return max.max(TILE_STEP);
    }
    let threads = rayon::current_num_threads().max(1);
    let tiles = len.div_ceil(max).div_ceil(threads) * threads;
    (len.div_ceil(tiles).div_ceil(TILE_STEP) * TILE_STEP).min(max)
}

/// Time steps a tile length is a multiple of: the GEMM kernels' 64-step block.
pub(crate) const TILE_STEP: usize = 64;

/// Where a tile's convolution reads its input: `c_in` rows `ld` apart,
/// column `u < len` holding sequence step `first + u`. Steps outside those
/// columns read as the sequence's zero padding, so the columns must hold
/// every step inside the sequence that the tile reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TileInput<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) ld: usize,
    pub(crate) first: usize,
    pub(crate) len: usize,
}

impl<'a> TileInput<'a> {
    /// A whole sequence: rows of `len` steps, one after another.
    pub(crate) fn whole(data: &'a [f32], len: usize) -> Self {
        Self {
            data,
            ld: len,
            first: 0,
            len,
        }
    }
}

/// What one thread's tiles reuse: the activated window and the GEMM's row
/// pointers into it.
#[derive(Debug, Default)]
pub(crate) struct TileScratch {
    window: Vec<f32>,
    rows: Vec<*const f32>,
}

/// A convolution's weights as its GEMM takes them: f32 (the default), or
/// integers (bytes or words) for `--precision int8`
/// ([`super::cpu_gemm_int8`]), whose inputs are then quantized per time
/// tile.
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
/// set of elements (a convolution's tiles and a residual stage's,
/// `super::cpu_mrf`: column ranges; attention's tasks: their own queries).
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub(crate) *mut f32);
// SAFETY: the tasks sharing it write disjoint elements of the output
// (checked at each use: `FusedConv::forward`, `MrfStage::forward`,
// `cpu_attention::attend`).
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

    /// The same convolution with integer weights (one scale per output
    /// channel) and its input quantized per time tile, as `lanes` says:
    /// bytes (2.9× the multiply-adds per instruction of f32 with AVX-512
    /// VNNI) or words (1.5×, finer), at a quantization error
    /// `docs/PERFORMANCE.md` measures. Already quantized: a clone.
    pub fn quantized(&self, lanes: Lanes) -> Self {
        let Weights::F32(packed) = &self.weight else {
            return self.clone();
        };
        let (c_in, k, per_lane) = (self.c_in, self.kernel, lanes.channels());
        let w = packed.to_row_major();
        // Lane row (g, j): channels per_lane·g.. at tap j.
        let column = |row: usize, b: usize| {
            let (g, j) = (row / k, row % k);
            let c = per_lane * g + b;
            (c < c_in).then_some(c * k + j)
        };
        let groups = c_in.div_ceil(per_lane) * k;
        let matrix = QuantizedMatrix::new(&w, self.c_out, c_in * k, lanes, groups, column);
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
        let tile_len = tile_len(self.c_in, len);
        let tiles = len.div_ceil(tile_len);
        let input = TileInput::whole(xs, len);
        (0..tiles)
            .into_par_iter()
            .for_each_init(TileScratch::default, |scratch, tile| {
                let t0 = tile * tile_len;
                let n = tile_len.min(len - t0);
                let init = match residual {
                    // SAFETY: the residual has the output's shape.
                    Some(r) => Init::From(unsafe { r.as_ptr().add(t0) }, len),
                    None => Init::Zero,
                };
                // SAFETY: this tile owns columns t0..t0+n of every output row
                // (no other tile touches them, and `ys` outlives the loop); the
                // residual's rows hold `len` steps from column 0.
                unsafe {
                    self.tile_f32(
                        packed,
                        input,
                        t0,
                        n,
                        slope,
                        init,
                        out.get().add(t0),
                        len,
                        scratch,
                    )
                };
            });
    }

    /// Steps `t0..t0 + n` of `init + bias + conv(act(input))` into `dst`
    /// (`c_out` rows `ld_dst` apart), single-threaded: the activated window
    /// of those steps is written into `scratch`, and the GEMM reads each
    /// tap's rows through pointers into it.
    ///
    /// # Safety
    /// `dst` must be writable at `o · ld_dst + u` for `o < c_out`, `u < n`,
    /// with nothing else accessing those elements during the call; an
    /// [`Init::From`] source must be readable at the same offsets and
    /// overlap none of them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn tile_f32(
        &self,
        packed: &PackedMatrix,
        input: TileInput<'_>,
        t0: usize,
        n: usize,
        slope: f32,
        init: Init,
        dst: *mut f32,
        ld_dst: usize,
        scratch: &mut TileScratch,
    ) {
        let (c_in, k, d) = (self.c_in, self.kernel, self.dilation);
        // window[c, u] = act(x[c, t0 - pad + u]), zero outside the
        // sequence; the im2col row (c, j) is window[c] shifted by j·d.
        let width = n + d * (k - 1);
        if scratch.window.len() < c_in * width {
            scratch.window.resize(c_in * width, 0.0);
        }
        // The window's first step, relative to the input's first column.
        let start = t0 as isize - self.left_pad as isize - input.first as isize;
        scratch.rows.clear();
        for c in 0..c_in {
            let win = &mut scratch.window[c * width..(c + 1) * width];
            activate_window(&input.data[c * input.ld..][..input.len], start, slope, win);
            scratch.rows.extend((0..k).map(|j| win[j * d..].as_ptr()));
        }
        // SAFETY: the caller's contract for `dst` and the start matrix;
        // row (c, j) has (k - 1 - j)·d + n ≥ n readable elements.
        unsafe {
            packed.product(n, dst, ld_dst, &scratch.rows, init, Some(&self.bias));
        }
    }

    /// The f32 weights, if the convolution has them (not after
    /// [`Self::quantized`]).
    pub(crate) fn f32_weights(&self) -> Option<&PackedMatrix> {
        match &self.weight {
            Weights::F32(packed) => Some(packed),
            Weights::Int8(_) => None,
        }
    }

    /// Input and output channels.
    pub(crate) fn channels(&self) -> (usize, usize) {
        (self.c_in, self.c_out)
    }

    /// Input steps a tile reads before and after its own: the left
    /// padding and the rest of `dilation · (kernel − 1)`.
    pub(crate) fn reach(&self) -> (usize, usize) {
        let span = self.dilation * (self.kernel - 1);
        (self.left_pad, span - self.left_pad)
    }

    /// [`Self::forward_item`] on integer weights: each tile's activated
    /// window is quantized to the matrix's lanes.
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
        let groups = c_in.div_ceil(matrix.lanes().channels());
        let tile_len = tile_len(c_in, len);
        let tiles = len.div_ceil(tile_len);
        let width = tile_len + d * (k - 1);
        (0..tiles).into_par_iter().for_each_init(
            || (vec![0u32; groups * width], Vec::with_capacity(groups * k)),
            |(window, row_ptrs), tile| {
                let t0 = tile * tile_len;
                let n = tile_len.min(len - t0);
                let width = n + d * (k - 1);
                let start = t0 as isize - self.left_pad as isize;
                let window = &mut window[..groups * width];
                let scale = quantize_window(xs, c_in, len, start, slope, matrix, window);
                // Lane row (g, j) is group g of the window shifted by j·d.
                row_ptrs.clear();
                for g in 0..groups {
                    row_ptrs.extend((0..k).map(|j| window[g * width + j * d..].as_ptr()));
                }
                let init = match residual {
                    // SAFETY: the residual has the output's shape.
                    Some(r) => Init::From(unsafe { r.as_ptr().add(t0) }, len),
                    None => Init::Zero,
                };
                // SAFETY: this tile owns columns t0..t0+n of every output row;
                // lane row (g, j) has (k - 1 - j)·d + n ≥ n readable lanes.
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

    /// The same convolution with integer weights (one scale per output
    /// phase and channel) and its input quantized per tile, as
    /// [`FusedConv::quantized`]. Already quantized: a clone.
    pub fn quantized(&self, lanes: Lanes) -> Self {
        let Weights::F32(packed) = &self.weight else {
            return self.clone();
        };
        let (c_in, per_lane) = (self.c_in, lanes.channels());
        let groups = c_in.div_ceil(per_lane);
        let w = packed.to_row_major();
        // Lane row (j, g): channels per_lane·g.. at input offset j.
        let column = |row: usize, b: usize| {
            let (j, g) = (row / groups, row % groups);
            let i = per_lane * g + b;
            (i < c_in).then_some(j * c_in + i)
        };
        let matrix = QuantizedMatrix::new(
            &w,
            self.stride * self.c_out,
            self.taps * c_in,
            lanes,
            self.taps * groups,
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
        let groups = match &self.weight {
            Weights::F32(_) => 0,
            Weights::Int8(matrix) => c_in.div_ceil(matrix.lanes().channels()),
        };
        (0..tiles).into_par_iter().for_each_init(
            || {
                let (f32_width, int_width) = match self.weight {
                    Weights::F32(_) => (width, 0),
                    Weights::Int8(_) => (0, width),
                };
                (
                    vec![0f32; c_in * f32_width],
                    vec![0u32; groups * int_width],
                    Vec::with_capacity(taps * c_in),
                    Vec::with_capacity(taps * groups),
                    vec![0f32; phases * TRANSPOSE_TILE],
                )
            },
            |(window, levels, row_ptrs, lane_ptrs, prod), tile| {
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
                        let window = &mut levels[..groups * width];
                        let scale = quantize_window(xs, c_in, len, start, slope, matrix, window);
                        lane_ptrs.clear();
                        for j in 0..taps {
                            lane_ptrs.extend(
                                (0..groups).map(|g| window[g * width + taps - 1 - j..].as_ptr()),
                            );
                        }
                        // SAFETY: as above, with n readable lanes per lane row.
                        unsafe {
                            matrix.product(
                                n,
                                prod.as_mut_ptr(),
                                TRANSPOSE_TILE,
                                lane_ptrs,
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
        let (channels, kernel) = depthwise_dims(weight, dilation)?;
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
        check_depthwise_channels(c, self.channels)?;
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

/// `(channels, kernel)` of a depth-wise weight `[channels, 1, k]` with "same"
/// padding at `dilation`; anything else is an error naming the shape.
pub(crate) fn depthwise_dims(weight: &Tensor, dilation: usize) -> Result<(usize, usize)> {
    let (channels, one, kernel) = weight.dims3()?;
    check_same_padding(kernel, dilation)?;
    if one != 1 {
        candle_core::bail!(
            "depth-wise conv: weight {:?} is not [c, 1, k]",
            weight.dims()
        );
    }
    Ok((channels, kernel))
}

/// An input of `have` channels for depth-wise weights of `want` is an error.
pub(crate) fn check_depthwise_channels(have: usize, want: usize) -> Result<()> {
    if have != want {
        candle_core::bail!("depth-wise conv: {have} channels, weights expect {want}");
    }
    Ok(())
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
/// leaky ReLU of `slope`) for `u < width = window.len() / groups` into
/// `window[g·width + u]`, the lanes `matrix` takes (channels `4g..4g + 4`
/// as bytes or `2g..2g + 2` as words; channels past `c_in` hold the level
/// for zero), with one scale for the whole window, which it returns. The
/// leaky ReLU is monotone on each side of zero, so the range of its
/// outputs is that of its inputs' extremes and zero.
fn quantize_window(
    xs: &[f32],
    c_in: usize,
    len: usize,
    start: isize,
    slope: f32,
    matrix: &QuantizedMatrix,
    window: &mut [u32],
) -> ActScale {
    // AVX2 on the AVX-512 paths too: an AVX-512 copy took 0.75 % less of
    // the whole process's CPU time (docs/PERFORMANCE.md), not worth a
    // second copy.
    #[cfg(target_arch = "x86_64")]
    if super::cpu_kernel::avx2() {
        // SAFETY: the CPU runs AVX2 and FMA.
        return unsafe { quantize_window_avx2(xs, c_in, len, start, slope, matrix, window) };
    }
    quantize_window_lanes(xs, c_in, len, start, slope, matrix, window)
}

/// Where a window's time steps fall in the input: `[lo_u, hi_u)` of the
/// window is inside, starting at input step `from`.
struct WindowSpan {
    groups: usize,
    width: usize,
    lo_u: usize,
    hi_u: usize,
    from: usize,
}

impl WindowSpan {
    fn new(c_in: usize, per_lane: usize, len: usize, start: isize, window: usize) -> Self {
        let groups = c_in.div_ceil(per_lane);
        let width = window / groups.max(1);
        let lo_u = (-start).clamp(0, width as isize) as usize;
        let hi_u = (len as isize - start).clamp(lo_u as isize, width as isize) as usize;
        Self {
            groups,
            width,
            lo_u,
            hi_u,
            from: (start + lo_u as isize).max(0) as usize,
        }
    }

    fn inside(&self) -> usize {
        self.hi_u - self.lo_u
    }
}

/// A lane of `per_lane` levels from `level(b)`, each in its `32 / per_lane` bits.
#[inline(always)]
fn pack_lane(per_lane: usize, level: impl Fn(usize) -> i32) -> u32 {
    let bits = 32 / per_lane;
    let keep = ((1u64 << bits) - 1) as u32;
    (0..per_lane).fold(0, |lane, b| lane | (level(b) as u32 & keep) << (bits * b))
}

/// [`quantize_window`] with AVX2 intrinsics, 8 time steps a vector (LLVM
/// keeps `f32::min`'s NaN rule and `as`'s saturation scalar). The levels
/// equal the portable loops' for every input: `vfmadd` and `vcvtps2dq`
/// (round to nearest even) round as `mul_add` and `round_ties_even` do,
/// the clamp to the integer bounds happens in f32 before the conversion
/// (so ±inf and huge values saturate as `f32::max`/`min` make them), and
/// the activation takes NaN to 0 in both.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_window_avx2(
    xs: &[f32],
    c_in: usize,
    len: usize,
    start: isize,
    slope: f32,
    matrix: &QuantizedMatrix,
    window: &mut [u32],
) -> ActScale {
    use std::arch::x86_64::*;
    /// `-1` for a lane to use, `0` for one to skip: eight lanes from `8 − n`.
    const LANES: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    let per_lane = matrix.lanes().channels();
    let span = WindowSpan::new(c_in, per_lane, len, start, window.len());
    let inside = span.inside();
    let channel = |c: usize| &xs[c * len + span.from..][..inside];
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
            // The accumulator second: `vminps` returns it when `v` is NaN,
            // which `f32::min` skips too.
            lo = _mm256_min_ps(v, lo);
            hi = _mm256_max_ps(v, hi);
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
    let scale = matrix.activation_scale(a.min(b), a.max(b));
    let level = scale.quantizer();
    let pad = pack_lane(per_lane, |_| scale.zero);
    let inverse = _mm256_set1_ps(1.0 / scale.scale);
    let zero_f = _mm256_set1_ps(scale.zero as f32);
    let slope_v = _mm256_set1_ps(slope);
    let (bottom, top) = (
        _mm256_set1_ps(scale.min as f32),
        _mm256_set1_ps(scale.max as f32),
    );
    let quantize = |v: __m256| {
        let act = _mm256_add_ps(
            _mm256_max_ps(v, zeros),
            _mm256_mul_ps(slope_v, _mm256_min_ps(v, zeros)),
        );
        // Clamped before the conversion, the level's operand second
        // (`vmaxps` returns `bottom` for NaN, as `f32::max` does).
        let q = _mm256_fmadd_ps(act, inverse, zero_f);
        _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(q, bottom), top))
    };
    let low_word = _mm256_set1_epi32(0xffff);
    for g in 0..span.groups {
        let lanes = &mut window[g * span.width..(g + 1) * span.width];
        lanes[..span.lo_u].fill(pad);
        lanes[span.hi_u..].fill(pad);
        if inside == 0 {
            continue;
        }
        let lanes = &mut lanes[span.lo_u..span.hi_u];
        let first = per_lane * g;
        if first + per_lane > c_in {
            // A last group only partly filled: lane by lane.
            for (u, lane) in lanes.iter_mut().enumerate() {
                *lane = pack_lane(per_lane, |b| match first + b {
                    c if c < c_in => level.level(act(channel(c)[u])),
                    _ => scale.zero,
                });
            }
            continue;
        }
        let mut rows = [std::ptr::null::<f32>(); 4];
        for (b, row) in rows.iter_mut().enumerate().take(per_lane) {
            *row = channel(first + b).as_ptr();
        }
        for u in (0..inside).step_by(8) {
            let m = mask(u);
            // SAFETY: each channel slice and `lanes` hold `inside` values;
            // lanes past it are masked off.
            unsafe {
                let level = |b: usize| quantize(_mm256_maskload_ps(rows[b].add(u), m));
                let packed = if per_lane == 4 {
                    // Bytes: levels 0..=255, no masking needed.
                    _mm256_or_si256(
                        _mm256_or_si256(level(0), _mm256_slli_epi32::<8>(level(1))),
                        _mm256_or_si256(
                            _mm256_slli_epi32::<16>(level(2)),
                            _mm256_slli_epi32::<24>(level(3)),
                        ),
                    )
                } else {
                    // Words: the low 16 bits of each signed level.
                    _mm256_or_si256(
                        _mm256_and_si256(level(0), low_word),
                        _mm256_slli_epi32::<16>(level(1)),
                    )
                };
                _mm256_maskstore_epi32(lanes.as_mut_ptr().add(u).cast(), m, packed);
            }
        }
    }
    scale
}

/// [`quantize_window`]'s portable loops (and the SIMD version's reference).
fn quantize_window_lanes(
    xs: &[f32],
    c_in: usize,
    len: usize,
    start: isize,
    slope: f32,
    matrix: &QuantizedMatrix,
    window: &mut [u32],
) -> ActScale {
    let per_lane = matrix.lanes().channels();
    let span = WindowSpan::new(c_in, per_lane, len, start, window.len());
    let inside = span.inside();
    let channel = |c: usize| &xs[c * len + span.from..][..inside];
    let (mut lo, mut hi) = (0f32, 0f32);
    for c in (0..c_in).filter(|_| inside > 0) {
        for &v in channel(c) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    let act = |x: f32| x.max(0.0) + slope * x.min(0.0);
    let (a, b) = (act(lo), act(hi));
    let scale = matrix.activation_scale(a.min(b), a.max(b));
    let level = scale.quantizer();
    let pad = pack_lane(per_lane, |_| scale.zero);
    for g in 0..span.groups {
        let lanes = &mut window[g * span.width..(g + 1) * span.width];
        lanes[..span.lo_u].fill(pad);
        lanes[span.hi_u..].fill(pad);
        for (u, lane) in lanes[span.lo_u..span.hi_u].iter_mut().enumerate() {
            *lane = pack_lane(per_lane, |b| match per_lane * g + b {
                c if c < c_in => level.level(act(channel(c)[u])),
                _ => scale.zero,
            });
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

    /// The quantized convolutions' bound on relative L2 error against f32
    /// on these random layers; measured on the first shapes: bytes 6.9e-3
    /// and 7.8e-3 (a byte per activation over the tile's range, a signed
    /// byte per weight over its row's), words 5.3e-4 and 6.0e-4 (11-bit
    /// weights).
    fn bound(lanes: Lanes) -> f32 {
        match lanes {
            Lanes::Bytes => 2e-2,
            Lanes::Words => 2e-3,
        }
    }

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
            let quantized = [Lanes::Bytes, Lanes::Words].map(|l| (l, conv.quantized(l)));
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
                    for (lanes, quantized) in &quantized {
                        let int8 = quantized.forward(&x, slope)?.narrow(0, item, 1)?;
                        let err = relative_l2(&int8, &want)?;
                        assert!(
                            err < bound(*lanes),
                            "{lanes:?} k{k} s{s} p{p} len{len} slope {slope}: {err}"
                        );
                    }
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
            // A last group of channels only half full: 6 (bytes), 5 (both).
            (6, 5, 3, 2, 150),
            (5, 4, 3, 1, 90),
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
            let quantized = [Lanes::Bytes, Lanes::Words].map(|l| (l, conv.quantized(l)));
            for (lanes, quantized) in &quantized {
                let err = relative_l2(&quantized.forward(&x, 0.1, None)?, &want)?;
                assert!(
                    err < bound(*lanes),
                    "{lanes:?} {c_in}x{c_out} k{k} d{d} len{len}: {err}"
                );
                if c_in == c_out {
                    let got = quantized.forward(&x, 0.1, Some(&x))?;
                    let err = relative_l2(&(got - &x)?, &want)?;
                    assert!(
                        err < bound(*lanes),
                        "{lanes:?} residual {c_in} k{k} d{d} len{len}: {err}"
                    );
                }
            }
            let plain = conv.forward(&x, 1.0, None)?;
            let want = x
                .conv1d(&w, pad, 1, d, 1)?
                .broadcast_add(&bias.reshape((1, c_out, 1))?)?;
            assert!(max_diff(&plain, &want)? < 1e-4);
            for (lanes, quantized) in &quantized {
                let err = relative_l2(&quantized.forward(&x, 1.0, None)?, &want)?;
                assert!(
                    err < bound(*lanes),
                    "{lanes:?} unactivated {c_in}x{c_out} k{k} d{d} len{len}: {err}"
                );
            }
        }
        Ok(())
    }

    /// The AVX2 window quantizer writes the portable loops' levels and
    /// scale, at every offset (padding on either side, none, all), with
    /// and without the activation, for full and partial groups of bytes
    /// and of words.
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
            let clean: Vec<f32> = (0..c_in * len).map(|_| 3.0 * rand()).collect();
            // What a broken input may hold: both paths must agree on it too.
            // NaN in the lane of an earlier extreme (steps 0 and 2, then 8
            // and 10 of channel 0) must not drop it from the range;
            // infinities and huge values saturate alike.
            let mut nan = clean.clone();
            for (i, v) in [(0, -50.0), (2, 60.0), (8, f32::NAN), (10, f32::NAN)] {
                nan[i] = v;
            }
            let mut huge = clean.clone();
            for (i, v) in [f32::INFINITY, f32::NEG_INFINITY, 1e38, -1e38, f32::NAN]
                .into_iter()
                .enumerate()
            {
                huge[(7 * i + 3) % (c_in * len)] = v;
            }
            for (xs, lanes) in [clean, nan, huge]
                .iter()
                .flat_map(|xs| [(xs, Lanes::Bytes), (xs, Lanes::Words)])
            {
                let per = lanes.channels();
                let (groups, bits) = (c_in.div_ceil(per), 32 / per);
                let column = |g: usize, b: usize| Some(per * g + b).filter(|&c| c < c_in);
                let matrix = QuantizedMatrix::new(&vec![1.0; c_in], 1, c_in, lanes, groups, column);
                for start in [-30isize, -3, 0, 5, 20, 60, 200] {
                    for slope in [1.0, 0.1] {
                        let mut want = vec![0u32; groups * width];
                        let scale =
                            quantize_window_lanes(xs, c_in, len, start, slope, &matrix, &mut want);
                        // Padding is the zero level, inside the activation's.
                        let level = scale.quantizer();
                        for g in 0..groups {
                            for u in 0..width {
                                let t = start + u as isize;
                                for b in 0..per {
                                    let c = per * g + b;
                                    let v = match (c < c_in, (0..len as isize).contains(&t)) {
                                        (true, true) => {
                                            let x = xs[c * len + t as usize];
                                            level.level(x.max(0.0) + slope * x.min(0.0))
                                        }
                                        _ => scale.zero,
                                    };
                                    let keep = ((1u64 << bits) - 1) as u32;
                                    let got = want[g * width + u] >> (bits * b) & keep;
                                    assert_eq!(
                                        got,
                                        v as u32 & keep,
                                        "{lanes:?} c{c} t{t} start {start}"
                                    );
                                }
                            }
                        }
                        #[cfg(target_arch = "x86_64")]
                        if cpu.avx2_fma {
                            let mut got = vec![0u32; groups * width];
                            // SAFETY: the CPU runs AVX2 and FMA.
                            let s = unsafe {
                                quantize_window_avx2(xs, c_in, len, start, slope, &matrix, &mut got)
                            };
                            assert_eq!(
                                (s, &got),
                                (scale, &want),
                                "avx2 {lanes:?} {c_in} {len} {start} {slope}"
                            );
                        }
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
