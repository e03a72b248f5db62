//! Kokoro's weights from `kokoro-v1.0.int8.onnx`, dequantized at load.
//!
//! onnxruntime's quantizer stores each quantized weight as `NAME_quantized`
//! (int8 or uint8) with `NAME_scale`; its zero point is whatever the reading
//! node takes (the quantizer shares equal zero points between weights):
//! input 3 of `MatMulInteger` and `ConvInteger`, inputs 9 and 11 of
//! `DynamicQuantizeLSTM` (for `W` and `R`), and for an embedding read by
//! `Gather`, input 2 of the `DequantizeLinear` after it. The float weight is
//! `W = (q − zero_point) · scale`, per tensor for a scalar scale, else along
//! the axis the operator quantizes: the output column of `MatMulInteger`
//! (axis 1 of `[K, N]`), the output channel of `ConvInteger` (axis 0), the
//! direction of an LSTM (axis 0).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::onnx::OnnxGraph;

/// A dequantized weight: dims and values (row-major).
#[derive(Debug, Clone)]
pub struct Dequantized {
    /// The weight's dims as stored.
    pub dims: Vec<usize>,
    /// `(q − zero_point) · scale`.
    pub values: Vec<f32>,
}

/// The node reading each value, with the slot (the first reader).
fn readers(graph: &OnnxGraph) -> HashMap<&str, (usize, usize)> {
    let mut readers = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        for (slot, input) in node.inputs.iter().enumerate() {
            readers.entry(input.as_str()).or_insert((i, slot));
        }
    }
    readers
}

/// Every quantized weight of the graph, dequantized, by its name without
/// `_quantized`.
pub fn dequantize_all(graph: &OnnxGraph) -> Result<HashMap<String, Dequantized>> {
    let readers = readers(graph);
    let mut names: Vec<&str> = graph
        .initializer_names()
        .filter(|n| n.ends_with("_quantized"))
        .collect();
    names.sort_unstable();
    let mut out = HashMap::new();
    for quantized in names {
        let base = &quantized[..quantized.len() - "_quantized".len()];
        out.insert(
            base.to_string(),
            dequantize_with(graph, &readers, quantized)?,
        );
    }
    Ok(out)
}

/// One quantized weight (`NAME_quantized`), dequantized.
pub fn dequantize(graph: &OnnxGraph, quantized: &str) -> Result<Dequantized> {
    dequantize_with(graph, &readers(graph), quantized)
}

fn dequantize_with(
    graph: &OnnxGraph,
    readers: &HashMap<&str, (usize, usize)>,
    quantized: &str,
) -> Result<Dequantized> {
    let corrupt = |reason: String| Error::CorruptOnnx {
        path: graph.path.clone(),
        reason,
    };
    let base = quantized.strip_suffix("_quantized").unwrap_or(quantized);
    let &(reader, slot) = readers
        .get(quantized)
        .ok_or_else(|| corrupt(format!("no node reads `{quantized}`")))?;
    let node = &graph.nodes[reader];
    let (zero_point, axis) = match (node.op_type.as_str(), slot) {
        ("MatMulInteger", 1) => (node.inputs.get(3), 1),
        ("ConvInteger", 1) => (node.inputs.get(3), 0),
        ("DynamicQuantizeLSTM", 1) => (node.inputs.get(9), 0),
        ("DynamicQuantizeLSTM", 2) => (node.inputs.get(11), 0),
        ("Gather", 0) => {
            let gathered = node.outputs.first().map(String::as_str).unwrap_or("");
            let &(dq, _) = readers.get(gathered).ok_or_else(|| {
                corrupt(format!(
                    "nothing dequantizes the rows gathered from `{quantized}`"
                ))
            })?;
            (graph.nodes[dq].inputs.get(2), 0)
        }
        (op, slot) => {
            return Err(corrupt(format!(
                "`{quantized}` is read by {op} input {slot}, which this loader does not dequantize"
            )))
        }
    };
    let zero_point = zero_point.filter(|z| !z.is_empty()).ok_or_else(|| {
        corrupt(format!(
            "the node reading `{quantized}` gives no zero point"
        ))
    })?;
    let (dims, q) = graph.values(quantized)?;
    let (scale_dims, scale) = graph.values(&format!("{base}_scale"))?;
    let (zp_dims, zp) = graph.values(zero_point)?;
    if scale.len() != zp.len() {
        return Err(corrupt(format!(
            "`{quantized}`: scale {scale_dims:?} and zero point {zp_dims:?} differ in size"
        )));
    }
    let values = if scale.len() == 1 {
        q.iter().map(|&v| (v - zp[0]) * scale[0]).collect()
    } else {
        let along = *dims.get(axis).unwrap_or(&0);
        if along != scale.len() {
            return Err(corrupt(format!(
                "`{quantized}` {dims:?}: {} scales do not match axis {axis}",
                scale.len()
            )));
        }
        let inner: usize = dims[axis + 1..].iter().product();
        q.iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / inner) % along;
                (v - zp[c]) * scale[c]
            })
            .collect()
    };
    Ok(Dequantized { dims, values })
}
