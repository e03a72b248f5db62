//! `ConvInteger` sums four input channels a 32-bit lane with AVX-512 VNNI's
//! `vpdpbusd` (unsigned bytes × signed bytes, four products added into
//! each lane): twice the products per instruction of the two-channel
//! `vpdpwssd` kernel in [`super::int8`], as onnxruntime's MLAS does it.
//!
//! The activations stay unsigned bytes `x` (their zero point `xz` kept);
//! the weights `w` (uint8, zero point `wz`) become signed bytes `s = w −
//! 128`. Since `w − wz = s + (128 − wz)`:
//!
//! `Σ (x − xz)(w − wz) = Σ x·s + (128 − wz)·Σ x − xz·Σ (w − wz)`,
//!
//! the first term by `vpdpbusd`, the second from a sliding sum of the
//! input (the same for every output channel), the third a constant per
//! output channel. Padding and the channels that fill the last quad hold
//! `x = xz` and `w = wz`, which add nothing. All integer: the sums equal
//! the plain loops' exactly.

use rayon::prelude::*;

/// Output channels computed together (each input load feeds them all).
const BLOCK: usize = 4;
/// Steps a parallel piece of the input's preparation takes.
const STEPS: usize = 4096;
/// Output steps a time tile of the convolution takes (a multiple of 64).
const TILE: usize = 1024;

/// A convolution's weights as signed bytes, four input channels a lane.
pub(crate) struct QuadWeights {
    /// `quads × kernel` packed lanes per output channel, tap-major.
    packed: Vec<i32>,
    /// `Σ (w − wz)` per output channel.
    sums: Vec<i32>,
    /// `128 − wz`.
    shift: i32,
    taps: usize,
}

impl QuadWeights {
    /// Packs `weight` (`w − wz`, `[c_out][c_in][kernel]`) for the quad
    /// kernel; `None` when a weight is not an unsigned byte once `wz` is
    /// added back (an int8 export), which this kernel cannot take.
    pub(crate) fn new(
        weight: &[i16],
        zero: i32,
        c_out: usize,
        c_in: usize,
        kernel: usize,
    ) -> Option<Self> {
        if weight.len() != c_out * c_in * kernel
            || weight
                .iter()
                .any(|&w| !(0..=255).contains(&(i32::from(w) + zero)))
        {
            return None;
        }
        let quads = c_in.div_ceil(4);
        let taps = quads * kernel;
        let signed = |co: usize, c: usize, k: usize| -> u8 {
            // A channel past c_in holds w = wz, which adds nothing.
            let w = if c < c_in {
                i32::from(weight[(co * c_in + c) * kernel + k]) + zero
            } else {
                zero
            };
            ((w - 128) as i8) as u8
        };
        let mut packed = Vec::with_capacity(c_out * taps);
        for co in 0..c_out {
            for j in 0..taps {
                let (q, k) = (j / kernel, j % kernel);
                let bytes = [0, 1, 2, 3].map(|b| signed(co, 4 * q + b, k));
                packed.push(i32::from_le_bytes(bytes));
            }
        }
        let sums = weight
            .chunks_exact((c_in * kernel).max(1))
            .map(|row| row.iter().map(|&w| i32::from(w)).sum())
            .collect();
        Some(Self {
            packed,
            sums,
            shift: 128 - zero,
            taps,
        })
    }
}

/// Whether the quad kernels run: AVX-512 VNNI's (512-bit) or AVX-VNNI's
/// (256-bit), on the kernel path in use (`nn::cpu_kernel`).
pub(crate) fn available() -> bool {
    super::cpu_kernel::avx512_vnni() || super::cpu_kernel::avx_vnni()
}

/// The shape of one stride-1 convolution call.
pub(crate) struct Shape {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub dilation: usize,
    /// Input steps.
    pub t: usize,
    /// Zero steps before and after the input.
    pub pads: (usize, usize),
    /// Output steps: `t + pads − (kernel − 1)·dilation`.
    pub t_out: usize,
}

/// The int32 sums `Σ (x − xz)(w − wz)` (`c_out × t_out`) of the stride-1
/// convolution of `x` (`c_in × t` unsigned bytes, zero point `x_zero`):
/// the `vpdpbusd` kernel where [`available`], else the same sums lane by
/// lane (what a CPU without VNNI checks in the unit tests).
pub(crate) fn sums(weights: &QuadWeights, x: &[u8], x_zero: u8, shape: &Shape) -> Vec<i32> {
    let Shape {
        c_in,
        c_out,
        kernel,
        dilation,
        t,
        pads,
        t_out,
    } = *shape;
    let padded_t = t + pads.0 + pads.1;
    let quads = c_in.div_ceil(4);
    // The kernel's reads stay inside `lanes` only for a consistent shape:
    // the caller's arithmetic, checked once.
    assert_eq!(
        weights.taps,
        quads * kernel,
        "quad weights for another shape"
    );
    assert!(
        t_out == 0 || t_out + (kernel.max(1) - 1) * dilation <= padded_t,
        "{t_out} output steps from {padded_t} padded ones"
    );
    assert!(
        x.len() >= c_in * t,
        "{} input bytes for {c_in} × {t}",
        x.len()
    );
    let (wide, narrow) = (
        super::cpu_kernel::avx512_vnni(),
        super::cpu_kernel::avx_vnni(),
    );
    // Four channels' bytes a lane; padding and filler channels are xz.
    let fill = u32::from(x_zero) * 0x0101_0101;
    let mut lanes = vec![fill as i32; quads * padded_t];
    lanes
        .par_chunks_mut(padded_t.max(1))
        .enumerate()
        .for_each(|(q, row)| {
            for byte in 0..4 {
                let c = 4 * q + byte;
                let Some(src) = x.get(c * t..(c + 1) * t).filter(|_| c < c_in) else {
                    continue;
                };
                let shift = 8 * byte;
                for (lane, &v) in row[pads.0..].iter_mut().zip(src) {
                    let cleared = (*lane as u32) & !(0xFF << shift);
                    *lane = (cleared | (u32::from(v) << shift)) as i32;
                }
            }
        });
    // (128 − wz)·Σ x over each output step's window, and the per-channel
    // constant, both added after the products.
    let mut column = vec![0i32; padded_t];
    column
        .par_chunks_mut(STEPS)
        .enumerate()
        .for_each(|(piece, sums)| {
            let start = piece * STEPS;
            for q in 0..quads {
                let row = &lanes[q * padded_t + start..q * padded_t + start + sums.len()];
                for (s, &lane) in sums.iter_mut().zip(row) {
                    *s += lane
                        .to_le_bytes()
                        .iter()
                        .map(|&b| i32::from(b))
                        .sum::<i32>();
                }
            }
        });
    let mut window = vec![0i32; t_out];
    window
        .par_chunks_mut(STEPS)
        .enumerate()
        .for_each(|(piece, out)| {
            for (j, w) in out.iter_mut().enumerate() {
                let i = piece * STEPS + j;
                *w = (0..kernel).map(|k| column[i + k * dilation]).sum::<i32>() * weights.shift;
            }
        });
    let offsets: Vec<usize> = (0..weights.taps)
        .map(|j| (j / kernel) * padded_t + (j % kernel) * dilation)
        .collect();
    let mut sums = vec![0i32; c_out * t_out];
    let row_len = t_out.max(1);
    // Time tiles outermost, every block of output channels in parallel
    // within a tile: a tile's input (quads × (TILE + span) lanes, about
    // 140 KB at 128 channels) stays in cache while all blocks read it,
    // where whole rows (megabytes) would stream from memory once a block.
    for start in (0..t_out).step_by(TILE) {
        let len = TILE.min(t_out - start);
        sums.par_chunks_mut(BLOCK * row_len)
            .enumerate()
            .for_each(|(block, rows)| {
                let first = block * BLOCK;
                let channels = rows.len() / row_len;
                let w = |c: usize| {
                    &weights.packed[(first + c) * weights.taps..(first + c + 1) * weights.taps]
                };
                let mut done = 0;
                // SAFETY (both kernels): the CPU runs the instructions
                // (`wide`/`narrow` come from the kernel path, never wider
                // than the CPU's); every tap reads lanes[start + off + i]
                // for i < len, and start + len ≤ t_out, off + t_out ≤
                // (q + 1)·padded_t since t_out = padded_t − (kernel −
                // 1)·dilation (asserted above); the block's rows are
                // row_len apart from `start` on.
                #[cfg(target_arch = "x86_64")]
                if channels == BLOCK && (wide || narrow) {
                    let w = [w(0), w(1), w(2), w(3)];
                    let (lanes, rows) = (&lanes[start..], &mut rows[start..]);
                    done = if wide {
                        // SAFETY: as above, with AVX-512 VNNI.
                        unsafe { block_avx512_vnni(lanes, &offsets, w, rows, len, row_len) }
                    } else {
                        // SAFETY: as above, with AVX-VNNI.
                        unsafe { block_avx_vnni(lanes, &offsets, w, rows, len, row_len) }
                    };
                }
                for (c, row) in rows.chunks_exact_mut(row_len).enumerate() {
                    let wc = w(c);
                    for (i, out) in row[start..start + len].iter_mut().enumerate().skip(done) {
                        *out = offsets
                            .iter()
                            .zip(wc)
                            .map(|(&off, &wj)| dot4(lanes[start + off + i], wj))
                            .fold(0i32, i32::wrapping_add);
                    }
                }
            });
    }
    sums.par_chunks_mut(row_len)
        .enumerate()
        .for_each(|(c, row)| {
            let constant = i32::from(x_zero) * weights.sums[c];
            for (out, &win) in row.iter_mut().zip(&window) {
                *out = out.wrapping_add(win).wrapping_sub(constant);
            }
        });
    sums
}

/// One lane's four unsigned bytes times four signed bytes, added.
fn dot4(x: i32, w: i32) -> i32 {
    x.to_le_bytes()
        .iter()
        .zip(w.to_le_bytes())
        .map(|(&a, b)| i32::from(a) * i32::from(b as i8))
        .sum()
}

/// [`BLOCK`] output channels' products for steps `0..n`, 64 steps at a
/// time (16 accumulators), then sixteen at a time with the last vector
/// masked, channel `c`'s step `t` stored at `rows[c·stride + t]`; returns
/// how many steps it did (all `n`).
///
/// # Safety
/// The CPU must support AVX-512 BW and VNNI, and `offsets[j] + n ≤
/// lanes.len()` for every `j`. (`rows` shorter than `(BLOCK − 1)·stride +
/// n`, or weights shorter than `offsets`, only shorten the work.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn block_avx512_vnni(
    lanes: &[i32],
    offsets: &[usize],
    w: [&[i32]; BLOCK],
    rows: &mut [i32],
    n: usize,
    stride: usize,
) -> usize {
    use std::arch::x86_64::*;
    // Checked here, so that the loops' unchecked accesses stay in bounds:
    // `rows` holds BLOCK rows of `n`, `stride` apart, every tap has its
    // weight.
    let stride = stride.max(n);
    let n = n.min(rows.len().saturating_sub((BLOCK - 1) * stride));
    let taps = w.iter().map(|wc| wc.len()).min().unwrap_or(0);
    let offsets = &offsets[..offsets.len().min(taps)];
    let base = lanes.as_ptr();
    let mut t = 0;
    while t + 64 <= n {
        // SAFETY: the caller's contract, with t + 64 ≤ n.
        unsafe {
            let mut acc = [[_mm512_setzero_si512(); 4]; BLOCK];
            for (j, &off) in offsets.iter().enumerate() {
                let src = base.add(off + t);
                let x = [
                    _mm512_loadu_si512(src.cast()),
                    _mm512_loadu_si512(src.add(16).cast()),
                    _mm512_loadu_si512(src.add(32).cast()),
                    _mm512_loadu_si512(src.add(48).cast()),
                ];
                for (a, wc) in acc.iter_mut().zip(&w) {
                    let wv = _mm512_set1_epi32(*wc.get_unchecked(j));
                    for (ak, xk) in a.iter_mut().zip(&x) {
                        *ak = _mm512_dpbusd_epi32(*ak, *xk, wv);
                    }
                }
            }
            for (c, a) in acc.iter().enumerate() {
                let dst = rows.as_mut_ptr().add(c * stride + t);
                for (k, ak) in a.iter().enumerate() {
                    _mm512_storeu_si512(dst.add(16 * k).cast(), *ak);
                }
            }
        }
        t += 64;
    }
    // The rest, sixteen steps a vector, the last one masked (masked-out
    // lanes are neither read nor written).
    while t < n {
        let lanes_left = (n - t).min(16);
        let mask: __mmask16 = if lanes_left == 16 {
            0xFFFF
        } else {
            (1u16 << lanes_left) - 1
        };
        // SAFETY: the caller's contract; only the first `lanes_left ≤ n − t`
        // lanes are loaded and stored.
        unsafe {
            let mut acc = [_mm512_setzero_si512(); BLOCK];
            for (j, &off) in offsets.iter().enumerate() {
                let x = _mm512_maskz_loadu_epi32(mask, base.add(off + t));
                for (a, wc) in acc.iter_mut().zip(&w) {
                    *a = _mm512_dpbusd_epi32(*a, x, _mm512_set1_epi32(*wc.get_unchecked(j)));
                }
            }
            for (c, a) in acc.iter().enumerate() {
                _mm512_mask_storeu_epi32(rows.as_mut_ptr().add(c * stride + t), mask, *a);
            }
        }
        t += lanes_left;
    }
    t
}

/// [`block_avx512_vnni`] on 256-bit registers with AVX-VNNI (Intel client
/// CPUs since Alder Lake, without AVX-512): [`BLOCK`] channels × 16 steps
/// a step (8 accumulators of the 16 registers), then eight steps a vector
/// with the last one masked; returns how many steps it did (all `n`).
///
/// # Safety
/// The CPU must support AVX2 and AVX-VNNI, and `offsets[j] + n ≤
/// lanes.len()` for every `j`. (`rows` shorter than `(BLOCK − 1)·stride +
/// n`, or weights shorter than `offsets`, only shorten the work.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn block_avx_vnni(
    lanes: &[i32],
    offsets: &[usize],
    w: [&[i32]; BLOCK],
    rows: &mut [i32],
    n: usize,
    stride: usize,
) -> usize {
    use std::arch::x86_64::*;
    // Checked here, as in the 512-bit kernel.
    let stride = stride.max(n);
    let n = n.min(rows.len().saturating_sub((BLOCK - 1) * stride));
    let taps = w.iter().map(|wc| wc.len()).min().unwrap_or(0);
    let offsets = &offsets[..offsets.len().min(taps)];
    let base = lanes.as_ptr();
    let mut t = 0;
    while t + 16 <= n {
        // SAFETY: the caller's contract, with t + 16 ≤ n.
        unsafe {
            let mut acc = [[_mm256_setzero_si256(); 2]; BLOCK];
            for (j, &off) in offsets.iter().enumerate() {
                let src = base.add(off + t);
                let x = [
                    _mm256_loadu_si256(src.cast()),
                    _mm256_loadu_si256(src.add(8).cast()),
                ];
                for (a, wc) in acc.iter_mut().zip(&w) {
                    let wv = _mm256_set1_epi32(*wc.get_unchecked(j));
                    for (ak, xk) in a.iter_mut().zip(&x) {
                        *ak = _mm256_dpbusd_avx_epi32(*ak, *xk, wv);
                    }
                }
            }
            for (c, a) in acc.iter().enumerate() {
                let dst = rows.as_mut_ptr().add(c * stride + t);
                for (k, ak) in a.iter().enumerate() {
                    _mm256_storeu_si256(dst.add(8 * k).cast(), *ak);
                }
            }
        }
        t += 16;
    }
    while t < n {
        let left = (n - t).min(8);
        let mask: [i32; 8] = std::array::from_fn(|i| if i < left { -1 } else { 0 });
        // SAFETY: the caller's contract; only the first `left ≤ n − t`
        // lanes are loaded and stored (masked-out lanes are not touched).
        unsafe {
            let mask = _mm256_loadu_si256(mask.as_ptr().cast());
            let mut acc = [_mm256_setzero_si256(); BLOCK];
            for (j, &off) in offsets.iter().enumerate() {
                let x = _mm256_maskload_epi32(base.add(off + t), mask);
                for (a, wc) in acc.iter_mut().zip(&w) {
                    *a = _mm256_dpbusd_avx_epi32(*a, x, _mm256_set1_epi32(*wc.get_unchecked(j)));
                }
            }
            for (c, a) in acc.iter().enumerate() {
                _mm256_maskstore_epi32(rows.as_mut_ptr().add(c * stride + t), mask, *a);
            }
        }
        t += left;
    }
    t
}

/// A `MatMulInteger` layer's weights as signed bytes, column by column,
/// for [`linear_sums`].
pub(crate) struct ByteColumns {
    /// `n` columns of `k` signed bytes (`w − wz`).
    bytes: Vec<i8>,
    /// `Σ (w − wz)` per column.
    sums: Vec<i32>,
    k: usize,
}

impl ByteColumns {
    /// Packs `weight` (`w − wz`, `n` columns of `k`); `None` when a value
    /// is not a signed byte, which `vpdpbusd` cannot take.
    pub(crate) fn new(weight: &[i16], k: usize) -> Option<Self> {
        if k == 0 || !weight.len().is_multiple_of(k) {
            return None;
        }
        let bytes = weight
            .iter()
            .map(|&w| i8::try_from(w).ok())
            .collect::<Option<Vec<i8>>>()?;
        let sums = weight
            .chunks_exact(k)
            .map(|column| column.iter().map(|&w| i32::from(w)).sum())
            .collect();
        Some(Self { bytes, sums, k })
    }
}

/// `Σ_k (x − xz)·w` for every row of `x` (`rows × k` unsigned bytes, zero
/// point `x_zero`) and every column: `n × rows`, column-major. Blocks of
/// [`BLOCK`] columns in parallel on rayon's pool, on the `vpdpbusd` kernel
/// where [`available`], else plain loops.
pub(crate) fn linear_sums(columns: &ByteColumns, x: &[u8], x_zero: u8) -> Vec<i32> {
    let k = columns.k;
    let rows = x.len() / k.max(1);
    let n = columns.sums.len();
    let x = &x[..rows * k];
    let (wide, narrow) = (
        super::cpu_kernel::avx512_vnni(),
        super::cpu_kernel::avx_vnni(),
    );
    let mut out = vec![0i32; n * rows];
    out.par_chunks_mut(BLOCK * rows.max(1))
        .enumerate()
        .for_each(|(block, block_out)| {
            let first = block * BLOCK;
            let count = block_out.len() / rows.max(1);
            let w: [&[i8]; BLOCK] = std::array::from_fn(|c| {
                columns
                    .bytes
                    .get((first + c) * k..(first + c + 1) * k)
                    .filter(|_| c < count)
                    .unwrap_or(&[])
            });
            let mut done = false;
            // SAFETY (both kernels): the CPU runs the instructions (the
            // kernel path is never wider than the CPU's); `x` holds `rows`
            // rows of `k`, each of the first `count` weights `k` bytes, and
            // `block_out` `count` columns of `rows`.
            #[cfg(target_arch = "x86_64")]
            if wide {
                // SAFETY: as above, with AVX-512 VNNI.
                unsafe { linear_block_avx512_vnni(x, k, w, block_out) };
                done = true;
            } else if narrow {
                // SAFETY: as above, with AVX-VNNI.
                unsafe { linear_block_avx_vnni(x, k, w, block_out) };
                done = true;
            }
            if !done {
                for (column_out, wc) in block_out.chunks_exact_mut(rows.max(1)).zip(w) {
                    for (o, row) in column_out.iter_mut().zip(x.chunks_exact(k.max(1))) {
                        *o = row
                            .iter()
                            .zip(wc)
                            .map(|(&a, &b)| i32::from(a) * i32::from(b))
                            .sum();
                    }
                }
            }
            for (c, column_out) in block_out.chunks_exact_mut(rows.max(1)).enumerate() {
                let constant = i32::from(x_zero) * columns.sums[first + c];
                for o in column_out.iter_mut() {
                    *o = o.wrapping_sub(constant);
                }
            }
        });
    out
}

/// `Σ x·w` of four rows of `x` against up to [`BLOCK`] weight columns at a
/// time (sixteen accumulators: each 64-byte load of a row feeds four
/// columns, each load of a column four rows), the last 64-byte step
/// masked; written to `out` (`columns × rows`, column-major, `rows =
/// x.len() / k`). Rows past the last are computed on the last row and not
/// stored; missing columns (empty weights) hold zeros and are not stored.
///
/// # Safety
/// The CPU must support AVX-512 BW and VNNI; `x` must hold whole rows of
/// `k` bytes, every non-empty `w[c]` at least `k` bytes, and `out` at
/// most as many columns of `rows` as there are non-empty weights.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn linear_block_avx512_vnni(x: &[u8], k: usize, w: [&[i8]; BLOCK], out: &mut [i32]) {
    use std::arch::x86_64::*;
    let rows = x.len().checked_div(k).unwrap_or(0);
    if rows == 0 {
        return;
    }
    let columns = (out.len() / rows).min(w.iter().take_while(|c| c.len() >= k).count());
    let mut r = 0;
    while r < rows {
        let valid = (rows - r).min(4);
        // Rows past the last read the last (valid addresses, not stored).
        let row: [*const u8; 4] =
            std::array::from_fn(|j| x.as_ptr().wrapping_add((r + j.min(valid - 1)) * k));
        let mut acc = [[_mm512_setzero_si512(); BLOCK]; 4];
        let mut i = 0;
        while i < k {
            let left = (k - i).min(64);
            let mask: __mmask64 = if left == 64 {
                u64::MAX
            } else {
                (1u64 << left) - 1
            };
            // SAFETY: only the first `left ≤ k − i` bytes of each row and
            // of each of the first `columns` weights are read.
            unsafe {
                let wv: [__m512i; BLOCK] = std::array::from_fn(|c| {
                    if c < columns {
                        _mm512_maskz_loadu_epi8(mask, w[c].as_ptr().add(i).cast())
                    } else {
                        _mm512_setzero_si512()
                    }
                });
                for (a, &p) in acc.iter_mut().zip(&row) {
                    let xv = _mm512_maskz_loadu_epi8(mask, p.add(i).cast());
                    for (ac, &wc) in a.iter_mut().zip(&wv) {
                        *ac = _mm512_dpbusd_epi32(*ac, xv, wc);
                    }
                }
            }
            i += left;
        }
        for (j, a) in acc.iter().enumerate().take(valid) {
            for (c, &ac) in a.iter().enumerate().take(columns) {
                out[c * rows + r + j] = _mm512_reduce_add_epi32(ac);
            }
        }
        r += valid;
    }
}

/// [`linear_block_avx512_vnni`] on 256-bit registers with AVX-VNNI: two
/// rows against up to [`BLOCK`] columns (8 accumulators), 32 bytes a step;
/// the last `k mod 32` bytes (AVX2 has no byte-masked load) in plain
/// integer arithmetic.
///
/// # Safety
/// The CPU must support AVX2 and AVX-VNNI; as [`linear_block_avx512_vnni`]
/// otherwise.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn linear_block_avx_vnni(x: &[u8], k: usize, w: [&[i8]; BLOCK], out: &mut [i32]) {
    use std::arch::x86_64::*;
    let rows = x.len().checked_div(k).unwrap_or(0);
    if rows == 0 {
        return;
    }
    let columns = (out.len() / rows).min(w.iter().take_while(|c| c.len() >= k).count());
    let body = k - k % 32;
    let mut r = 0;
    while r < rows {
        let valid = (rows - r).min(2);
        let row: [&[u8]; 2] =
            std::array::from_fn(|j| &x[(r + j.min(valid - 1)) * k..(r + j.min(valid - 1) + 1) * k]);
        let mut acc = [[_mm256_setzero_si256(); BLOCK]; 2];
        let mut i = 0;
        while i < body {
            // SAFETY: i + 32 ≤ body ≤ k, within every row and each of the
            // first `columns` weights.
            unsafe {
                let wv: [__m256i; BLOCK] = std::array::from_fn(|c| {
                    if c < columns {
                        _mm256_loadu_si256(w[c].as_ptr().add(i).cast())
                    } else {
                        _mm256_setzero_si256()
                    }
                });
                for (a, p) in acc.iter_mut().zip(&row) {
                    let xv = _mm256_loadu_si256(p.as_ptr().add(i).cast());
                    for (ac, &wc) in a.iter_mut().zip(&wv) {
                        *ac = _mm256_dpbusd_avx_epi32(*ac, xv, wc);
                    }
                }
            }
            i += 32;
        }
        for (j, a) in acc.iter().enumerate().take(valid) {
            for (c, &ac) in a.iter().enumerate().take(columns) {
                let mut lanes = [0i32; 8];
                // SAFETY: an unaligned store of 32 bytes into 8 i32s.
                unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), ac) };
                let tail: i32 = row[j][body..]
                    .iter()
                    .zip(&w[c][body..k])
                    .map(|(&a, &b)| i32::from(a) * i32::from(b))
                    .sum();
                out[c * rows + r + j] = lanes.iter().fold(tail, |s, &v| s.wrapping_add(v));
            }
        }
        r += valid;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random bytes from `seed` (a linear congruential generator).
    fn bytes(mut state: u32) -> impl FnMut() -> u8 {
        move || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 16) as u8
        }
    }

    /// The quad sums equal the definition, `Σ (x − xz)(w − wz)`, for odd
    /// channel counts, dilation, padding, and lengths that leave tails
    /// (on a CPU without VNNI the scalar path is what is checked).
    #[test]
    fn quad_sums_equal_the_definition() {
        // A short row (one tile with a masked tail) and one of three time
        // tiles, the last partial.
        for t in [150, 2 * TILE + 77] {
            let (c_in, c_out, kernel, dilation, pads) = (7, 6, 3, 2, (2, 3));
            let mut next = bytes(99);
            let (wz, xz) = (61i32, 140u8);
            let weight: Vec<i16> = (0..c_out * c_in * kernel)
                .map(|_| (i32::from(next()) - wz) as i16)
                .collect();
            let x: Vec<u8> = (0..c_in * t).map(|_| next()).collect();
            let quads = QuadWeights::new(&weight, wz, c_out, c_in, kernel).expect("uint8 weights");
            let t_out = t + pads.0 + pads.1 - (kernel - 1) * dilation;
            let shape = Shape {
                c_in,
                c_out,
                kernel,
                dilation,
                t,
                pads,
                t_out,
            };
            let got = sums(&quads, &x, xz, &shape);
            for co in 0..c_out {
                for i in 0..t_out {
                    let mut want = 0i32;
                    for ci in 0..c_in {
                        for k in 0..kernel {
                            let p = i + k * dilation;
                            let xv = if p < pads.0 || p >= pads.0 + t {
                                0
                            } else {
                                i32::from(x[ci * t + p - pads.0]) - i32::from(xz)
                            };
                            want += xv * i32::from(weight[(co * c_in + ci) * kernel + k]);
                        }
                    }
                    assert_eq!(got[co * t_out + i], want, "channel {co}, step {i}");
                }
            }
        }
        // Weights that are not unsigned bytes (an int8 export) are refused.
        assert!(QuadWeights::new(&[-70], 61, 1, 1, 1).is_none());
    }

    /// The byte linear sums equal the definition for a width that leaves a
    /// masked tail (100 = 64 + 36), rows that leave a block of 3 and
    /// columns a block of 2.
    #[test]
    fn linear_sums_equal_the_definition() {
        if !available() {
            return; // the path is only taken where VNNI is
        }
        let (k, n, rows, xz) = (100, 6, 7, 131u8);
        let mut next = bytes(7);
        let weight: Vec<i16> = (0..n * k).map(|_| i16::from(next() as i8)).collect();
        let x: Vec<u8> = (0..rows * k).map(|_| next()).collect();
        let columns = ByteColumns::new(&weight, k).expect("signed bytes");
        let got = linear_sums(&columns, &x, xz);
        for c in 0..n {
            for r in 0..rows {
                let want: i32 = (0..k)
                    .map(|i| {
                        (i32::from(x[r * k + i]) - i32::from(xz)) * i32::from(weight[c * k + i])
                    })
                    .sum();
                assert_eq!(got[c * rows + r], want, "column {c}, row {r}");
            }
        }
        assert!(ByteColumns::new(&[200], 1).is_none());
    }

    /// The AVX-VNNI kernels (256-bit) against the definitions, where this
    /// CPU has AVX-VNNI: the quad block over a length with a masked tail,
    /// the linear block over rows, columns and a `k` with a plain tail.
    #[test]
    fn avx_vnni_kernels_equal_the_definitions() {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("avxvnni") {
            let mut next = bytes(5);
            let (taps, n, stride) = (9, 45, 50);
            let lanes: Vec<i32> = (0..taps + n)
                .map(|_| i32::from_le_bytes([next(), next(), next(), next()]))
                .collect();
            let offsets: Vec<usize> = (0..taps).collect();
            let w: Vec<Vec<i32>> = (0..BLOCK)
                .map(|_| {
                    (0..taps)
                        .map(|_| i32::from_le_bytes([next(), next(), next(), next()]))
                        .collect()
                })
                .collect();
            let mut rows = vec![0i32; (BLOCK - 1) * stride + n];
            let ws = [&w[0][..], &w[1][..], &w[2][..], &w[3][..]];
            // SAFETY: AVX2 and AVX-VNNI detected; offsets[j] + n ≤ lanes.len().
            let done = unsafe { block_avx_vnni(&lanes, &offsets, ws, &mut rows, n, stride) };
            assert_eq!(done, n);
            for (c, wc) in w.iter().enumerate() {
                for t in 0..n {
                    let want = offsets
                        .iter()
                        .zip(wc)
                        .map(|(&off, &wj)| dot4(lanes[off + t], wj))
                        .fold(0i32, i32::wrapping_add);
                    assert_eq!(rows[c * stride + t], want, "channel {c}, step {t}");
                }
            }
            let (k, rows_n, cols) = (100, 3, 3);
            let x: Vec<u8> = (0..rows_n * k).map(|_| next()).collect();
            let weights: Vec<Vec<i8>> = (0..cols)
                .map(|_| (0..k).map(|_| next() as i8).collect())
                .collect();
            let wl: [&[i8]; BLOCK] = [&weights[0], &weights[1], &weights[2], &[]];
            let mut out = vec![0i32; cols * rows_n];
            // SAFETY: AVX2 and AVX-VNNI detected; whole rows, k-byte weights.
            unsafe { linear_block_avx_vnni(&x, k, wl, &mut out) };
            for c in 0..cols {
                for r in 0..rows_n {
                    let want: i32 = (0..k)
                        .map(|i| i32::from(x[r * k + i]) * i32::from(weights[c][i]))
                        .sum();
                    assert_eq!(out[c * rows_n + r], want, "column {c}, row {r}");
                }
            }
        }
    }
}
