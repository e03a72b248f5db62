//! Hebrew niqqud (vowel points) as piper-tts 1.8 restores them before its
//! Hebrew rules (`piper.hebrew.NakdimonDiacritizer`): Nakdimon (Elazar
//! Gershuni, MIT), a Keras character model exported to ONNX, read from the
//! `hebrew/nakdimon.onnx` piper-tts ships and run in plain f32 loops: a
//! 400-wide embedding, two bidirectional LSTMs whose directions are summed, a
//! dense layer and three heads (niqqud, dagesh, shin/sin dot).

use std::path::Path;

use candle_core::{DType, Device};

use crate::error::{Error, Result};
use crate::nn::cpu_ops::{argmax, sigmoid, tanh, with_wide_vectors};
use crate::onnx::OnnxWeights;
use crate::tashkeel::accumulate;

/// Model width.
const D: usize = 400;

/// Keras' LSTM (gates i, f, c, o; sigmoid and tanh), one direction, with
/// its kernel and recurrent kernel stored `[in][4H]` as Keras keeps them.
struct Lstm {
    kernel: Vec<f32>,
    recurrent: Vec<f32>,
    bias: Vec<f32>,
}

#[inline(always)]
fn lstm_gates(g: &[f32], c: &mut [f32], h: &mut [f32]) {
    let n = c.len();
    for j in 0..n {
        let i = sigmoid(g[j]);
        let f = sigmoid(g[n + j]);
        let cc = tanh(g[2 * n + j]);
        let o = sigmoid(g[3 * n + j]);
        c[j] = f * c[j] + i * cc;
        h[j] = o * tanh(c[j]);
    }
}

impl Lstm {
    /// Runs over `x` (`[T][D]`) forwards or backwards; the outputs are in
    /// time order either way, added to `out`.
    fn run(&self, x: &[f32], backwards: bool, out: &mut [f32]) {
        let steps = x.len() / D;
        let mut h = vec![0f32; D];
        let mut c = vec![0f32; D];
        let mut g = vec![0f32; 4 * D];
        for step in 0..steps {
            let t = if backwards { steps - 1 - step } else { step };
            g.copy_from_slice(&self.bias);
            accumulate(&mut g, &x[t * D..(t + 1) * D], &self.kernel);
            accumulate(&mut g, &h, &self.recurrent);
            with_wide_vectors(|| lstm_gates(&g, &mut c, &mut h));
            for (o, v) in out[t * D..(t + 1) * D].iter_mut().zip(&h) {
                *o += v;
            }
        }
    }
}

/// The published file's tensor names (a TensorFlow export's), by role.
struct Names {
    embedding: &'static str,
    lstms: [[&'static str; 3]; 4],
    dense: [&'static str; 2],
    heads: [[&'static str; 2]; 3],
}

const NAMES: Names = Names {
    embedding: "model/embedding/embedding_lookup/7542:0",
    // Kernel, recurrent kernel, bias: layer 1 forward and backward, layer 2.
    lstms: [
        [
            "Func/model/bidirectional/forward_lstm/PartitionedCall/input/_3:0",
            "Func/model/bidirectional/forward_lstm/PartitionedCall/input/_4:0",
            "Func/model/bidirectional/forward_lstm/PartitionedCall/input/_5:0",
        ],
        [
            "Func/model/bidirectional/backward_lstm/PartitionedCall/input/_15:0",
            "Func/model/bidirectional/backward_lstm/PartitionedCall/input/_16:0",
            "Func/model/bidirectional/backward_lstm/PartitionedCall/input/_17:0",
        ],
        [
            "Func/model/bidirectional_1/forward_lstm_1/PartitionedCall/input/_27:0",
            "Func/model/bidirectional_1/forward_lstm_1/PartitionedCall/input/_28:0",
            "Func/model/bidirectional_1/forward_lstm_1/PartitionedCall/input/_29:0",
        ],
        [
            "Func/model/bidirectional_1/backward_lstm_1/PartitionedCall/input/_39:0",
            "Func/model/bidirectional_1/backward_lstm_1/PartitionedCall/input/_40:0",
            "Func/model/bidirectional_1/backward_lstm_1/PartitionedCall/input/_41:0",
        ],
    ],
    dense: [
        "model/dense/Tensordot/ReadVariableOp:0",
        "model/dense/BiasAdd/ReadVariableOp:0",
    ],
    // Niqqud (16 classes), dagesh (3), shin/sin dot (4).
    heads: [
        [
            "model/N/Tensordot/ReadVariableOp:0",
            "model/N/BiasAdd/ReadVariableOp:0",
        ],
        [
            "model/D/Tensordot/ReadVariableOp:0",
            "model/D/BiasAdd/ReadVariableOp:0",
        ],
        [
            "model/S/Tensordot/ReadVariableOp:0",
            "model/S/BiasAdd/ReadVariableOp:0",
        ],
    ],
};

/// Nakdimon's class counts per head.
pub const HEAD_CLASSES: [usize; 3] = [16, 3, 4];

/// The model.
pub struct Nakdimon {
    embedding: Vec<f32>,
    vocabulary: usize,
    lstms: Vec<Lstm>,
    dense: (Vec<f32>, Vec<f32>),
    heads: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Nakdimon {
    /// Reads piper-tts's `hebrew/nakdimon.onnx`.
    pub fn load(path: &Path) -> Result<Self> {
        let weights = OnnxWeights::read(path, &Device::Cpu, DType::F32)?;
        let get = |name: &str, dims: &[usize]| weights.values(name, dims, "piper-tts's Nakdimon");
        let vocabulary = weights
            .tensors
            .get(NAMES.embedding)
            .and_then(|t| t.dims().first().copied())
            .unwrap_or(0);
        let mut lstms = Vec::new();
        for [kernel, recurrent, bias] in NAMES.lstms {
            lstms.push(Lstm {
                kernel: get(kernel, &[D, 4 * D])?,
                recurrent: get(recurrent, &[D, 4 * D])?,
                bias: get(bias, &[4 * D])?,
            });
        }
        let mut heads = Vec::new();
        for ([w, b], classes) in NAMES.heads.into_iter().zip(HEAD_CLASSES) {
            heads.push((get(w, &[D, classes])?, get(b, &[classes])?));
        }
        Ok(Self {
            embedding: get(NAMES.embedding, &[vocabulary, D])?,
            vocabulary,
            lstms,
            dense: (get(NAMES.dense[0], &[D, D])?, get(NAMES.dense[1], &[D])?),
            heads,
        })
    }

    /// The three heads' logits for each character id: `[T][16]`, `[T][3]`,
    /// `[T][4]`.
    pub fn logits(&self, ids: &[usize]) -> Result<[Vec<f32>; 3]> {
        if let Some(bad) = ids.iter().find(|&&i| i >= self.vocabulary) {
            return Err(Error::InvalidInput(format!(
                "nakdimon: character id {bad} outside its {} entries",
                self.vocabulary
            )));
        }
        let t = ids.len();
        let mut x = Vec::with_capacity(t * D);
        for &id in ids {
            x.extend_from_slice(&self.embedding[id * D..(id + 1) * D]);
        }
        for layer in self.lstms.chunks_exact(2) {
            let mut y = vec![0f32; t * D];
            layer[0].run(&x, false, &mut y);
            layer[1].run(&x, true, &mut y);
            x = y;
        }
        let mut hidden = vec![0f32; t * D];
        for (row, xr) in hidden.chunks_exact_mut(D).zip(x.chunks_exact(D)) {
            row.copy_from_slice(&self.dense.1);
            accumulate(row, xr, &self.dense.0);
        }
        let head = |(w, b): &(Vec<f32>, Vec<f32>)| {
            let classes = b.len();
            let mut out = vec![0f32; t * classes];
            for (row, hr) in out.chunks_exact_mut(classes).zip(hidden.chunks_exact(D)) {
                row.copy_from_slice(b);
                accumulate(row, hr, w);
            }
            out
        };
        Ok([
            head(&self.heads[0]),
            head(&self.heads[1]),
            head(&self.heads[2]),
        ])
    }

    /// Each character's class in the three heads (the argmax of
    /// [`Nakdimon::logits`], the first on a tie as numpy's).
    pub fn predict(&self, ids: &[usize]) -> Result<[Vec<usize>; 3]> {
        let logits = self.logits(ids)?;
        let classes =
            |l: &[f32], n: usize| -> Vec<usize> { l.chunks_exact(n).map(argmax).collect() };
        Ok([
            classes(&logits[0], HEAD_CLASSES[0]),
            classes(&logits[1], HEAD_CLASSES[1]),
            classes(&logits[2], HEAD_CLASSES[2]),
        ])
    }
}
