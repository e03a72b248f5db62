//! Kokoro's text encoder for prosody (`encoder.bert`, a PL-BERT: ALBERT
//! with one layer shared twelve times, 768 wide, 12 heads, 2048-wide
//! feed-forward with tanh GELU) and its projection to 512
//! (`encoder.bert_encoder`), read from the int8 export by the names of the
//! nodes that use each weight, and run with the export's own arithmetic:
//! embeddings dequantized (`(q − zero point) · scale`), every linear layer
//! in onnxruntime's dynamic int8 ([`QuantizedLinear`]).

use rayon::prelude::*;

use crate::error::Result;
use crate::nn::int8::{Arithmetic, QuantizedLinear};
use crate::onnx::OnnxGraph;

use super::layer_norm::LayerNorm;
use super::weights::dequantize;

/// The shared layer's node path in the export.
const LAYER: &str = "/encoder/bert/encoder/albert_layer_groups.0/albert_layers.0";
/// Its weights' initializer prefix.
const LAYER_WEIGHTS: &str = "encoder.bert.encoder.albert_layer_groups.0.albert_layers.0";
/// How many times the layer runs (`num_hidden_layers`).
const LAYERS: usize = 12;
/// Attention heads.
const HEADS: usize = 12;

/// The encoder: tokens to `bert_dur` (`T × 512`).
pub struct Albert {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embedding_width: usize,
    embeddings_norm: LayerNorm,
    mapping_in: QuantizedLinear,
    query: QuantizedLinear,
    key: QuantizedLinear,
    value: QuantizedLinear,
    dense: QuantizedLinear,
    attention_norm: LayerNorm,
    ffn: QuantizedLinear,
    ffn_bias: Vec<f32>,
    ffn_output: QuantizedLinear,
    full_norm: LayerNorm,
    bert_encoder: QuantizedLinear,
    arithmetic: Arithmetic,
}

impl Albert {
    /// Reads the encoder's weights from the export.
    pub fn load(graph: &OnnxGraph) -> Result<Self> {
        let embedding = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
            let d = dequantize(
                graph,
                &format!("encoder.bert.embeddings.{name}.weight_quantized"),
            )?;
            Ok((d.dims, d.values))
        };
        let (word_dims, word) = embedding("word_embeddings")?;
        let (_, position) = embedding("position_embeddings")?;
        let (_, token_type) = embedding("token_type_embeddings")?;
        let embedding_width = *word_dims.get(1).unwrap_or(&0);
        let linear = |path: &str, module: &str| {
            QuantizedLinear::from_graph(
                graph,
                &format!("{LAYER}/{path}/MatMul_quant"),
                Some(&format!("{LAYER_WEIGHTS}.{module}.bias")),
            )
        };
        let (_, ffn_bias) = graph.values(&format!("{LAYER_WEIGHTS}.ffn.bias"))?;
        Ok(Self {
            word,
            position,
            token_type,
            embedding_width,
            embeddings_norm: LayerNorm::load(
                graph,
                "encoder.bert.embeddings.LayerNorm.weight",
                "encoder.bert.embeddings.LayerNorm.bias",
                "/encoder/bert/embeddings/LayerNorm/LayerNormalization",
            )?,
            mapping_in: QuantizedLinear::from_graph(
                graph,
                "/encoder/bert/encoder/embedding_hidden_mapping_in/MatMul_quant",
                Some("encoder.bert.encoder.embedding_hidden_mapping_in.bias"),
            )?,
            query: linear("attention/query", "attention.query")?,
            key: linear("attention/key", "attention.key")?,
            value: linear("attention/value", "attention.value")?,
            dense: linear("attention/dense", "attention.dense")?,
            attention_norm: LayerNorm::load(
                graph,
                &format!("{LAYER_WEIGHTS}.attention.LayerNorm.weight"),
                &format!("{LAYER_WEIGHTS}.attention.LayerNorm.bias"),
                &format!("{LAYER}/attention/LayerNorm/LayerNormalization"),
            )?,
            ffn: QuantizedLinear::from_graph(graph, &format!("{LAYER}/ffn/MatMul_quant"), None)?,
            ffn_bias,
            ffn_output: linear("ffn_output", "ffn_output")?,
            full_norm: LayerNorm::load(
                graph,
                &format!("{LAYER_WEIGHTS}.full_layer_layer_norm.weight"),
                &format!("{LAYER_WEIGHTS}.full_layer_layer_norm.bias"),
                "SkipLayerNormalization",
            )?,
            bert_encoder: QuantizedLinear::from_graph(
                graph,
                "/encoder/bert_encoder/MatMul_quant",
                Some("encoder.bert_encoder.bias"),
            )?,
            arithmetic: Arithmetic::Int8,
        })
    }

    /// Computes in `arithmetic` (onnxruntime's int8 by default; float for
    /// the rendering the int8 model approximates).
    pub fn with_arithmetic(mut self, arithmetic: Arithmetic) -> Self {
        self.arithmetic = arithmetic;
        self
    }

    /// How many token ids the word embedding has rows for.
    pub fn vocab_size(&self) -> usize {
        self.word.len() / self.embedding_width.max(1)
    }

    /// The embeddings after their LayerNorm (`T × 128`): word, token type 0
    /// and position, summed in the export's order. Ids past the table read
    /// as the pad (0).
    pub fn embeddings(&self, tokens: &[i64]) -> Vec<f32> {
        let w = self.embedding_width;
        let rows = self.word.len() / w.max(1);
        let positions = self.position.len() / w.max(1);
        let mut out = Vec::with_capacity(tokens.len() * w);
        for (t, &id) in tokens.iter().enumerate() {
            let id = usize::try_from(id).ok().filter(|&i| i < rows).unwrap_or(0);
            let p = t.min(positions.saturating_sub(1));
            for c in 0..w {
                let v = self.word[id * w + c] + self.token_type[c];
                out.push(v + self.position[p * w + c]);
            }
        }
        self.embeddings_norm.apply(&mut out);
        out
    }

    /// One application of the shared layer to `h` (`T × 768`).
    pub fn layer(&self, h: &[f32]) -> Vec<f32> {
        let width = self.query.out_features();
        let t = h.len() / width.max(1);
        let head = width / HEADS;
        // Queries and keys are each scaled by √(1/√d), as the export does.
        let s = (1.0 / (head as f32).sqrt()).sqrt();
        let q: Vec<f32> = self
            .query
            .apply(h, self.arithmetic)
            .iter()
            .map(|v| v * s)
            .collect();
        let k: Vec<f32> = self
            .key
            .apply(h, self.arithmetic)
            .iter()
            .map(|v| v * s)
            .collect();
        let v = self.value.apply(h, self.arithmetic);
        // Each query row (all heads) on rayon's pool, with its own scores.
        let mut context = vec![0f32; t * width];
        context
            .par_chunks_mut(width.max(1))
            .enumerate()
            .for_each_init(
                || vec![0f32; t],
                |scores, (i, row)| {
                    for hd in 0..HEADS {
                        let o = hd * head;
                        let qi = &q[i * width + o..i * width + o + head];
                        for (j, s) in scores.iter_mut().enumerate() {
                            let kj = &k[j * width + o..j * width + o + head];
                            *s = qi.iter().zip(kj).map(|(a, b)| a * b).sum();
                        }
                        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let mut sum = 0.0;
                        for s in scores.iter_mut() {
                            *s = (*s - max).exp();
                            sum += *s;
                        }
                        let out = &mut row[o..o + head];
                        for (j, p) in scores.iter().enumerate() {
                            let p = p / sum;
                            let vj = &v[j * width + o..j * width + o + head];
                            for (c, x) in out.iter_mut().zip(vj) {
                                *c += p * x;
                            }
                        }
                    }
                },
            );
        let mut attended = self.dense.apply(&context, self.arithmetic);
        for (a, x) in attended.iter_mut().zip(h) {
            *a += x;
        }
        self.attention_norm.apply(&mut attended);
        // FastGelu(x + bias): tanh GELU.
        let mut ffn = self.ffn.apply(&attended, self.arithmetic);
        ffn.par_chunks_mut(self.ffn_bias.len().max(1))
            .for_each(|row| {
                for (x, b) in row.iter_mut().zip(&self.ffn_bias) {
                    let y = *x + b;
                    *x = 0.5 * y * (1.0 + (0.797_884_6 * y * (1.0 + 0.044_715 * y * y)).tanh());
                }
            });
        let mut out = self.ffn_output.apply(&ffn, self.arithmetic);
        for (o, a) in out.iter_mut().zip(&attended) {
            *o += a;
        }
        self.full_norm.apply(&mut out);
        out
    }

    /// The projection of the embeddings to the layer's width (`T × 768`).
    pub fn hidden_in(&self, embeddings: &[f32]) -> Vec<f32> {
        self.mapping_in.apply(embeddings, self.arithmetic)
    }

    /// `bert_encoder`'s projection of the last layer (`T × 512`).
    pub fn project(&self, h: &[f32]) -> Vec<f32> {
        self.bert_encoder.apply(h, self.arithmetic)
    }

    /// Tokens to `bert_dur` (`T × 512`): embeddings, the shared layer 12
    /// times, the projection.
    pub fn forward(&self, tokens: &[i64]) -> Vec<f32> {
        let mut h = self.hidden_in(&self.embeddings(tokens));
        for _ in 0..LAYERS {
            h = self.layer(&h);
        }
        self.project(&h)
    }
}
