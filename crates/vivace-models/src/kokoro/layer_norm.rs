//! LayerNorm as the export computes it (`LayerNormalization` and
//! `SkipLayerNormalization` over the last axis), in f32.

use rayon::prelude::*;

use crate::error::Result;
use crate::onnx::OnnxGraph;

/// A LayerNorm's scale, shift and epsilon.
pub struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    /// The initializers `gamma` and `beta`, and the epsilon of the node
    /// called `node` (its `epsilon` attribute).
    pub fn load(graph: &OnnxGraph, gamma: &str, beta: &str, node: &str) -> Result<Self> {
        let (_, gamma) = graph.values(gamma)?;
        let (_, beta) = graph.values(beta)?;
        let eps = graph
            .nodes
            .iter()
            .find(|n| n.name == node)
            .and_then(|n| n.attributes.get("epsilon"))
            .and_then(|a| a.floats.first().copied())
            .ok_or_else(|| graph.corrupt(format!("no epsilon on `{node}`")))?;
        if gamma.len() != beta.len() {
            return Err(graph.corrupt(format!("`{node}`: scale and shift differ in size")));
        }
        Ok(Self { gamma, beta, eps })
    }

    /// The `LayerNormalization` node called `node`, with the scale and
    /// shift it reads (inputs 1 and 2).
    pub fn from_node(graph: &OnnxGraph, node: &str) -> Result<Self> {
        let found = graph.node(node, "LayerNormalization")?;
        let input = |slot: usize| {
            found
                .inputs
                .get(slot)
                .cloned()
                .ok_or_else(|| graph.corrupt(format!("`{node}` has no input {slot}")))
        };
        Self::load(graph, &input(1)?, &input(2)?, node)
    }

    /// Normalizes each row of `x` (rows of the norm's width) in place,
    /// rows in parallel on rayon's pool.
    pub fn apply(&self, x: &mut [f32]) {
        let width = self.gamma.len();
        x.par_chunks_exact_mut(width.max(1)).for_each(|row| {
            let mean = row.iter().sum::<f32>() / width as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
                *v = (*v - mean) * inv * g + b;
            }
        });
    }
}
