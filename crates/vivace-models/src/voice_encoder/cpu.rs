//! The voice encoder on the CPU without candle's per-op overhead.
//!
//! candle runs an LSTM step as about a dozen tensor ops (narrow, matmul,
//! sigmoid, tanh, multiply, add), each a new tensor, and splits the small
//! recurrent product `[windows, 256] · [256, 1024]` over the thread pool at
//! every one of the 480 steps, so the threads spend their time handing work
//! over. Here the windows are split between the threads once; each thread
//! runs its windows through all layers alone: per layer one input product
//! for every step, then per step one recurrent product added in place and
//! the gates in a single pass (with the vectorizable `exp` of
//! [`crate::nn::cpu_ops`]). See `docs/PERFORMANCE.md` for the counts.

use rayon::prelude::*;

use crate::nn::cpu_gemm::{has_avx512, matmul};
use crate::nn::cpu_ops::{sigmoid, tanh};

/// One LSTM layer's weights, host-side and transposed for row-major products.
#[derive(Debug, Clone)]
pub(super) struct HostLstmLayer {
    /// `W_ihᵀ`, `[in, 4H]`.
    pub w_ih_t: Vec<f32>,
    /// `W_hhᵀ`, `[H, 4H]`.
    pub w_hh_t: Vec<f32>,
    /// `b_ih + b_hh`, `[4H]`.
    pub bias: Vec<f32>,
    pub input: usize,
    pub hidden: usize,
}

/// The whole encoder, host-side.
#[derive(Debug, Clone)]
pub(super) struct HostEncoder {
    pub layers: Vec<HostLstmLayer>,
    /// `[H, E]`.
    pub proj_t: Vec<f32>,
    /// `[E]`.
    pub proj_bias: Vec<f32>,
}

/// One step of the LSTM cell for one window: `c ← σ(f)·c + σ(i)·tanh(g)`,
/// `h ← σ(o)·tanh(c)`. With `avx512` (the CPU's, from
/// [`has_avx512`]) the same loop is compiled for 16 lanes (the baseline
/// x86-64 target gives 4).
fn lstm_cell(avx512: bool, [c, h]: [&mut [f32]; 2], [i, f, g, o]: [&[f32]; 4]) {
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        // SAFETY: the caller found AVX-512F on this CPU.
        unsafe { lstm_cell_avx512(c, h, i, f, g, o) };
        return;
    }
    let _ = avx512;
    lstm_cell_lanes(c, h, i, f, g, o);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn lstm_cell_avx512(
    c: &mut [f32],
    h: &mut [f32],
    i: &[f32],
    f: &[f32],
    g: &[f32],
    o: &[f32],
) {
    lstm_cell_lanes(c, h, i, f, g, o);
}

/// [`lstm_cell`]'s loop, over zipped slices so it has no bounds checks and
/// vectorizes for whatever target it is inlined into.
#[inline(always)]
fn lstm_cell_lanes(c: &mut [f32], h: &mut [f32], i: &[f32], f: &[f32], g: &[f32], o: &[f32]) {
    for (((((c, h), &i), &f), &g), &o) in c.iter_mut().zip(h.iter_mut()).zip(i).zip(f).zip(g).zip(o)
    {
        *c = sigmoid(f) * *c + sigmoid(i) * tanh(g);
        *h = sigmoid(o) * tanh(*c);
    }
}

impl HostLstmLayer {
    /// Runs the layer over `x` `[b, t, in]`; returns every hidden state
    /// `[b, t, H]` (the last step of each window is its final state).
    fn forward(&self, x: &[f32], b: usize, t: usize) -> Vec<f32> {
        let (h, g) = (self.hidden, 4 * self.hidden);
        // Input projections of every step, with both biases: [b·t, 4H].
        let mut gates = vec![0f32; b * t * g];
        for row in gates.chunks_exact_mut(g) {
            row.copy_from_slice(&self.bias);
        }
        matmul([b * t, g, self.input], &mut gates, g, true, x, &self.w_ih_t);
        let mut out = vec![0f32; b * t * h];
        let mut hidden = vec![0f32; b * h];
        let mut cell = vec![0f32; b * h];
        let avx512 = has_avx512();
        for step in 0..t {
            // gates[:, step, :] += h · W_hhᵀ, rows t·4H apart.
            let first = step * g;
            matmul(
                [b, g, h],
                &mut gates[first..],
                t * g,
                true,
                &hidden,
                &self.w_hh_t,
            );
            for w in 0..b {
                let z = &gates[(w * t + step) * g..(w * t + step + 1) * g];
                let (zi, rest) = z.split_at(h);
                let (zf, rest) = rest.split_at(h);
                let (zg, zo) = rest.split_at(h);
                let c = &mut cell[w * h..(w + 1) * h];
                let hs = &mut hidden[w * h..(w + 1) * h];
                lstm_cell(avx512, [c, hs], [zi, zf, zg, zo]);
                out[(w * t + step) * h..(w * t + step + 1) * h].copy_from_slice(hs);
            }
        }
        out
    }
}

impl HostEncoder {
    /// Embeddings `[b, E]` (row-major) of windows `[b, t, 40]`: the windows
    /// split between the rayon pool's threads, each part run alone.
    pub fn embed_windows(&self, mels: &[f32], b: usize, t: usize) -> Vec<f32> {
        let e = self.proj_bias.len();
        let per_window = t * self.layers.first().map_or(0, |l| l.input);
        let threads = rayon::current_num_threads().max(1);
        let chunk = b.div_ceil(threads).max(1);
        let parts: Vec<Vec<f32>> = mels
            .par_chunks(chunk * per_window)
            .map(|part| self.embed_part(part, part.len() / per_window, t))
            .collect();
        let out = parts.concat();
        debug_assert_eq!(out.len(), b * e);
        out
    }

    /// [`Self::embed_windows`] on one thread.
    fn embed_part(&self, mels: &[f32], b: usize, t: usize) -> Vec<f32> {
        // `from_tensors` refuses an encoder without layers.
        let (first, rest) = self
            .layers
            .split_first()
            .expect("an encoder has at least one LSTM layer");
        let mut x = first.forward(mels, b, t);
        for layer in rest {
            x = layer.forward(&x, b, t);
        }
        let hidden = rest.last().unwrap_or(first).hidden;
        let last: Vec<f32> = (0..b)
            .flat_map(|w| {
                x[(w * t + t - 1) * hidden..(w * t + t) * hidden]
                    .iter()
                    .copied()
            })
            .collect();
        let e = self.proj_bias.len();
        let mut out = vec![0f32; b * e];
        for row in out.chunks_exact_mut(e) {
            row.copy_from_slice(&self.proj_bias);
        }
        matmul([b, e, hidden], &mut out, e, true, &last, &self.proj_t);
        for row in out.chunks_exact_mut(e) {
            row.iter_mut().for_each(|v| *v = v.max(0.0));
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
        out
    }
}
