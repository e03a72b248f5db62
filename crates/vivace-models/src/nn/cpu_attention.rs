//! Multi-head attention on the CPU in one pass per block of queries:
//! `softmax(Q·Kᵀ·scale + bias)·V` for every (item, head), never building
//! the `[batch, heads, queries, keys]` score tensor.
//!
//! candle's ops make that tensor several times over (scores, scaled,
//! exponentiated, normalized): for S3Gen's decoder at 1000 frames that is
//! 64 MB per op, each freshly mapped and faulted in by the kernel. Here each
//! task takes 64 queries of one head, computes their scores with the `gemm`
//! crate into a buffer that stays in L2, exponentiates in place with the
//! vectorized [`exp`], multiplies by `V` and scales each output row by its
//! softmax sum, written straight into `[batch, queries, heads · dim]` (the
//! layout the output projection reads).

#[cfg(test)]
use candle_core::DType;
use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;

use super::cpu_ops::exp;

/// Queries per task: a 64 × 1000 score block is 256 KB.
const QUERY_BLOCK: usize = 64;

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
    let width = h * d;
    let mut out = vec![0f32; b * tq * width];
    if tk == 0 {
        return Tensor::from_vec(out, (b, tq, width), &Device::Cpu);
    }
    // Owned copies (a few MB) of operands the kernel then reads in place.
    let values = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
    let (q, k, v) = (values(q)?, values(k)?, values(v)?);
    let bias = bias.map(values).transpose()?;
    attend(
        &Shape { h, tq, tk, d },
        &q,
        &k,
        &v,
        scale,
        bias.as_deref(),
        &mut out,
    );
    Tensor::from_vec(out, (b, tq, width), &Device::Cpu)
}

/// The sizes of one attention call.
struct Shape {
    h: usize,
    tq: usize,
    tk: usize,
    d: usize,
}

/// The kernel: tasks over (item, query block), each running every head, so
/// that each task owns whole output rows.
fn attend(
    s: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    scale: f32,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let width = s.h * s.d;
    // One job per (item, block of queries): disjoint output rows.
    let jobs: Vec<(usize, usize, &mut [f32])> = out
        .chunks_mut(s.tq * width)
        .enumerate()
        .flat_map(|(item, rows)| {
            rows.chunks_mut(QUERY_BLOCK * width)
                .enumerate()
                .map(move |(blk, rows)| (item, blk, rows))
        })
        .collect();
    jobs.into_par_iter().for_each(|(item, blk, rows)| {
        let q0 = blk * QUERY_BLOCK;
        let n = rows.len() / width;
        let mut scores = vec![0f32; n * s.tk];
        for head in 0..s.h {
            let bh = item * s.h + head;
            let qh = &q[(bh * s.tq + q0) * s.d..(bh * s.tq + q0 + n) * s.d];
            let kh = &k[bh * s.tk * s.d..(bh + 1) * s.tk * s.d];
            let vh = &v[bh * s.tk * s.d..(bh + 1) * s.tk * s.d];
            // scores = qh · khᵀ
            gemm_nt(n, s.tk, s.d, qh, kh, &mut scores);
            let bias_rows = bias.map(|b| &b[(bh * s.tq + q0) * s.tk..(bh * s.tq + q0 + n) * s.tk]);
            let mut sums = vec![0f32; n];
            for (r, row) in scores.chunks_exact_mut(s.tk).enumerate() {
                match bias_rows {
                    Some(b) => {
                        let b = &b[r * s.tk..(r + 1) * s.tk];
                        row.iter_mut()
                            .zip(b)
                            .for_each(|(x, &y)| *x = *x * scale + y);
                    }
                    None => row.iter_mut().for_each(|x| *x *= scale),
                }
                let max = lane_max(row);
                row.iter_mut().for_each(|x| *x = exp(*x - max));
                sums[r] = lane_sum(row);
            }
            // rows[:, head·d .. (head+1)·d] = scores · vh, then / sum.
            let dst = &mut rows[head * s.d..];
            gemm_nn_strided(n, s.d, s.tk, &scores, vh, dst, width);
            for (r, sum) in sums.iter().enumerate() {
                let inv = 1.0 / sum;
                for x in &mut dst[r * width..r * width + s.d] {
                    *x *= inv;
                }
            }
        }
    });
}

/// Lanes of the reductions below: independent partial results the compiler
/// keeps in one vector register (a float reduction in one accumulator stays
/// scalar, since reordering it changes the rounding).
const LANES: usize = 16;

/// The largest value of `xs` (−∞ for none).
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

/// The sum of `xs`, in [`LANES`] partial sums.
fn lane_sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    acc.into_iter().sum::<f32>() + tail
}

/// `c[m, n] = a[m, k] · b[n, k]ᵀ`, all row-major and dense.
fn gemm_nt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(
        a.len() >= m * k && b.len() >= n * k && c.len() >= m * n,
        "gemm_nt: operands too short"
    );
    // SAFETY: the assert bounds every index: a is read at i·k + p, b at
    // j·k + p (its transpose: row stride 1, column stride k), c written at
    // i·n + j, for i < m, j < n, p < k; c is a &mut, so it aliases neither.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            k as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// `c[m, n] = a[m, k] · b[k, n]`, `a` and `b` row-major and dense, `c`'s
/// rows `ldc` apart.
fn gemm_nn_strided(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], ldc: usize) {
    assert!(
        a.len() >= m * k
            && b.len() >= k * n
            && ldc >= n
            && (m == 0 || c.len() >= (m - 1) * ldc + n),
        "gemm_nn: operands too short"
    );
    // SAFETY: the assert bounds a (i·k + p), b (p·n + j) and c (i·ldc + j)
    // for i < m, j < n, p < k; c is a &mut, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
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
        let bad = Tensor::zeros((1, 1, 2, 3), DType::F32, &dev)?;
        let q = Tensor::zeros((1, 1, 2, 4), DType::F32, &dev)?;
        assert!(attention(&q, &bad, &bad, 1.0, None).is_err());
        Ok(())
    }
}
