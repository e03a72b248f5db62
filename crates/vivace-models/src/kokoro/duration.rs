//! Kokoro's duration predictor (`encoder.predictor`'s `text_encoder`,
//! `lstm` and `duration_proj`): the text's ALBERT features with the style
//! appended run through three bidirectional LSTMs, each followed by an
//! AdaLayerNorm (LayerNorm, then `(1 + γ)·x + β` with γ, β a linear map of
//! the style) and the style appended again; one more LSTM, a projection to
//! 50 bins, and each token's duration in frames is the sum of the bins'
//! sigmoids, divided by the speed, rounded half to even, at least 1.

use crate::error::Result;
use crate::nn::int8::{QuantizedLinear, QuantizedLstm};
use crate::onnx::OnnxGraph;

use super::layer_norm::LayerNorm;

/// The predictor's node path in the export.
const PREDICTOR: &str = "/encoder/predictor";
/// The features' width before the style is appended.
const FEATURES: usize = 512;

/// An AdaLayerNorm: a plain LayerNorm, and the style's scale and shift.
struct AdaLayerNorm {
    fc: QuantizedLinear,
    norm: LayerNorm,
}

impl AdaLayerNorm {
    /// `x` (`T × C`) normalized and modulated by `style`.
    fn apply(&self, x: &mut [f32], style: &[f32]) {
        let h = self.fc.forward(style);
        let c = h.len() / 2;
        self.norm.apply(x);
        for row in x.chunks_exact_mut(c) {
            for (k, v) in row.iter_mut().enumerate() {
                *v = (h[k] + 1.0) * *v + h[c + k];
            }
        }
    }
}

/// The duration predictor.
pub struct DurationPredictor {
    lstms: Vec<QuantizedLstm>,
    norms: Vec<AdaLayerNorm>,
    lstm: QuantizedLstm,
    proj: QuantizedLinear,
}

impl DurationPredictor {
    /// Reads the predictor's weights from the export.
    pub fn load(graph: &OnnxGraph) -> Result<Self> {
        let encoder = format!("{PREDICTOR}/text_encoder");
        let lstms = [0, 2, 4]
            .iter()
            .map(|i| QuantizedLstm::from_graph(graph, &format!("{encoder}/lstms.{i}/LSTM_quant")))
            .collect::<Result<Vec<_>>>()?;
        let norms = [1, 3, 5]
            .iter()
            .map(|i| {
                Ok(AdaLayerNorm {
                    fc: QuantizedLinear::from_graph(
                        graph,
                        &format!("{encoder}/lstms.{i}/fc/Gemm_MatMul_quant"),
                        Some(&format!("encoder.predictor.text_encoder.lstms.{i}.fc.bias")),
                    )?,
                    norm: LayerNorm::from_node(
                        graph,
                        &format!("{encoder}/lstms.{i}/LayerNormalization"),
                    )?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            lstms,
            norms,
            lstm: QuantizedLstm::from_graph(graph, &format!("{PREDICTOR}/lstm/LSTM_quant"))?,
            proj: QuantizedLinear::from_graph(
                graph,
                &format!("{PREDICTOR}/duration_proj/linear_layer/MatMul_quant"),
                Some("encoder.predictor.duration_proj.linear_layer.bias"),
            )?,
        })
    }

    /// The encoder's output `d` (`T × 640`: 512 features, then the style)
    /// from ALBERT's `bert_dur` (`T × 512`) and the predictor's style (the
    /// voice row's second half, 128).
    pub fn encode(&self, bert_dur: &[f32], style: &[f32]) -> Vec<f32> {
        let mut x = bert_dur.to_vec();
        for i in 0..self.lstms.len() {
            x = self.block(i, &x, style);
        }
        append_style(&x, FEATURES, style)
    }

    /// Block `i` of the encoder: `x` (`T × 512`) with the style appended,
    /// through its LSTM and AdaLayerNorm (`T × 512`).
    pub fn block(&self, i: usize, x: &[f32], style: &[f32]) -> Vec<f32> {
        let (Some(lstm), Some(norm)) = (self.lstms.get(i), self.norms.get(i)) else {
            return x.to_vec();
        };
        let mut h = lstm.forward(&append_style(x, FEATURES, style));
        norm.apply(&mut h, style);
        h
    }

    /// The 50 bins of every token (`T × 50`) from `d`.
    pub fn bins(&self, encoded: &[f32]) -> Vec<f32> {
        self.proj.forward(&self.lstm.forward(encoded))
    }

    /// Each token's duration in frames before rounding: the sum of its
    /// bins' sigmoids over `speed`.
    pub fn raw_durations(&self, bins: &[f32], speed: f32) -> Vec<f32> {
        bins.chunks_exact(self.proj.out_features().max(1))
            .map(|row| row.iter().map(|&b| 1.0 / (1.0 + (-b).exp())).sum::<f32>() / speed)
            .collect()
    }

    /// Frames per token: rounded half to even (ONNX `Round`), at least 1.
    pub fn durations(raw: &[f32]) -> Vec<usize> {
        raw.iter()
            .map(|&d| d.round_ties_even().max(1.0) as usize)
            .collect()
    }
}

/// `x` (rows of `width`) with `style` appended to every row.
fn append_style(x: &[f32], width: usize, style: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len() / width.max(1) * (width + style.len()));
    for row in x.chunks_exact(width.max(1)) {
        out.extend_from_slice(row);
        out.extend_from_slice(style);
    }
    out
}
