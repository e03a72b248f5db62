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

use crate::error::Result;
use crate::nn::cpu_ops::with_wide_vectors;
use crate::onnx::OnnxGraph;

/// `DynamicQuantizeLinear`: `x` as uint8 in `out`, with its scale and zero
/// point. An all-zero (or empty) tensor gets scale 1, as onnxruntime gives.
pub fn dynamic_quantize(x: &[f32], out: &mut Vec<u8>) -> (f32, u8) {
    let (min, max) = x
        .iter()
        .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let scale = if max == min { 1.0 } else { (max - min) / 255.0 };
    let zero_point = (0.0 - min / scale).clamp(0.0, 255.0).round_ties_even();
    let (lo, hi) = (-zero_point, 255.0 - zero_point);
    out.clear();
    out.extend(
        x.iter()
            .map(|&v| ((v / scale).clamp(lo, hi).round_ties_even() + zero_point) as u8),
    );
    (scale, zero_point as u8)
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
}

impl QuantizedLinear {
    /// The layer whose `MatMulInteger` node is `node` (its weight input 1,
    /// zero point input 3, scale `NAME_scale` beside `NAME_quantized`),
    /// with the float initializer `bias` added after, if named.
    pub fn from_graph(graph: &OnnxGraph, node: &str, bias: Option<&str>) -> Result<Self> {
        let found = graph
            .nodes
            .iter()
            .find(|n| n.name == node && n.op_type == "MatMulInteger")
            .ok_or_else(|| graph.corrupt(format!("no MatMulInteger node `{node}`")))?;
        let input = |slot: usize| {
            found
                .inputs
                .get(slot)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| graph.corrupt(format!("`{node}` has no input {slot}")))
        };
        let quantized = input(1)?;
        let base = quantized.strip_suffix("_quantized").ok_or_else(|| {
            graph.corrupt(format!(
                "`{node}` reads `{quantized}`, not a quantized weight"
            ))
        })?;
        let (dims, q) = graph.values(quantized)?;
        let (_, zero_point) = graph.values(input(3)?)?;
        let (_, scale) = graph.values(&format!("{base}_scale"))?;
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
        Ok(Self {
            k,
            n,
            weight,
            scale,
            bias,
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
        let a: Vec<i16> = quantized
            .iter()
            .map(|&q| i16::from(q) - i16::from(a_zero))
            .collect();
        let rows = x.len().checked_div(self.k).unwrap_or(0);
        let scales: Vec<f32> = self.scale.iter().map(|&s| a_scale * s).collect();
        let mut out = vec![0f32; rows * self.n];
        // Column by column, every row: a column's weights are read once
        // and stay in L1 while the rows (a few KB) pass over them; compiled
        // for the widest vectors the CPU has.
        with_wide_vectors(|| {
            for c in 0..self.n {
                let w = &self.weight[c * self.k..(c + 1) * self.k];
                for r in 0..rows {
                    let a_row = &a[r * self.k..(r + 1) * self.k];
                    let acc: i32 = a_row
                        .iter()
                        .zip(w)
                        .map(|(&x, &y)| i32::from(x) * i32::from(y))
                        .sum();
                    let y = acc as f32 * scales[c];
                    out[r * self.n + c] = match &self.bias {
                        Some(b) => b[c] + y,
                        None => y,
                    };
                }
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::dynamic_quantize;

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
}
