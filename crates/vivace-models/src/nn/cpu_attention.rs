//! Multi-head attention on the CPU in one pass per block of queries:
//! `softmax(Q·Kᵀ·scale + bias)·V` for every (item, head), never building
//! the `[batch, heads, queries, keys]` score tensor.
//!
//! candle's ops make that tensor several times over (scores, scaled,
//! exponentiated, normalized): for S3Gen's decoder at 1000 frames that is
//! 64 MB per op, each freshly mapped and faulted in by the kernel. Here each
//! task takes 64 queries of one item, and for each head computes their
//! scores with the `gemm` crate into a buffer that stays in L2,
//! exponentiates in place with the vectorized [`exp`], multiplies by `V` and
//! scales each output row by its softmax sum.
//!
//! Operands are read in place through strides, so the same kernel serves
//! the usual `[batch, heads, positions, dim]` tensors and channel-major
//! activations (`[batch, heads · dim, positions]`, the layout of a
//! convolutional network's transformer blocks) with no transposed copies.

#[cfg(test)]
use candle_core::DType;
use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;

use super::cpu_conv::SharedOut;
use super::cpu_ops::{exp, with_cpu_slice, with_wide_vectors};

/// Queries per task: a 64 × 1000 score block is 256 KB.
const QUERY_BLOCK: usize = 64;

/// Where element (item, head, position, dim) of an operand lies: `start +
/// item·item + head·head + position·pos + dim·dim` in its buffer.
#[derive(Debug, Clone, Copy)]
struct Layout {
    start: usize,
    item: usize,
    head: usize,
    pos: usize,
    dim: usize,
}

impl Layout {
    /// `[b, h, positions, d]`, dense.
    fn heads_major(h: usize, positions: usize, d: usize) -> Self {
        Self {
            start: 0,
            item: h * positions * d,
            head: positions * d,
            pos: d,
            dim: 1,
        }
    }

    /// `[b, h · d, positions]` starting at channel `channel0` of `channels`.
    fn channel_major(channels: usize, channel0: usize, positions: usize, d: usize) -> Self {
        Self {
            start: channel0 * positions,
            item: channels * positions,
            head: d * positions,
            pos: 1,
            dim: positions,
        }
    }

    /// One past the largest index for `b` items, `h` heads, `t` positions, `d` dims.
    fn extent(&self, b: usize, h: usize, t: usize, d: usize) -> usize {
        self.start
            + (b - 1) * self.item
            + (h - 1) * self.head
            + (t - 1) * self.pos
            + (d - 1) * self.dim
            + 1
    }
}

/// The sizes of one attention call.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    b: usize,
    h: usize,
    tq: usize,
    tk: usize,
    d: usize,
}

/// `softmax(q·kᵀ·scale + bias)·v` for `q` `[b, h, tq, d]`, `k`, `v`
/// `[b, h, tk, d]` (f32 on the CPU), and an optional additive `bias`
/// `[b, h, tq, tk]` on the scores; returns `[b, tq, h · d]`.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f32,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, h, tq, d) = q.dims4()?;
    let (kb, kh, tk, kd) = k.dims4()?;
    if (kb, kh, kd) != (b, h, d) || v.dims4()? != (b, h, tk, d) {
        candle_core::bail!(
            "attention: q {:?}, k {:?}, v {:?} do not agree",
            q.dims(),
            k.dims(),
            v.dims()
        );
    }
    if let Some(bias) = bias {
        if bias.dims4()? != (b, h, tq, tk) {
            candle_core::bail!(
                "attention: bias {:?}, scores [{b}, {h}, {tq}, {tk}]",
                bias.dims()
            );
        }
    }
    let sizes = Sizes { b, h, tq, tk, d };
    let mut out = vec![0f32; b * tq * h * d];
    if b * h * tq * tk * d > 0 {
        // Owned copies (a few MB) of operands the kernel then reads in place.
        let values = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        let (q, k, v) = (values(q)?, values(k)?, values(v)?);
        let bias = bias.map(values).transpose()?;
        let out_layout = Layout {
            start: 0,
            item: tq * h * d,
            head: d,
            pos: h * d,
            dim: 1,
        };
        attend(
            sizes,
            (&q, Layout::heads_major(h, tq, d)),
            (&k, Layout::heads_major(h, tk, d)),
            (&v, Layout::heads_major(h, tk, d)),
            scale,
            bias.as_deref(),
            (&mut out, out_layout),
        );
    }
    Tensor::from_vec(out, (b, tq, h * d), &Device::Cpu)
}

/// Self-attention over channel-major activations: `qkv` `[b, 3 · heads · d,
/// t]` holds the queries, keys and values (in that order, head by head);
/// returns `[b, heads · d, t]`, also channel-major.
pub fn self_attention_channel_major(qkv: &Tensor, heads: usize, scale: f32) -> Result<Tensor> {
    let (b, channels, t) = qkv.dims3()?;
    if heads == 0 || !channels.is_multiple_of(3 * heads) {
        candle_core::bail!("attention: {channels} channels are not q, k and v for {heads} heads");
    }
    let inner = channels / 3;
    let d = inner / heads;
    let mut out = vec![0f32; b * inner * t];
    if b * t * d > 0 {
        let sizes = Sizes {
            b,
            h: heads,
            tq: t,
            tk: t,
            d,
        };
        with_cpu_slice(qkv, |qkv| {
            attend(
                sizes,
                (qkv, Layout::channel_major(channels, 0, t, d)),
                (qkv, Layout::channel_major(channels, inner, t, d)),
                (qkv, Layout::channel_major(channels, 2 * inner, t, d)),
                scale,
                None,
                (&mut out, Layout::channel_major(inner, 0, t, d)),
            )
        })?;
    }
    Tensor::from_vec(out, (b, inner, t), &Device::Cpu)
}

/// The kernel: one task per (item, block of queries), each running every
/// head, so that tasks write disjoint output elements.
fn attend(
    s: Sizes,
    (q, ql): (&[f32], Layout),
    (k, kl): (&[f32], Layout),
    (v, vl): (&[f32], Layout),
    scale: f32,
    bias: Option<&[f32]>,
    (out, ol): (&mut [f32], Layout),
) {
    // Every index the gemm calls below touch lies inside these extents.
    assert!(
        q.len() >= ql.extent(s.b, s.h, s.tq, s.d)
            && k.len() >= kl.extent(s.b, s.h, s.tk, s.d)
            && v.len() >= vl.extent(s.b, s.h, s.tk, s.d)
            && out.len() >= ol.extent(s.b, s.h, s.tq, s.d)
            && bias.is_none_or(|b| b.len() >= s.b * s.h * s.tq * s.tk),
        "attention: operands shorter than their layouts"
    );
    let blocks = s.tq.div_ceil(QUERY_BLOCK);
    let dst = SharedOut(out.as_mut_ptr());
    (0..s.b * blocks).into_par_iter().for_each_init(
        || (vec![0f32; QUERY_BLOCK * s.tk], vec![0f32; QUERY_BLOCK]),
        |(scores, sums), task| {
            let (item, q0) = (task / blocks, (task % blocks) * QUERY_BLOCK);
            let n = QUERY_BLOCK.min(s.tq - q0);
            for head in 0..s.h {
                let at = |l: &Layout| l.start + item * l.item + head * l.head;
                let scores = &mut scores[..n * s.tk];
                // SAFETY: the assert above bounds q (queries q0..q0+n),
                // k and v (every key) of this (item, head), and the score
                // buffer holds n × tk values.
                unsafe {
                    gemm::gemm(
                        n,
                        s.tk,
                        s.d,
                        scores.as_mut_ptr(),
                        1,
                        s.tk as isize,
                        false,
                        q.as_ptr().add(at(&ql) + q0 * ql.pos),
                        ql.dim as isize,
                        ql.pos as isize,
                        k.as_ptr().add(at(&kl)),
                        kl.pos as isize,
                        kl.dim as isize,
                        0.0,
                        if bias.is_some() { 1.0 } else { scale },
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                };
                let bh = item * s.h + head;
                let bias = bias.map(|b| &b[(bh * s.tq + q0) * s.tk..(bh * s.tq + q0 + n) * s.tk]);
                softmax_rows(scores, s.tk, scale, bias, &mut sums[..n]);
                let o = at(&ol) + q0 * ol.pos;
                // SAFETY: bounded by the assert above; this task alone
                // writes queries q0..q0+n of this item (every head, every dim).
                unsafe {
                    gemm::gemm(
                        n,
                        s.d,
                        s.tk,
                        dst.get().add(o),
                        ol.dim as isize,
                        ol.pos as isize,
                        false,
                        scores.as_ptr(),
                        1,
                        s.tk as isize,
                        v.as_ptr().add(at(&vl)),
                        vl.dim as isize,
                        vl.pos as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                    for (r, inv) in sums[..n].iter().enumerate() {
                        for j in 0..s.d {
                            *dst.get().add(o + r * ol.pos + j * ol.dim) *= inv;
                        }
                    }
                }
            }
        },
    );
}

/// `row = exp(row + bias − max)` for each row of `tk` scores (already
/// scaled by `scale` when there is no bias; with one, scaled here), and
/// `inv_sums[r] = 1 / Σ row`: the unnormalized softmax. Compiled for the
/// widest vectors the CPU has.
fn softmax_rows(
    scores: &mut [f32],
    tk: usize,
    scale: f32,
    bias: Option<&[f32]>,
    inv_sums: &mut [f32],
) {
    with_wide_vectors(
        #[inline(always)]
        || softmax_rows_generic(scores, tk, scale, bias, inv_sums),
    )
}

/// The portable body of [`softmax_rows`], inlined into its dispatch.
#[inline(always)]
fn softmax_rows_generic(
    scores: &mut [f32],
    tk: usize,
    scale: f32,
    bias: Option<&[f32]>,
    inv_sums: &mut [f32],
) {
    for (r, row) in scores.chunks_exact_mut(tk).enumerate() {
        if let Some(b) = bias {
            let b = &b[r * tk..(r + 1) * tk];
            row.iter_mut()
                .zip(b)
                .for_each(|(x, &y)| *x = *x * scale + y);
        }
        let max = lane_max(row);
        inv_sums[r] = 1.0 / exp_lane_sum(row, max);
    }
}

/// Lanes of the reductions below: independent partial results the compiler
/// keeps in one vector register (a float reduction in one accumulator stays
/// scalar, since reordering it changes the rounding).
const LANES: usize = 16;

/// The largest value of `xs` (−∞ for none).
#[inline(always)]
fn lane_max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = a.max(x);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    acc.into_iter().fold(tail, f32::max)
}

/// `xs = e^(xs − max)` in place, returning the sum, in [`LANES`] partial sums.
#[inline(always)]
fn exp_lane_sum(xs: &mut [f32], max: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *x = exp(*x - max);
            *a += *x;
        }
    }
    let mut tail = 0f32;
    for x in chunks.into_remainder() {
        *x = exp(*x - max);
        tail += *x;
    }
    acc.into_iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::D;

    /// Against candle's matmul + softmax, with and without a bias, for query
    /// counts that are and are not multiples of the block.
    #[test]
    fn matches_candle_attention() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for &(b, h, tq, tk, d) in &[(2, 3, 70, 50, 8), (1, 2, 64, 129, 16), (1, 1, 1, 1, 4)] {
            let q = Tensor::randn(0f32, 1.0, (b, h, tq, d), &dev)?;
            let k = Tensor::randn(0f32, 1.0, (b, h, tk, d), &dev)?;
            let v = Tensor::randn(0f32, 1.0, (b, h, tk, d), &dev)?;
            let bias = Tensor::randn(0f32, 1.0, (b, h, tq, tk), &dev)?;
            for bias in [None, Some(&bias)] {
                let mut scores = (q.matmul(&k.t()?)? * 0.3)?;
                if let Some(bias) = bias {
                    scores = (scores + bias)?;
                }
                let p = candle_nn::ops::softmax(&scores, D::Minus1)?;
                let want = p.matmul(&v)?.transpose(1, 2)?.reshape((b, tq, h * d))?;
                let got = attention(&q, &k, &v, 0.3, bias)?;
                let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(diff < 1e-5, "b{b} h{h} tq{tq} tk{tk} d{d}: {diff}");
            }
        }
        // The channel-major entry point against the heads-major one.
        let (b, h, t, d) = (2, 3, 70, 8);
        let qkv = Tensor::randn(0f32, 1.0, (b, 3 * h * d, t), &dev)?;
        let part = |i: usize| -> candle_core::Result<Tensor> {
            qkv.narrow(1, i * h * d, h * d)?
                .reshape((b, h, d, t))?
                .transpose(2, 3)?
                .contiguous()
        };
        let want = attention(&part(0)?, &part(1)?, &part(2)?, 0.4, None)?;
        let got = self_attention_channel_major(&qkv, h, 0.4)?.transpose(1, 2)?;
        let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "channel-major: {diff}");
        assert!(self_attention_channel_major(&qkv, 5, 1.0).is_err());

        let bad = Tensor::zeros((1, 1, 2, 3), DType::F32, &dev)?;
        let q = Tensor::zeros((1, 1, 2, 4), DType::F32, &dev)?;
        assert!(attention(&q, &bad, &bad, 1.0, None).is_err());
        Ok(())
    }
}
