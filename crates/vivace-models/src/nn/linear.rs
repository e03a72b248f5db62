//! A linear layer that is fast for the few rows of a decode step.
//!
//! An autoregressive decoder multiplies one or two rows (a token, or a
//! token and its classifier-free-guidance twin) by every weight matrix once
//! per token. That is a matrix-vector product bound by reading the weights:
//! a general GEMM packs both operands first, and for two rows the packing of
//! the weights costs as much as the product. Here each output is the dot
//! product of a weight row (PyTorch's `[out, in]` layout, read in place)
//! with the input rows, in vector lanes, with the outputs split between
//! rayon's threads. Each weight is read once per call.
//!
//! Weights are f32 or, opt-in, bf16 ([`Precision`]), which halves the bytes
//! a token reads; the products and sums stay f32. Longer inputs (a prompt's
//! prefill) and other devices run candle's matmul.

use candle_core::{Device, Module, Result, Storage, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::cpu_ops::{applies_on, applies_to, with_cpu_slice, with_wide_vectors};

/// Input rows up to which the CPU matrix-vector kernel runs.
const MAX_DECODE_ROWS: usize = 16;
/// Input rows up to which the CPU prefill multiplies `W · xᵀ` rather than
/// `x · Wᵀ`. The `gemm` crate repacks its right-hand operand on every call:
/// the whole weight matrix in `x · Wᵀ`, only the input in `W · xᵀ`. For a
/// short prompt that repacking dominates (measured on the 2-core Zen 4,
/// 1024 × 4096 weights: 34 rows at 33 against 95 GFLOP/s, 61 rows at 54
/// against 100, 128 at 88 against 141); from about 256 rows the two
/// orientations run alike.
const MAX_TRANSPOSED_ROWS: usize = 256;
/// Output features per parallel task.
const OUTPUTS_PER_TASK: usize = 32;

/// How the weights of the decode kernel are stored on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32, as published: exact.
    #[default]
    F32,
    /// bfloat16 (weights rounded to nearest even at load): half the bytes
    /// per token, products and sums in f32.
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            other => Err(format!("unknown precision {other:?}: use f32 or bf16")),
        }
    }
}

/// The weights of the decode kernel, borrowed from where they are stored.
#[derive(Debug, Clone, Copy)]
enum DecodeWeights<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u16]),
}

/// How a layer stores its weights.
#[derive(Debug, Clone)]
enum Weights {
    /// A candle tensor `[out, in]` (f32 on the CPU: the decode kernel reads
    /// its storage in place).
    Tensor(Tensor),
    /// CPU bf16, row-major `[out, in]`: one copy, widened per prefill.
    Bf16(Vec<u16>),
}

/// `y = x Wᵀ + b` with `W` `[out, in]`.
#[derive(Debug, Clone)]
pub struct Linear {
    weights: Weights,
    bias: Option<Tensor>,
    in_features: usize,
    out_features: usize,
}

impl Linear {
    /// Loads `weight` (`[out, in]`) and, with `bias`, `bias` (`[out]`) from `vb`.
    pub fn load(
        in_features: usize,
        out_features: usize,
        bias: bool,
        precision: Precision,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get((out_features, in_features), "weight")?;
        let bias = match bias {
            true => Some(vb.get(out_features, "bias")?),
            false => None,
        };
        Self::new(weight, bias, precision)
    }

    /// A layer over the given weights (`[out, in]`) and bias (`[out]`).
    /// `precision` applies on the CPU with f32 weights; elsewhere the
    /// weights stay as given.
    pub fn new(weight: Tensor, bias: Option<Tensor>, precision: Precision) -> Result<Self> {
        let (out_features, in_features) = weight.dims2()?;
        let weights = match (applies_on(weight.device(), weight.dtype()), precision) {
            (true, Precision::Bf16) => {
                let w: Vec<f32> = weight.flatten_all()?.to_vec1()?;
                Weights::Bf16(w.iter().map(|&x| to_bf16(x)).collect())
            }
            (true, Precision::F32) => Weights::Tensor(weight.contiguous()?),
            (false, _) => Weights::Tensor(weight),
        };
        Ok(Self {
            weights,
            bias,
            in_features,
            out_features,
        })
    }

    /// Several layers over the same input as one (their outputs side by
    /// side, in order): q, k and v, or a gate and its up projection.
    pub fn concat(layers: &[Linear], precision: Precision) -> Result<Self> {
        let weights = layers
            .iter()
            .map(Linear::weight)
            .collect::<Result<Vec<_>>>()?;
        let weight = Tensor::cat(&weights, 0)?;
        let bias = match layers.iter().all(|l| l.bias.is_some()) {
            true => {
                let biases: Vec<&Tensor> = layers.iter().filter_map(|l| l.bias.as_ref()).collect();
                Some(Tensor::cat(&biases, 0)?)
            }
            false if layers.iter().any(|l| l.bias.is_some()) => {
                candle_core::bail!("concatenated linear layers must all have a bias or none")
            }
            false => None,
        };
        Self::new(weight, bias, precision)
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The weights as candle multiplies them (`[out, in]`; bf16 ones
    /// widened to f32).
    pub fn weight(&self) -> Result<Tensor> {
        match &self.weights {
            Weights::Tensor(w) => Ok(w.clone()),
            Weights::Bf16(w) => Tensor::from_vec(
                w.iter().map(|&h| from_bf16(h)).collect::<Vec<_>>(),
                (self.out_features, self.in_features),
                &Device::Cpu,
            ),
        }
    }

    /// Runs the decode kernel on `input` (`rows × in`) with the weights in place.
    fn decode(&self, input: &[f32], rows: usize, bias: Option<&[f32]>) -> Result<Vec<f32>> {
        let (k, n) = (self.in_features, self.out_features);
        match &self.weights {
            Weights::Bf16(w) => Ok(matvec(DecodeWeights::Bf16(w), bias, input, rows, k, n)),
            Weights::Tensor(w) => {
                let (storage, layout) = w.storage_and_layout();
                let Storage::Cpu(cpu) = &*storage else {
                    candle_core::bail!("linear layer: the weights are not on the CPU");
                };
                let all = cpu.as_slice::<f32>()?;
                let (start, end) = layout.contiguous_offsets().ok_or_else(|| {
                    candle_core::Error::Msg("linear layer: the weights are not contiguous".into())
                })?;
                Ok(matvec(
                    DecodeWeights::F32(&all[start..end]),
                    bias,
                    input,
                    rows,
                    k,
                    n,
                ))
            }
        }
    }

    /// Whether the decode kernel can run for `x`.
    fn decodes(&self, x: &Tensor, rows: usize) -> bool {
        let cpu_weights = match &self.weights {
            Weights::Bf16(_) => true,
            Weights::Tensor(w) => applies_to(w),
        };
        cpu_weights && rows <= MAX_DECODE_ROWS && applies_to(x)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let Some((&features, lead)) = dims.split_last() else {
            candle_core::bail!("linear layer: a scalar input");
        };
        if features != self.in_features {
            candle_core::bail!(
                "linear layer: input has {features} features, the weights take {}",
                self.in_features
            );
        }
        let rows: usize = lead.iter().product();
        let mut shape = lead.to_vec();
        shape.push(self.out_features);
        if self.decodes(x, rows) {
            let bias = self.bias.as_ref().map(|b| b.to_vec1::<f32>()).transpose()?;
            let out = with_cpu_slice(x, |input| self.decode(input, rows, bias.as_deref()))??;
            return Tensor::from_vec(out, shape, &Device::Cpu);
        }
        let x2 = x.reshape((rows, features))?;
        let w = self.weight()?;
        let mut y = match rows <= MAX_TRANSPOSED_ROWS && x.device().is_cpu() {
            true => w.matmul(&x2.t()?)?.t()?,
            false => x2.matmul(&w.t()?)?,
        };
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        y.reshape(shape)
    }
}

/// `out[r, o] = Σ_i x[r, i] · w[o, i] + b[o]` for `rows` rows.
fn matvec(
    w: DecodeWeights<'_>,
    bias: Option<&[f32]>,
    x: &[f32],
    rows: usize,
    k: usize,
    n: usize,
) -> Vec<f32> {
    // Output-major while computing, so each task writes one block.
    let mut t = vec![0f32; n * rows];
    t.par_chunks_mut(OUTPUTS_PER_TASK * rows)
        .enumerate()
        .for_each(|(task, block)| {
            let first = task * OUTPUTS_PER_TASK;
            with_wide_vectors(
                #[inline(always)]
                || {
                    for (j, out) in block.chunks_exact_mut(rows).enumerate() {
                        let o = first + j;
                        match w {
                            DecodeWeights::F32(w) => dot_rows(&w[o * k..(o + 1) * k], x, out),
                            DecodeWeights::Bf16(w) => dot_rows(&w[o * k..(o + 1) * k], x, out),
                        }
                        if let Some(b) = bias {
                            out.iter_mut().for_each(|v| *v += b[o]);
                        }
                    }
                },
            )
        });
    let mut out = vec![0f32; rows * n];
    for (o, col) in t.chunks_exact(rows).enumerate() {
        for (r, &v) in col.iter().enumerate() {
            out[r * n + o] = v;
        }
    }
    out
}

/// Vector lanes of the dot products: 16 f32 (one AVX-512 register, two AVX2).
const LANES: usize = 16;

/// How a weight element becomes f32 in the dot products.
trait Weight: Copy {
    fn widen(self) -> f32;
}

impl Weight for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl Weight for u16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        from_bf16(self)
    }
}

/// `out[r] = w · x[r]` for each row `r` of `x` (rows of `w.len()`): four
/// rows at a time, so each weight vector loaded feeds four products, then
/// one at a time.
#[inline(always)]
fn dot_rows<W: Weight>(w: &[W], x: &[f32], out: &mut [f32]) {
    let k = w.len();
    let row = |r: usize| &x[r * k..(r + 1) * k];
    let mut r = 0;
    while r + 4 <= out.len() {
        let d = dot4(w, [row(r), row(r + 1), row(r + 2), row(r + 3)]);
        out[r..r + 4].copy_from_slice(&d);
        r += 4;
    }
    while r < out.len() {
        out[r] = dot1(w, row(r));
        r += 1;
    }
}

/// `w · x` in vector lanes.
#[inline(always)]
fn dot1<W: Weight>(w: &[W], x: &[f32]) -> f32 {
    let main = w.len() - w.len() % LANES;
    let mut acc = [0f32; LANES];
    for (wv, xv) in w[..main]
        .chunks_exact(LANES)
        .zip(x[..main].chunks_exact(LANES))
    {
        for l in 0..LANES {
            acc[l] += wv[l].widen() * xv[l];
        }
    }
    let tail: f32 = w[main..]
        .iter()
        .zip(&x[main..])
        .map(|(a, b)| a.widen() * b)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// Four dot products of `w` with `x0..x3`, one weight load for the four.
#[inline(always)]
fn dot4<W: Weight>(w: &[W], [x0, x1, x2, x3]: [&[f32]; 4]) -> [f32; 4] {
    let main = w.len() - w.len() % LANES;
    let (mut a0, mut a1, mut a2, mut a3) =
        ([0f32; LANES], [0f32; LANES], [0f32; LANES], [0f32; LANES]);
    for (c, wv) in w[..main].chunks_exact(LANES).enumerate() {
        let at = c * LANES;
        let (v0, v1) = (&x0[at..at + LANES], &x1[at..at + LANES]);
        let (v2, v3) = (&x2[at..at + LANES], &x3[at..at + LANES]);
        for l in 0..LANES {
            let wl = wv[l].widen();
            a0[l] += wl * v0[l];
            a1[l] += wl * v1[l];
            a2[l] += wl * v2[l];
            a3[l] += wl * v3[l];
        }
    }
    let finish = |a: &[f32; LANES], x: &[f32]| {
        let tail: f32 = w[main..]
            .iter()
            .zip(&x[main..])
            .map(|(p, q)| p.widen() * q)
            .sum();
        a.iter().sum::<f32>() + tail
    };
    [
        finish(&a0, x0),
        finish(&a1, x1),
        finish(&a2, x2),
        finish(&a3, x3),
    ]
}

/// f32 to bfloat16, rounded to nearest even (NaN kept a NaN).
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// bfloat16 to f32 (exact).
#[inline(always)]
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// The last dimension of `x` as one row per leading index: a helper for
/// tests comparing the two paths.
#[cfg(test)]
fn rows_of(x: &Tensor) -> Result<Vec<Vec<f32>>> {
    x.flatten_to(candle_core::D::Minus2)?.to_vec2()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    fn ramp(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * scale)
            .collect()
    }

    /// The plain-loop product in f64, the reference both paths are checked against.
    fn reference(w: &[f32], b: &[f32], x: &[f32], rows: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0f32; rows * n];
        for r in 0..rows {
            for o in 0..n {
                let s: f64 = (0..k)
                    .map(|i| f64::from(w[o * k + i]) * f64::from(x[r * k + i]))
                    .sum();
                out[r * n + o] = (s + f64::from(b[o])) as f32;
            }
        }
        out
    }

    #[test]
    fn decode_and_prefill_paths_match_the_plain_product() -> Result<()> {
        // 70 inputs: four full vectors and a tail; 75 outputs: a partial task.
        let (k, n) = (70, 75);
        let w = ramp(n * k, 0.01);
        let b = ramp(n, 0.1);
        let layer = Linear::new(
            Tensor::from_vec(w.clone(), (n, k), &Device::Cpu)?,
            Some(Tensor::from_vec(b.clone(), n, &Device::Cpu)?),
            Precision::F32,
        )?;
        for rows in [1, 2, 3, 7, 16, 17] {
            let x = ramp(rows * k, 0.02);
            let y = layer.forward(&Tensor::from_vec(x.clone(), (1, rows, k), &Device::Cpu)?)?;
            assert_eq!(y.dims(), [1, rows, n]);
            let got: Vec<f32> = rows_of(&y)?.concat();
            let want = reference(&w, &b, &x, rows, k, n);
            for (g, e) in got.iter().zip(&want) {
                assert!(
                    (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                    "{rows} rows: {g} vs {e}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn bf16_weights_are_the_rounded_weights_on_both_paths() -> Result<()> {
        let (k, n) = (48, 40);
        let w = ramp(n * k, 0.0123);
        let rounded: Vec<f32> = w.iter().map(|&v| from_bf16(to_bf16(v))).collect();
        assert!(
            rounded.iter().zip(&w).any(|(a, b)| a != b),
            "the ramp must need rounding"
        );
        let zeros = vec![0f32; n];
        let layer = Linear::new(
            Tensor::from_vec(w, (n, k), &Device::Cpu)?,
            None,
            Precision::Bf16,
        )?;
        for rows in [2, 12] {
            let x = ramp(rows * k, 0.05);
            let y = layer.forward(&Tensor::from_vec(x.clone(), (rows, k), &Device::Cpu)?)?;
            let want = reference(&rounded, &zeros, &x, rows, k, n);
            for (g, e) in y.flatten_all()?.to_vec1::<f32>()?.iter().zip(&want) {
                assert!(
                    (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                    "{rows} rows: {g} vs {e}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to even (1 + 2^-6).
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
    }

    #[test]
    fn a_wrong_input_width_is_an_error() -> Result<()> {
        let layer = Linear::new(
            Tensor::zeros((3, 4), DType::F32, &Device::Cpu)?,
            None,
            Precision::F32,
        )?;
        assert!(layer
            .forward(&Tensor::zeros((1, 5), DType::F32, &Device::Cpu)?)
            .is_err());
        Ok(())
    }
}
