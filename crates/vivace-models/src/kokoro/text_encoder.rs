//! Kokoro's text encoder (`encoder.text_encoder`): the phoneme embedding
//! (512), three blocks of a width-5 convolution, LayerNorm over the
//! channels and LeakyReLU(0.2), then a bidirectional LSTM (256 each way),
//! in the export's int8 arithmetic (`ConvInteger`, `DynamicQuantizeLSTM`).

use crate::error::Result;
use crate::nn::int8::{QuantizedConv1d, QuantizedLstm};
use crate::onnx::OnnxGraph;

use super::layer_norm::LayerNorm;
use super::weights::dequantize;

/// One convolution block: convolution, LayerNorm over channels, LeakyReLU.
struct Block {
    conv: QuantizedConv1d,
    norm: LayerNorm,
    slope: f32,
}

/// The text encoder: tokens to `T × 512` features (channel-major out).
pub struct TextEncoder {
    embedding: Vec<f32>,
    width: usize,
    blocks: Vec<Block>,
    lstm: QuantizedLstm,
}

impl TextEncoder {
    /// Reads the encoder's weights from the export.
    pub fn load(graph: &OnnxGraph) -> Result<Self> {
        let embedding = dequantize(graph, "encoder.text_encoder.embedding.weight_quantized")?;
        let width = *embedding.dims.get(1).unwrap_or(&0);
        let blocks = (0..3)
            .map(|i| {
                let slope = graph
                    .nodes
                    .iter()
                    .find(|n| n.name == format!("/encoder/text_encoder/cnn.{i}/cnn.0.2/LeakyRelu"))
                    .and_then(|n| n.attributes.get("alpha"))
                    .and_then(|a| a.floats.first().copied())
                    .unwrap_or(0.2);
                Ok(Block {
                    conv: QuantizedConv1d::from_graph(
                        graph,
                        &format!("/encoder/text_encoder/cnn.{i}/cnn.{i}.0/Conv_quant"),
                        Some(&format!("encoder.text_encoder.cnn.{i}.0.bias")),
                    )?,
                    norm: LayerNorm::load(
                        graph,
                        &format!("encoder.text_encoder.cnn.{i}.1.gamma"),
                        &format!("encoder.text_encoder.cnn.{i}.1.beta"),
                        &format!("/encoder/text_encoder/cnn.{i}/cnn.{i}.1/LayerNormalization"),
                    )?,
                    slope,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embedding: embedding.values,
            width,
            blocks,
            lstm: QuantizedLstm::from_graph(graph, "/encoder/text_encoder/lstm/LSTM_quant")?,
        })
    }

    /// The embedding rows of `tokens` (`T × 512`); ids past the table read
    /// as the pad (0).
    pub fn embed(&self, tokens: &[i64]) -> Vec<f32> {
        let w = self.width;
        let rows = self.embedding.len() / w.max(1);
        tokens
            .iter()
            .flat_map(|&id| {
                let id = usize::try_from(id).ok().filter(|&i| i < rows).unwrap_or(0);
                self.embedding[id * w..(id + 1) * w].iter().copied()
            })
            .collect()
    }

    /// Convolution block `i` on `x` (`512 × T`, channel-major): `512 × T`.
    pub fn block(&self, i: usize, x: &[f32]) -> Vec<f32> {
        let Some(block) = self.blocks.get(i) else {
            return x.to_vec();
        };
        let y = block.conv.forward(x);
        let c = block.conv.out_channels();
        let t = y.len() / c.max(1);
        // LayerNorm over the channels of each step.
        let mut rows = transpose(&y, c, t);
        block.norm.apply(&mut rows);
        for v in rows.iter_mut() {
            if *v < 0.0 {
                *v *= block.slope;
            }
        }
        transpose(&rows, t, c)
    }

    /// The LSTM over `x` (`T × 512`, step-major): `512 × T`.
    pub fn lstm(&self, x: &[f32]) -> Vec<f32> {
        let y = self.lstm.forward(x);
        let t = x.len() / self.width.max(1);
        transpose(&y, t, y.len() / t.max(1))
    }

    /// Tokens to the encoder's output (`512 × T`, channel-major).
    pub fn forward(&self, tokens: &[i64]) -> Vec<f32> {
        let t = tokens.len();
        let mut x = transpose(&self.embed(tokens), t, self.width);
        for i in 0..self.blocks.len() {
            x = self.block(i, &x);
        }
        self.lstm(&transpose(&x, self.width, t))
    }
}

/// `rows × cols` to `cols × rows`.
pub(crate) fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = x[r * cols + c];
        }
    }
    out
}
