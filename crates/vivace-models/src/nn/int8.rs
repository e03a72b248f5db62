//! The integer arithmetic of onnxruntime's dynamically quantized linear
//! layers, as its quantizer writes them into a graph: the activation is
//! quantized per tensor (`DynamicQuantizeLinear`: uint8, scale
//! `(max − min) / 255` over a range that holds 0, zero point rounded half
//! to even), multiplied by int8 weights with their per-column zero points
//! in exact int32 arithmetic (`MatMulInteger`), then scaled by
//! `activation scale × column scale` and the bias added. Integer products
//! are exact, so this matches onnxruntime's output to the last bit where
//! the input does, and the float rendering of the same weights only to the
//! activation rounding it adds.

use rayon::prelude::*;

use crate::error::Result;
use crate::nn::cpu_ops::with_wide_vectors;
use crate::nn::int8_quads::{self, ByteColumns, QuadWeights};
use crate::onnx::{GraphNode, OnnxGraph};

/// Values a tensor must hold before quantizing it is split over rayon's
/// pool (below that, the hand-off costs more than it saves: the LSTMs
/// quantize a few hundred values a step).
const PARALLEL_VALUES: usize = 1 << 15;
/// Values a parallel piece of quantizing takes.
const PIECE: usize = 1 << 14;

/// `DynamicQuantizeLinear`: `x` as uint8 in `out`, with its scale and zero
/// point. An all-zero (or empty) tensor gets scale 1, as onnxruntime gives.
pub fn dynamic_quantize(x: &[f32], out: &mut Vec<u8>) -> (f32, u8) {
    let (min, max) = if x.len() >= PARALLEL_VALUES {
        x.par_chunks(PIECE)
            .map(range)
            .reduce(|| (0.0, 0.0), |a, b| (a.0.min(b.0), a.1.max(b.1)))
    } else {
        range(x)
    };
    let scale = if max == min { 1.0 } else { (max - min) / 255.0 };
    let zero_point = (0.0 - min / scale).clamp(0.0, 255.0).round_ties_even();
    out.clear();
    out.resize(x.len(), 0);
    if x.len() >= PARALLEL_VALUES {
        out.par_chunks_mut(PIECE)
            .zip(x.par_chunks(PIECE))
            .for_each(|(q, v)| quantize_piece(v, q, scale, zero_point));
    } else {
        quantize_piece(x, out, scale, zero_point);
    }
    (scale, zero_point as u8)
}

/// The smallest and largest value of `x`, with 0 in the range (min/max
/// are exact, so pieces may be combined in any order).
fn range(x: &[f32]) -> (f32, f32) {
    with_wide_vectors(
        #[inline(always)]
        || {
            let (mut lo, mut hi) = ([0f32; 16], [0f32; 16]);
            let mut chunks = x.chunks_exact(16);
            for c in &mut chunks {
                // Comparisons and selects (one `vminps`/`vmaxps` a
                // vector); `f32::min`'s NaN rule costs a blend a vector.
                for k in 0..16 {
                    lo[k] = if c[k] < lo[k] { c[k] } else { lo[k] };
                    hi[k] = if c[k] > hi[k] { c[k] } else { hi[k] };
                }
            }
            let rest = chunks.remainder().iter();
            let lo = lo.iter().chain(rest.clone()).fold(0f32, |a, &v| a.min(v));
            let hi = hi.iter().chain(rest).fold(0f32, |a, &v| a.max(v));
            (lo, hi)
        },
    )
}

/// `round_half_even(v / scale) + zero_point`, saturated to a byte, for
/// every value of `x`, in a loop that vectorizes: the scalars are copies
/// (the byte stores cannot alias them), and the byte is read from the bits
/// of `r + 1.5·2²³` (for an integer `0 ≤ r ≤ 255` its low mantissa byte is
/// `r`) where `r as u8`'s saturating conversion would be scalar.
fn quantize_piece(x: &[f32], out: &mut [u8], scale: f32, zero_point: f32) {
    const ROUND: f32 = 12_582_912.0;
    let (lo, hi) = (-zero_point, 255.0 - zero_point);
    with_wide_vectors(
        #[inline(always)]
        || {
            for (q, &v) in out.iter_mut().zip(x) {
                // max/min also map NaN to `lo`.
                let r = (v / scale).max(lo).min(hi).round_ties_even() + zero_point;
                *q = (r + ROUND).to_bits() as u8;
            }
        },
    )
}

/// How a [`QuantizedLinear`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Arithmetic {
    /// onnxruntime's: activations quantized to uint8, integer products.
    #[default]
    Int8,
    /// The float rendering: the dequantized weights times the float
    /// activations (what the int8 model approximates).
    Float,
}

/// A `MatMulInteger` layer with its scales and bias: `[K, N]` int8
/// weights, per-column zero points and scales.
pub struct QuantizedLinear {
    k: usize,
    n: usize,
    /// `q − zero_point` per column, column-major (`n` rows of `k`).
    weight: Vec<i16>,
    /// Per-column weight scale.
    scale: Vec<f32>,
    bias: Option<Vec<f32>>,
    /// The weights as signed bytes for the `vpdpbusd` kernel, where the
    /// CPU has it.
    bytes: Option<ByteColumns>,
}

impl QuantizedLinear {
    /// The layer whose `MatMulInteger` node is `node` (its weight input 1,
    /// zero point input 3, scale `NAME_scale` beside `NAME_quantized`),
    /// with the float initializer `bias` added after, if named.
    pub fn from_graph(graph: &OnnxGraph, node: &str, bias: Option<&str>) -> Result<Self> {
        let found = graph.node(node, "MatMulInteger")?;
        let StoredWeight {
            dims,
            q,
            scale,
            zero_point,
        } = quantized_weight(graph, found, 1, None, 3)?;
        let quantized = input(graph, found, 1)?;
        let [k, n] = dims[..] else {
            return Err(graph.corrupt(format!("`{quantized}` is {dims:?}, not [K, N]")));
        };
        let per_column = |v: Vec<f32>, what: &str| match v.len() {
            1 => Ok(vec![v[0]; n]),
            len if len == n => Ok(v),
            len => Err(graph.corrupt(format!("`{node}`: {len} {what} for {n} columns"))),
        };
        let zero_point = per_column(zero_point, "zero points")?;
        let scale = per_column(scale, "scales")?;
        let mut weight = vec![0i16; k * n];
        for (i, &v) in q.iter().enumerate() {
            let (row, col) = (i / n, i % n);
            // Both are int8 values held exactly in f32.
            weight[col * k + row] = (v - zero_point[col]) as i16;
        }
        let bias = bias
            .map(|name| {
                let (_, b) = graph.values(name)?;
                if b.len() != n {
                    return Err(
                        graph.corrupt(format!("`{name}` has {} values for {n} columns", b.len()))
                    );
                }
                Ok(b)
            })
            .transpose()?;
        let bytes = int8_quads::available()
            .then(|| ByteColumns::new(&weight, k))
            .flatten();
        Ok(Self {
            k,
            n,
            weight,
            scale,
            bias,
            bytes,
        })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.k
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.n
    }

    /// `x` (`rows × K`, row-major) through the layer (`rows × N`), in the
    /// arithmetic asked for.
    pub fn apply(&self, x: &[f32], arithmetic: Arithmetic) -> Vec<f32> {
        match arithmetic {
            Arithmetic::Int8 => self.forward(x),
            Arithmetic::Float => self.forward_float(x),
        }
    }

    /// The float rendering: `x · W + b` with `W = (q − zero point) · scale`.
    pub fn forward_float(&self, x: &[f32]) -> Vec<f32> {
        let rows = x.len().checked_div(self.k).unwrap_or(0);
        let mut out = vec![0f32; rows * self.n];
        for c in 0..self.n {
            let w: Vec<f32> = self.weight[c * self.k..(c + 1) * self.k]
                .iter()
                .map(|&q| f32::from(q) * self.scale[c])
                .collect();
            for r in 0..rows {
                let y: f32 = x[r * self.k..(r + 1) * self.k]
                    .iter()
                    .zip(&w)
                    .map(|(a, b)| a * b)
                    .sum();
                out[r * self.n + c] = self.bias.as_ref().map_or(y, |b| b[c] + y);
            }
        }
        out
    }

    /// `x` (`rows × K`, row-major) through the layer in onnxruntime's int8
    /// arithmetic: `rows × N`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut quantized = Vec::new();
        let (a_scale, a_zero) = dynamic_quantize(x, &mut quantized);
        let rows = x.len().checked_div(self.k).unwrap_or(0);
        // The int32 sums, column by column (`n × rows`).
        let sums = column_sums(
            &self.weight,
            self.bytes.as_ref(),
            self.k,
            &quantized[..rows * self.k],
            a_zero,
        );
        let mut out = vec![0f32; rows * self.n];
        for (c, column) in sums.chunks_exact(rows.max(1)).enumerate() {
            let scale = a_scale * self.scale[c];
            for (r, &acc) in column.iter().enumerate() {
                let y = acc as f32 * scale;
                out[r * self.n + c] = match &self.bias {
                    Some(b) => b[c] + y,
                    None => y,
                };
            }
        }
        out
    }
}

/// `Σ (x − x_zero)·w` (`n × rows`, column-major) of `x` (`rows × k`
/// unsigned bytes) and the `n` columns of `weight` (`k` values `w − wz`
/// each): the `vpdpbusd` kernel where the columns were packed as `bytes`,
/// else i16 columns in parallel on rayon's pool (a column's weights stay
/// in L1 while the rows pass over them), each compiled for the widest
/// vectors the CPU has. Integer sums: both give the same values.
fn column_sums(
    weight: &[i16],
    bytes: Option<&ByteColumns>,
    k: usize,
    x: &[u8],
    x_zero: u8,
) -> Vec<i32> {
    let rows = x.len().checked_div(k).unwrap_or(0);
    if let Some(bytes) = bytes {
        return int8_quads::linear_sums(bytes, &x[..rows * k], x_zero);
    }
    let a: Vec<i16> = x
        .iter()
        .map(|&q| i16::from(q) - i16::from(x_zero))
        .collect();
    let n = weight.len().checked_div(k).unwrap_or(0);
    let mut sums = vec![0i32; n * rows];
    sums.par_chunks_mut(rows.max(1))
        .enumerate()
        .for_each(|(c, column)| {
            with_wide_vectors(|| {
                let w = &weight[c * k..(c + 1) * k];
                for (r, o) in column.iter_mut().enumerate() {
                    *o = a[r * k..(r + 1) * k]
                        .iter()
                        .zip(w)
                        .map(|(&x, &y)| i32::from(x) * i32::from(y))
                        .sum();
                }
            });
        });
    sums
}

/// A node's input `slot`, which must be given.
fn input<'a>(graph: &OnnxGraph, node: &'a GraphNode, slot: usize) -> Result<&'a String> {
    node.inputs
        .get(slot)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| graph.corrupt(format!("`{}` has no input {slot}", node.name)))
}

/// A quantized weight as stored: dims, values, scales, zero points.
struct StoredWeight {
    dims: Vec<usize>,
    q: Vec<f32>,
    scale: Vec<f32>,
    zero_point: Vec<f32>,
}

/// A quantized weight's values, scale and zero point (`NAME_quantized`,
/// `NAME_scale` or the node's input `scale_slot`, and the zero point the
/// reading node takes in `zp_slot`).
fn quantized_weight(
    graph: &OnnxGraph,
    node: &GraphNode,
    w_slot: usize,
    scale_slot: Option<usize>,
    zp_slot: usize,
) -> Result<StoredWeight> {
    let quantized = input(graph, node, w_slot)?;
    let (dims, q) = graph.values(quantized)?;
    let scale = match scale_slot {
        Some(slot) => graph.values(input(graph, node, slot)?)?.1,
        None => {
            let base = quantized.strip_suffix("_quantized").ok_or_else(|| {
                graph.corrupt(format!(
                    "`{}` reads `{quantized}`, not a quantized weight",
                    node.name
                ))
            })?;
            graph.values(&format!("{base}_scale"))?.1
        }
    };
    let (_, zero_point) = graph.values(input(graph, node, zp_slot)?)?;
    Ok(StoredWeight {
        dims,
        q,
        scale,
        zero_point,
    })
}

/// A `ConvInteger` 1-D convolution with its bias, as the quantizer writes
/// it: the input quantized per tensor, uint8 weights with one zero point
/// and scale, the bias quantized at run time to
/// `floor(bias / (input scale × weight scale))` and added to the int32
/// sums, then scaled back.
///
/// A strided convolution is computed as a stride-1 one over its input's
/// phases (space to depth): with stride `s`, tap `k = m·s + r` reads phase
/// `r` of the padded input at step `i + m`, so the weights are stored as
/// `c_in·s` channels of `⌈kernel / s⌉` taps (taps past the kernel hold 0)
/// and the kernels below only ever see stride 1.
pub struct QuantizedConv1d {
    /// Input channels of the computed (phase-folded) convolution:
    /// the layer's input channels × `phases`.
    c_in: usize,
    c_out: usize,
    /// Taps of the computed convolution.
    kernel: usize,
    dilation: usize,
    /// The layer's stride, folded into the channels (1: none).
    phases: usize,
    /// The layer's receptive field, `dilation·(kernel − 1) + 1`.
    span: usize,
    pads: (usize, usize),
    /// `q − zero point`, `[c_out][c_in][kernel]` of the computed convolution.
    weight: Vec<i16>,
    scale: f32,
    bias: Vec<f32>,
    /// The weights packed for the four-channel `vpdpbusd` kernel, where
    /// the CPU has it and the weights are unsigned bytes.
    quads: Option<QuadWeights>,
}

/// A convolution's geometry as the graph gives it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvShape {
    /// Input channels.
    pub(crate) c_in: usize,
    /// Output channels.
    pub(crate) c_out: usize,
    /// Taps.
    pub(crate) kernel: usize,
    /// Step between taps.
    pub(crate) dilation: usize,
    /// Step between outputs.
    pub(crate) stride: usize,
    /// Zero steps before and after the input.
    pub(crate) pads: (usize, usize),
}

impl QuantizedConv1d {
    /// The convolution whose `ConvInteger` node is `node`, with the float
    /// initializer `bias` (none: a zero bias, which quantizes to 0, the
    /// same arithmetic as the graph's bias-less form).
    pub fn from_graph(graph: &OnnxGraph, node: &str, bias: Option<&str>) -> Result<Self> {
        let found = graph.node(node, "ConvInteger")?;
        let StoredWeight {
            dims,
            q,
            scale,
            zero_point,
        } = quantized_weight(graph, found, 1, None, 3)?;
        let [c_out, c_in, kernel] = dims[..] else {
            return Err(graph.corrupt(format!("`{node}`'s weight is {dims:?}, not 1-D")));
        };
        if kernel == 0 {
            return Err(graph.corrupt(format!("`{node}`'s weight has no taps")));
        }
        let (&[scale], &[zero_point]) = (&scale[..], &zero_point[..]) else {
            return Err(graph.corrupt(format!(
                "`{node}`: per-channel scales or zero points are not supported"
            )));
        };
        let ints = |name: &str| found.attribute(name).map(|a| a.ints.clone());
        let first = |name: &str| ints(name).and_then(|g| g.first().copied()).unwrap_or(1);
        let (group, stride, dilation) = (first("group"), first("strides"), first("dilations"));
        if group != 1 || stride < 1 || dilation < 1 || (stride > 1 && dilation > 1) {
            return Err(graph.corrupt(format!(
                "`{node}`: group {group}, stride {stride}, dilation {dilation} \
                 (supported: group 1, and a stride or a dilation, not both)"
            )));
        }
        let pads = ints("pads").unwrap_or_default();
        let pad = |k: usize| pads.get(k).map_or(0, |&p| usize::try_from(p).unwrap_or(0));
        let bias = match bias {
            Some(name) => graph.values(name)?.1,
            None => vec![0.0; c_out],
        };
        if bias.len() != c_out {
            return Err(graph.corrupt(format!(
                "`{node}`: {} biases for {c_out} channels",
                bias.len()
            )));
        }
        let shape = ConvShape {
            c_in,
            c_out,
            kernel,
            dilation: usize::try_from(dilation).unwrap_or(1),
            stride: usize::try_from(stride).unwrap_or(1),
            pads: (pad(0), pad(1)),
        };
        let weight: Vec<i16> = q.iter().map(|&v| (v - zero_point) as i16).collect();
        Ok(Self::new(shape, weight, zero_point as i32, scale, bias))
    }

    /// The convolution of `shape` with weights `w − zero` (`[c_out][c_in]
    /// [kernel]`), the weight scale and the float bias. A stride above 1
    /// needs dilation 1 (the caller checks).
    /// The caller passes `c_out` biases and `c_out·c_in·kernel` weights.
    pub(crate) fn new(
        shape: ConvShape,
        weight: Vec<i16>,
        zero: i32,
        scale: f32,
        bias: Vec<f32>,
    ) -> Self {
        let ConvShape {
            c_in,
            c_out,
            kernel,
            dilation,
            stride,
            pads,
        } = shape;
        let phases = stride.max(1);
        let folded_kernel = kernel.div_ceil(phases);
        let weight = if phases == 1 {
            weight
        } else {
            let mut folded = vec![0i16; c_out * c_in * phases * folded_kernel];
            for (i, &w) in weight.iter().enumerate().take(c_out * c_in * kernel) {
                let (row, k) = (i / kernel, i % kernel);
                let (m, r) = (k / phases, k % phases);
                folded[(row * phases + r) * folded_kernel + m] = w;
            }
            folded
        };
        let c_in = c_in * phases;
        let quads = int8_quads::available()
            .then(|| QuadWeights::new(&weight, zero, c_out, c_in, folded_kernel))
            .flatten();
        Self {
            c_in,
            c_out,
            kernel: folded_kernel,
            dilation: if phases == 1 { dilation.max(1) } else { 1 },
            phases,
            span: dilation.max(1) * (kernel.max(1) - 1) + 1,
            pads,
            weight,
            scale,
            bias,
            quads,
        }
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.c_out
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.c_in / self.phases
    }

    /// `x` (`c_in × T`, channel-major) through the convolution:
    /// `c_out × T'`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let channels = self.in_channels();
        let t = x.len().checked_div(channels).unwrap_or(0);
        let mut quantized = Vec::new();
        let (x_scale, x_zero) = dynamic_quantize(x, &mut quantized);
        let padded_t = t + self.pads.0 + self.pads.1;
        let t_out = if padded_t < self.span {
            0
        } else {
            (padded_t - self.span) / self.phases + 1
        };
        // The computed convolution's input: stride 1, `c_in` rows of `t_in`
        // steps, `pads` zero steps around them.
        let (input, t_in, pads) = if self.phases == 1 {
            (quantized, t, self.pads)
        } else {
            let len = (t_out + self.kernel).saturating_sub(1);
            let folded = fold_phases(&quantized, x_zero, t, self.pads.0, self.phases, len);
            (folded, len, (0, 0))
        };
        let scale = x_scale * self.scale;
        let sums = match &self.quads {
            Some(quads) => {
                let shape = int8_quads::Shape {
                    c_in: self.c_in,
                    c_out: self.c_out,
                    kernel: self.kernel,
                    dilation: self.dilation,
                    t: t_in,
                    pads,
                    t_out,
                };
                int8_quads::sums(quads, &input, x_zero, &shape)
            }
            None => {
                // Padded with the zero point, that is 0 once it is subtracted.
                let padded_t = t_in + pads.0 + pads.1;
                let mut padded = vec![0i16; self.c_in * padded_t];
                padded
                    .par_chunks_mut(padded_t.max(1))
                    .zip(input.par_chunks(t_in.max(1)))
                    .for_each(|(row, src)| {
                        for (p, &q) in row[pads.0..].iter_mut().zip(src) {
                            *p = i16::from(q) - i16::from(x_zero);
                        }
                    });
                self.sums(&padded, padded_t, t_out)
            }
        };
        let mut out = vec![0f32; self.c_out * t_out];
        out.par_chunks_mut(t_out.max(1))
            .zip(sums.par_chunks(t_out.max(1)))
            .zip(&self.bias)
            .for_each(|((row, sums), &bias)| {
                // floor(bias / scale) as int32, added to the sums.
                let bias = (bias / scale).floor() as i32;
                for (o, &a) in row.iter_mut().zip(sums) {
                    *o = a.wrapping_add(bias) as f32 * scale;
                }
            });
        out
    }
}

/// The phases of `x` (rows of `t` bytes, `pad` zero-point steps before
/// them): row `c·phases + r` holds steps `j·phases + r` of row `c` of the
/// padded input for `j < len`, the zero point where that is padding.
fn fold_phases(x: &[u8], zero: u8, t: usize, pad: usize, phases: usize, len: usize) -> Vec<u8> {
    let rows = x.len().checked_div(t).unwrap_or(0) * phases;
    let mut out = vec![zero; rows * len];
    out.par_chunks_mut(len.max(1))
        .enumerate()
        .for_each(|(row, dst)| {
            let (c, r) = (row / phases, row % phases);
            let src = &x[c * t..(c + 1) * t];
            for (j, d) in dst.iter_mut().enumerate() {
                if let Some(&v) = (j * phases + r).checked_sub(pad).and_then(|i| src.get(i)) {
                    *d = v;
                }
            }
        });
    out
}

impl QuantizedConv1d {
    /// The int32 sums `Σ w·x` (`c_out × t_out`) over the zero-point-free
    /// padded input (`c_in × padded_t`): two input channels a step with
    /// `vpmaddwd` where the CPU has AVX2, else plain loops. Integer sums,
    /// so both give the same values.
    fn sums(&self, padded: &[i16], padded_t: usize, t_out: usize) -> Vec<i32> {
        #[cfg(target_arch = "x86_64")]
        if crate::nn::cpu_kernel::avx2() {
            return self.sums_paired(padded, padded_t, t_out);
        }
        self.sums_portable(padded, padded_t, t_out)
    }

    /// The plain loops, output channels in parallel.
    fn sums_portable(&self, padded: &[i16], padded_t: usize, t_out: usize) -> Vec<i32> {
        let mut sums = vec![0i32; self.c_out * t_out];
        sums.par_chunks_mut(t_out.max(1))
            .enumerate()
            .for_each(|(co, acc)| {
                with_wide_vectors(|| {
                    for ci in 0..self.c_in {
                        let row = &padded[ci * padded_t..(ci + 1) * padded_t];
                        for kk in 0..self.kernel {
                            let w =
                                i32::from(self.weight[(co * self.c_in + ci) * self.kernel + kk]);
                            let start = kk * self.dilation;
                            for (a, &x) in acc.iter_mut().zip(&row[start..]) {
                                *a += w * i32::from(x);
                            }
                        }
                    }
                })
            });
        sums
    }

    /// Channel pairs interleaved into one i32 lane each, so that one
    /// `vpmaddwd` does two channels' products for eight steps.
    #[cfg(target_arch = "x86_64")]
    fn sums_paired(&self, padded: &[i16], padded_t: usize, t_out: usize) -> Vec<i32> {
        let pairs = self.c_in.div_ceil(2);
        let pack = |lo: i16, hi: i16| (u32::from(lo as u16) | (u32::from(hi as u16) << 16)) as i32;
        let channel = |c: usize, t: usize| {
            if c < self.c_in {
                padded[c * padded_t + t]
            } else {
                0
            }
        };
        let mut interleaved = vec![0i32; pairs * padded_t];
        for p in 0..pairs {
            for t in 0..padded_t {
                interleaved[p * padded_t + t] = pack(channel(2 * p, t), channel(2 * p + 1, t));
            }
        }
        let weight = |co: usize, c: usize, kk: usize| {
            if c < self.c_in {
                self.weight[(co * self.c_in + c) * self.kernel + kk]
            } else {
                0
            }
        };
        let taps = pairs * self.kernel;
        let mut sums = vec![0i32; self.c_out * t_out];
        let offsets: Vec<usize> = (0..taps)
            .map(|j| (j / self.kernel) * padded_t + (j % self.kernel) * self.dilation)
            .collect();
        let w_pairs = |co: usize| -> Vec<i32> {
            (0..taps)
                .map(|j| {
                    let (p, kk) = (j / self.kernel, j % self.kernel);
                    pack(weight(co, 2 * p, kk), weight(co, 2 * p + 1, kk))
                })
                .collect()
        };
        let t_out = t_out.max(1);
        // Blocks of BLOCK output channels in parallel on rayon's pool: each
        // loaded input vector serves the block's channels.
        sums.par_chunks_mut(BLOCK * t_out)
            .enumerate()
            .for_each(|(block, rows)| {
                let first = block * BLOCK;
                let weights: Vec<Vec<i32>> =
                    (first..first + rows.len() / t_out).map(w_pairs).collect();
                // The kernels' contract: AVX2 was detected by the caller.
                // Every tap reads
                // `interleaved[offset + t]` for `t < t_out`, and
                // `offset + t_out ≤ p·padded_t + (k−1)·d + t_out ≤ (p+1)·padded_t`
                // since `t_out = padded_t − (k−1)·d` for stride 1.
                let blocked: std::result::Result<[&mut [i32]; BLOCK], _> =
                    rows.chunks_exact_mut(t_out).collect::<Vec<_>>().try_into();
                match blocked {
                    Ok(rows) => {
                        let w: [&[i32]; BLOCK] = std::array::from_fn(|c| weights[c].as_slice());
                        // SAFETY: the kernels' contract, checked above.
                        unsafe { madd_rows_avx2(&interleaved, &offsets, w, rows) };
                    }
                    // The last block, with fewer channels: one at a time.
                    Err(rows) => {
                        for (out, w) in rows.into_iter().zip(&weights) {
                            // SAFETY: the kernels' contract, checked above.
                            unsafe { madd_row_avx2(&interleaved, &offsets, w, out) };
                        }
                    }
                }
            });
        sums
    }
}

/// Output channels a blocked kernel computes together.
#[cfg(target_arch = "x86_64")]
const BLOCK: usize = 4;

/// [`madd_row_avx2`] for [`BLOCK`] output channels at once: two 8-step
/// input loads feed every channel's two accumulators (8 registers).
///
/// # Safety
/// As [`madd_row_avx2`], for the shortest row of `out` (longer rows are
/// done to that length; weights shorter than `offsets` shorten the sum).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn madd_rows_avx2(
    interleaved: &[i32],
    offsets: &[usize],
    w: [&[i32]; BLOCK],
    mut out: [&mut [i32]; BLOCK],
) {
    use std::arch::x86_64::*;
    // Checked here, so that the loops' unchecked reads stay in bounds:
    // every row as long as the shortest, every tap with its weight.
    let n = out.iter().map(|row| row.len()).min().unwrap_or(0);
    let taps = w.iter().map(|wc| wc.len()).min().unwrap_or(0);
    let offsets = &offsets[..offsets.len().min(taps)];
    let base = interleaved.as_ptr();
    let mut t = 0;
    while t + 16 <= n {
        // SAFETY: as in `madd_row_avx2`, with `t + 16 ≤ n` for every row.
        unsafe {
            let mut acc = [[_mm256_setzero_si256(); 2]; BLOCK];
            for (j, &off) in offsets.iter().enumerate() {
                let src = base.add(off + t) as *const __m256i;
                let x = [_mm256_loadu_si256(src), _mm256_loadu_si256(src.add(1))];
                for (a, wc) in acc.iter_mut().zip(&w) {
                    let wv = _mm256_set1_epi32(*wc.get_unchecked(j));
                    for (ak, xk) in a.iter_mut().zip(&x) {
                        *ak = _mm256_add_epi32(*ak, _mm256_madd_epi16(*xk, wv));
                    }
                }
            }
            for (a, row) in acc.iter().zip(out.iter_mut()) {
                let dst = row.as_mut_ptr().add(t) as *mut __m256i;
                for (k, ak) in a.iter().enumerate() {
                    _mm256_storeu_si256(dst.add(k), *ak);
                }
            }
        }
        t += 16;
    }
    if t < n {
        for (row, wc) in out.into_iter().zip(w) {
            let shifted: Vec<usize> = offsets.iter().map(|&o| o + t).collect();
            // SAFETY: AVX2 is this function's contract; the tail's offsets
            // shift by `t`, keeping `off + t + (n − t) ≤ len`.
            unsafe { madd_row_avx2(interleaved, &shifted, wc, &mut row[t..n]) };
        }
    }
}

/// `out[t] = Σ_j madd(interleaved[offsets[j] + t], w[j])` for every `t`:
/// four vectors of eight steps at once, the rest one step at a time.
///
/// # Safety
/// The CPU must support AVX2, and `offsets[j] + out.len() ≤ interleaved.len()`
/// for every `j`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn madd_row_avx2(interleaved: &[i32], offsets: &[usize], w: &[i32], out: &mut [i32]) {
    use std::arch::x86_64::*;
    let n = out.len();
    let base = interleaved.as_ptr();
    let mut t = 0;
    while t + 32 <= n {
        // SAFETY: the caller guarantees `off + n ≤ interleaved.len()` for
        // every offset, and `t + 32 ≤ n`, so the four 8-lane loads at
        // `off + t` and the stores at `t` stay inside the slices; AVX2 is
        // present (this function's contract).
        unsafe {
            let (mut a0, mut a1, mut a2, mut a3) = (
                _mm256_setzero_si256(),
                _mm256_setzero_si256(),
                _mm256_setzero_si256(),
                _mm256_setzero_si256(),
            );
            for (&off, &wj) in offsets.iter().zip(w) {
                let wv = _mm256_set1_epi32(wj);
                let src = base.add(off + t) as *const __m256i;
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_loadu_si256(src), wv));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_loadu_si256(src.add(1)), wv));
                a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_loadu_si256(src.add(2)), wv));
                a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_loadu_si256(src.add(3)), wv));
            }
            let dst = out.as_mut_ptr().add(t) as *mut __m256i;
            _mm256_storeu_si256(dst, a0);
            _mm256_storeu_si256(dst.add(1), a1);
            _mm256_storeu_si256(dst.add(2), a2);
            _mm256_storeu_si256(dst.add(3), a3);
        }
        t += 32;
    }
    for (i, o) in out.iter_mut().enumerate().skip(t) {
        let mut acc = 0i32;
        for (&off, &wj) in offsets.iter().zip(w) {
            let x = interleaved[off + i];
            let (x0, x1) = (x as i16, (x >> 16) as i16);
            let (w0, w1) = (wj as i16, (wj >> 16) as i16);
            // Wrapping, as `vpmaddwd` and `vpaddd` wrap (real sums never
            // come near i32's range: at most 1,090 · 11 · 255² ≈ 7.8e8).
            let pair = (i32::from(x0) * i32::from(w0)).wrapping_add(i32::from(x1) * i32::from(w1));
            acc = acc.wrapping_add(pair);
        }
        *o = acc;
    }
}

/// A `DynamicQuantizeLSTM` (one or two directions, gates i, o, f, c):
/// the whole input sequence quantized per tensor once for its product with
/// `W` (every step's product computed up front, as one matrix product),
/// the hidden state quantized at every step for its product with `R`.
pub struct QuantizedLstm {
    input: usize,
    hidden: usize,
    /// Per direction: `W` as `[4H][input]` (`q − zero point`), its scale.
    w: Vec<(Vec<i16>, f32)>,
    /// Per direction: `W` packed for the `vpdpbusd` kernel, where the CPU
    /// has it and the weights are signed bytes.
    w_bytes: Vec<Option<ByteColumns>>,
    /// Per direction: `R` as `[4H][H]`, its scale.
    r: Vec<(Vec<i16>, f32)>,
    /// Per direction: `Wb + Rb` (`4H`).
    bias: Vec<Vec<f32>>,
}

impl QuantizedLstm {
    /// The LSTM whose `DynamicQuantizeLSTM` node is `node`.
    pub fn from_graph(graph: &OnnxGraph, node: &str) -> Result<Self> {
        let found = graph.node(node, "DynamicQuantizeLSTM")?;
        let StoredWeight {
            dims: w_dims,
            q: w_q,
            scale: w_scale,
            zero_point: w_zp,
        } = quantized_weight(graph, found, 1, Some(8), 9)?;
        let StoredWeight {
            dims: r_dims,
            q: r_q,
            scale: r_scale,
            zero_point: r_zp,
        } = quantized_weight(graph, found, 2, Some(10), 11)?;
        let (_, b) = graph.values(input(graph, found, 3)?)?;
        let [dirs, input_size, gates] = w_dims[..] else {
            return Err(graph.corrupt(format!("`{node}`: W is {w_dims:?}")));
        };
        let hidden = gates / 4;
        if r_dims != [dirs, hidden, gates]
            || b.len() != dirs * 2 * gates
            || w_scale.len() != dirs
            || w_zp.len() != dirs
            || r_scale.len() != dirs
            || r_zp.len() != dirs
        {
            return Err(graph.corrupt(format!(
                "`{node}`: W {w_dims:?}, R {r_dims:?}, {} biases, scales and zero points disagree",
                b.len()
            )));
        }
        // [dirs][rows][4H] → per direction [4H][rows], zero point removed.
        let transpose = |q: &[f32], rows: usize, d: usize, zp: f32| {
            let mut out = vec![0i16; gates * rows];
            for row in 0..rows {
                for g in 0..gates {
                    out[g * rows + row] = (q[(d * rows + row) * gates + g] - zp) as i16;
                }
            }
            out
        };
        let w: Vec<(Vec<i16>, f32)> = (0..dirs)
            .map(|d| (transpose(&w_q, input_size, d, w_zp[d]), w_scale[d]))
            .collect();
        let w_bytes = w
            .iter()
            .map(|(w, _)| {
                int8_quads::available()
                    .then(|| ByteColumns::new(w, input_size))
                    .flatten()
            })
            .collect();
        let r = (0..dirs)
            .map(|d| (transpose(&r_q, hidden, d, r_zp[d]), r_scale[d]))
            .collect();
        let bias = (0..dirs)
            .map(|d| {
                let wb = &b[d * 2 * gates..d * 2 * gates + gates];
                let rb = &b[d * 2 * gates + gates..(d + 1) * 2 * gates];
                wb.iter().zip(rb).map(|(a, b)| a + b).collect()
            })
            .collect();
        Ok(Self {
            input: input_size,
            hidden,
            w,
            w_bytes,
            r,
            bias,
        })
    }

    /// `x` (`T × input`) through every direction from zero states:
    /// `T × (directions · H)`, the forward direction's state first.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let t = x.len().checked_div(self.input).unwrap_or(0);
        let h = self.hidden;
        let dirs = self.w.len();
        let mut quantized = Vec::new();
        let (x_scale, x_zero) = dynamic_quantize(x, &mut quantized);
        let dot = |a: &[i16], b: &[i16]| -> i32 {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| i32::from(x) * i32::from(y))
                .sum()
        };
        // Each direction's states (`T × H`); two directions on two threads.
        let direction = |d: usize| -> Vec<f32> {
            let (w, w_scale) = &self.w[d];
            let (r, r_scale) = &self.r[d];
            let scale = x_scale * w_scale;
            // Every step's `Σ x·W` (`4H × T`, gate-major).
            let xw = column_sums(
                w,
                self.w_bytes.get(d).and_then(Option::as_ref),
                self.input,
                &quantized[..t * self.input],
                x_zero,
            );
            let mut states = vec![0f32; t * h];
            with_wide_vectors(|| {
                let mut state = vec![0f32; h];
                let mut cell = vec![0f32; h];
                let mut hq = Vec::new();
                let mut gates = vec![0f32; 4 * h];
                for step in 0..t {
                    let time = if d == 0 { step } else { t - 1 - step };
                    let (h_scale, h_zero) = dynamic_quantize(&state, &mut hq);
                    let hs: Vec<i16> = hq
                        .iter()
                        .map(|&q| i16::from(q) - i16::from(h_zero))
                        .collect();
                    let rs = h_scale * r_scale;
                    for (g, gate) in gates.iter_mut().enumerate() {
                        let xw = xw[g * t + time] as f32 * scale;
                        let hr = dot(&hs, &r[g * h..(g + 1) * h]) as f32 * rs;
                        *gate = xw + hr + self.bias[d][g];
                    }
                    let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
                    for k in 0..h {
                        let i = sigmoid(gates[k]);
                        let o = sigmoid(gates[h + k]);
                        let f = sigmoid(gates[2 * h + k]);
                        let c = gates[3 * h + k].tanh();
                        cell[k] = f * cell[k] + i * c;
                        state[k] = o * cell[k].tanh();
                    }
                    states[time * h..(time + 1) * h].copy_from_slice(&state);
                }
            });
            states
        };
        let states: Vec<Vec<f32>> = if dirs == 2 {
            let (forward, backward) = rayon::join(|| direction(0), || direction(1));
            vec![forward, backward]
        } else {
            (0..dirs).map(direction).collect()
        };
        let mut out = vec![0f32; t * dirs * h];
        for (d, states) in states.iter().enumerate() {
            for (time, state) in states.chunks_exact(h.max(1)).enumerate() {
                out[(time * dirs + d) * h..(time * dirs + d + 1) * h].copy_from_slice(state);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{dynamic_quantize, QuantizedConv1d};

    #[test]
    fn paired_convolution_sums_equal_the_plain_loops() {
        // Odd channel counts, dilation 3, a length that leaves a tail.
        let (c_in, c_out, kernel, dilation) = (7, 5, 3, 3);
        let mut state = 12345u32;
        let mut next = || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((state >> 16) % 511) as i16 - 255
        };
        let shape = super::ConvShape {
            c_in,
            c_out,
            kernel,
            dilation,
            stride: 1,
            pads: (3, 3),
        };
        let weight = (0..c_out * c_in * kernel).map(|_| next()).collect();
        let conv = QuantizedConv1d::new(shape, weight, 0, 1.0, vec![0.0; c_out]);
        let padded_t = 77;
        let padded: Vec<i16> = (0..c_in * padded_t).map(|_| next()).collect();
        let t_out = padded_t - dilation * (kernel - 1);
        let plain = conv.sums_portable(&padded, padded_t, t_out);
        // The paired path (AVX2); the 77-step rows leave tails.
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            assert_eq!(conv.sums_paired(&padded, padded_t, t_out), plain);
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            let (pairs, taps) = (c_in.div_ceil(2), c_in.div_ceil(2) * kernel);
            let interleaved: Vec<i32> = (0..pairs * padded_t)
                .map(|i| i as i32 * 7919 % 65_536 - 32_768)
                .collect();
            let offsets: Vec<usize> = (0..taps)
                .map(|j| (j / kernel) * padded_t + (j % kernel) * dilation)
                .collect();
            let w: Vec<i32> = (0..taps)
                .map(|j| (j as i32 * 104_729) ^ 0x5a5a_a5a5)
                .collect();
            let mut avx2 = vec![0i32; t_out];
            // SAFETY: AVX2 detected; offsets stay within the rows.
            unsafe { super::madd_row_avx2(&interleaved, &offsets, &w, &mut avx2) };
            // The blocked kernels: four channels (weights rotated per
            // channel) against the one-channel kernel, row by row.
            let ws: Vec<Vec<i32>> = (0..super::BLOCK)
                .map(|c| w.iter().map(|&x| x.rotate_left(c as u32 * 7)).collect())
                .collect();
            let single: Vec<Vec<i32>> = ws
                .iter()
                .map(|wc| {
                    let mut row = vec![0i32; t_out];
                    // SAFETY: as above.
                    unsafe { super::madd_row_avx2(&interleaved, &offsets, wc, &mut row) };
                    row
                })
                .collect();
            let mut rows = vec![0i32; super::BLOCK * t_out];
            let out: Vec<&mut [i32]> = rows.chunks_exact_mut(t_out).collect();
            let out: [&mut [i32]; super::BLOCK] = out.try_into().expect("four rows");
            let wr: [&[i32]; super::BLOCK] = std::array::from_fn(|c| ws[c].as_slice());
            // SAFETY: AVX2 detected; the same bounds.
            unsafe { super::madd_rows_avx2(&interleaved, &offsets, wr, out) };
            assert_eq!(rows, single.concat());
            // The one-channel kernel against `vpmaddwd`'s definition,
            // wrapping as it wraps (these pairs are deliberately extreme).
            let want: Vec<i32> = (0..t_out)
                .map(|t| {
                    offsets.iter().zip(&w).fold(0i32, |acc, (&off, &wj)| {
                        let x = interleaved[off + t];
                        let lo = i32::from(x as i16) * i32::from(wj as i16);
                        let hi = i32::from((x >> 16) as i16) * i32::from((wj >> 16) as i16);
                        acc.wrapping_add(lo.wrapping_add(hi))
                    })
                })
                .collect();
            assert_eq!(avx2, want);
        }
        // And the plain loops against the definition.
        let co = 4;
        let t = 70;
        let want: i32 = (0..c_in)
            .flat_map(|ci| (0..kernel).map(move |k| (ci, k)))
            .map(|(ci, k)| {
                i32::from(conv.weight[(co * c_in + ci) * kernel + k])
                    * i32::from(padded[ci * padded_t + t + k * dilation])
            })
            .sum();
        assert_eq!(plain[co * t_out + t], want);
    }

    /// `MatMulInteger` with and without the byte kernel equals its
    /// definition: `Σ (a − a_zero)·w` times both scales, plus the bias.
    #[test]
    fn linear_layer_paths_equal_the_definition() {
        let (k, n, rows) = (100, 5, 3);
        let weight: Vec<i16> = (0..n * k).map(|i| ((i * 37 % 255) as i16) - 127).collect();
        let x: Vec<f32> = (0..rows * k)
            .map(|i| ((i * 13 % 97) as f32 - 40.0) / 17.0)
            .collect();
        let layer = |bytes| super::QuantizedLinear {
            k,
            n,
            weight: weight.clone(),
            scale: vec![0.01, 0.02, 0.03, 0.04, 0.05],
            bias: Some(vec![0.5, -0.5, 0.25, 0.0, 1.0]),
            bytes,
        };
        let mut q = Vec::new();
        let (a_scale, a_zero) = dynamic_quantize(&x, &mut q);
        let want: Vec<f32> = (0..rows * n)
            .map(|i| {
                let (r, c) = (i / n, i % n);
                let acc: i32 = (0..k)
                    .map(|j| {
                        (i32::from(q[r * k + j]) - i32::from(a_zero)) * i32::from(weight[c * k + j])
                    })
                    .sum();
                [0.5, -0.5, 0.25, 0.0, 1.0][c]
                    + acc as f32 * (a_scale * [0.01, 0.02, 0.03, 0.04, 0.05][c])
            })
            .collect();
        assert_eq!(layer(None).forward(&x), want);
        if super::int8_quads::available() {
            let bytes = super::ByteColumns::new(&weight, k);
            assert!(bytes.is_some());
            assert_eq!(layer(bytes).forward(&x), want);
        }
    }

    #[test]
    fn activations_quantize_as_onnx_defines_it() {
        // The ONNX specification's example: x = [0, 2, -3, -2.5, 1.34,
        // 0.5] gives scale 5/255, zero point 153, y = [153, 255, 0, 26,
        // 221, 179].
        let mut q = Vec::new();
        let (scale, zp) = dynamic_quantize(&[0.0, 2.0, -3.0, -2.5, 1.34, 0.5], &mut q);
        assert!((scale - 5.0 / 255.0).abs() < 1e-9);
        assert_eq!(zp, 153);
        assert_eq!(q, vec![153, 255, 0, 26, 221, 179]);
        // All positive: the range still holds 0, so the zero point is 0;
        // 1 / (2 / 255) is 127.49999 in f32. These and the next are
        // onnxruntime 1.32's outputs (run by hand).
        let (_, zp) = dynamic_quantize(&[1.0, 2.0], &mut q);
        assert_eq!(zp, 0);
        assert_eq!(q, vec![127, 255]);
        let (_, zp) = dynamic_quantize(&[0.1, -0.7, 3.3, 1e-3, -2.2], &mut q);
        assert_eq!(zp, 102);
        assert_eq!(q, vec![107, 70, 255, 102, 0]);
    }

    /// Strided convolutions, computed over their input's phases, against
    /// the definition `(Σ (x − xz)·(w − wz) + ⌊b / s⌋)·s` on the strided,
    /// padded input, on every path this CPU has (the byte kernel where
    /// there is VNNI, the i16 kernels everywhere).
    #[test]
    fn strided_convolutions_equal_the_definition() {
        let (c_in, c_out, t) = (6, 5, 61);
        let x: Vec<f32> = (0..c_in * t)
            .map(|i| ((i * 7919 % 1000) as f32 - 400.0) / 250.0)
            .collect();
        let mut q = Vec::new();
        let (x_scale, x_zero) = dynamic_quantize(&x, &mut q);
        for (kernel, stride, pads) in [
            (12, 6, (3, 3)),
            (3, 2, (1, 1)),
            (5, 3, (0, 2)),
            (1, 1, (0, 0)),
        ] {
            let zero = 131;
            let weight: Vec<i16> = (0..c_out * c_in * kernel)
                .map(|i| (i * 37 % 256) as i16 - zero)
                .collect();
            let bias: Vec<f32> = (0..c_out).map(|c| c as f32 * 0.3 - 0.6).collect();
            let shape = super::ConvShape {
                c_in,
                c_out,
                kernel,
                dilation: 1,
                stride,
                pads,
            };
            let scale = 0.02;
            let mut conv =
                QuantizedConv1d::new(shape, weight.clone(), zero.into(), scale, bias.clone());
            let padded_t = t + pads.0 + pads.1;
            let t_out = (padded_t - kernel) / stride + 1;
            let s = x_scale * scale;
            let want: Vec<f32> = (0..c_out * t_out)
                .map(|i| {
                    let (co, j) = (i / t_out, i % t_out);
                    let mut acc = 0i32;
                    for ci in 0..c_in {
                        for k in 0..kernel {
                            let Some(at) = (j * stride + k).checked_sub(pads.0).filter(|&a| a < t)
                            else {
                                continue;
                            };
                            acc += (i32::from(q[ci * t + at]) - i32::from(x_zero))
                                * i32::from(weight[(co * c_in + ci) * kernel + k]);
                        }
                    }
                    (acc + (bias[co] / s).floor() as i32) as f32 * s
                })
                .collect();
            assert_eq!(conv.forward(&x), want, "kernel {kernel}, stride {stride}");
            conv.quads = None;
            assert_eq!(
                conv.forward(&x),
                want,
                "i16 path: kernel {kernel}, stride {stride}"
            );
        }
    }

    /// A tensor large enough to be quantized in parallel pieces gets the
    /// definition's range, zero point and bytes.
    #[test]
    fn large_tensors_quantize_as_small_ones() {
        let x: Vec<f32> = (0..100_003)
            .map(|i| ((i * 7919 % 10_007) as f32 - 3000.0) / 997.0)
            .collect();
        let mut q = Vec::new();
        let (scale, zero) = dynamic_quantize(&x, &mut q);
        let (min, max) = x
            .iter()
            .fold((0f32, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
        assert_eq!(scale, (max - min) / 255.0);
        let z = (-min / scale).clamp(0.0, 255.0).round_ties_even();
        assert_eq!(f32::from(zero), z);
        for (&v, &b) in x.iter().zip(&q) {
            let want = ((v / scale).clamp(-z, 255.0 - z).round_ties_even() + z) as u8;
            assert_eq!(b, want);
        }
    }
}
