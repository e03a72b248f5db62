//! The matrix product behind the CPU convolutions: `dst = init + W · cols`,
//! with `W` (`[m, k]`, the layer's weights) packed once at load time and each
//! of the `k` rows of `cols` given by a pointer.
//!
//! A general GEMM (the `gemm` crate) copies both operands into its own
//! panel layout on every call, and needs `cols` as one strided matrix, which
//! for a convolution means an im2col copy of the input per kernel tap. Here
//! the weights are packed in the micro-kernel's order at load, and row
//! `(c, j)` of the im2col matrix is just a pointer into channel `c` of the
//! activated input, shifted by tap `j`: the kernel reads 16 consecutive time
//! steps per vector straight from there, with no copy. The AVX-512 kernel keeps a
//! 6 × 64 block of the output in 24 registers, the AVX2+FMA kernel a 6 × 16
//! block in 12 of its 16 (both read the same packing); on the portable path
//! the `gemm` crate runs the same product from a row-major copy of `W`.

/// Output rows per micro-kernel block.
const MR: usize = 6;
/// Time steps per micro-kernel block: four 16-lane vectors (AVX-512); the
/// AVX2 kernel takes such a block in four 16-step pieces, each over the
/// same weights.
const NR: usize = 64;
/// Time steps per AVX2 micro-kernel block: two 8-lane vectors.
const NR_AVX2: usize = 16;

/// The kernel a [`PackedMatrix`] was packed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// The `gemm` crate on a row-major copy.
    Portable,
    /// 6 × 16 blocks on AVX2 and FMA.
    Avx2,
    /// 6 × 64 blocks on AVX-512F.
    Avx512,
}

impl Kernel {
    /// The kernel of the path in use (`nn::cpu_kernel`).
    fn active() -> Self {
        if super::cpu_kernel::avx512() {
            Kernel::Avx512
        } else if super::cpu_kernel::avx2() {
            Kernel::Avx2
        } else {
            Kernel::Portable
        }
    }
}

/// What [`PackedMatrix::multiply`] adds the product to.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// Nothing: the result is the product (plus bias).
    Zero,
    /// `dst`'s current contents.
    Dst,
    /// Another matrix with the given row stride (a residual).
    From(&'a [f32], usize),
}

/// Where [`PackedMatrix::product`] takes the value the product is added to.
#[derive(Debug, Clone, Copy)]
pub enum Init {
    /// Nothing: the result is the product (plus bias).
    Zero,
    /// `dst`'s current contents.
    Dst,
    /// Another matrix with the given row stride (a residual).
    From(*const f32, usize),
}

/// `dst[i, j] (+)= Σ_p a[i, p] · b[p, j]` with the `gemm` crate on the
/// calling thread: `a` row-major `[m, k]`, `b` row-major `[k, n]` (`shape`
/// is `[m, n, k]`), `dst` rows `ld_dst` apart; `accumulate` adds to `dst`
/// instead of overwriting it.
///
/// # Safety
/// `dst` must be valid for writes at `i * ld_dst + j` for `i < m`, `j < n`,
/// `a` and `b` for reads over their shapes, and `dst` must not overlap them.
pub(crate) unsafe fn row_major_gemm(
    [m, n, k]: [usize; 3],
    dst: *mut f32,
    ld_dst: usize,
    accumulate: bool,
    a: *const f32,
    b: *const f32,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            ld_dst as isize,
            accumulate,
            a,
            1,
            k as isize,
            b,
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `dst[i, j] (+)= Σ_p a[i, p] · b[p, j]` for row-major `a` `[m, k]` and
/// `b` `[k, n]` (`shape` is `[m, n, k]`), `dst` rows `ld_dst` apart;
/// `accumulate` adds to `dst`. Single-threaded. The safe face of the `gemm`
/// crate: the lengths are checked once per call, and panic if short (they
/// are the caller's arithmetic, not input).
pub fn matmul(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    ld_dst: usize,
    accumulate: bool,
    a: &[f32],
    b: &[f32],
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ld_dst >= n && dst.len() >= (m - 1) * ld_dst + n && a.len() >= m * k && b.len() >= k * n,
        "matmul: operands too short for [{m}, {n}, {k}] with rows {ld_dst} apart"
    );
    // SAFETY: the assert keeps every index the product touches inside the
    // three slices, rows of `dst` do not overlap (`ld_dst >= n`), and `dst`
    // cannot alias `a` or `b` (a `&mut` and two `&` borrows).
    unsafe {
        row_major_gemm(
            [m, n, k],
            dst.as_mut_ptr(),
            ld_dst,
            accumulate,
            a.as_ptr(),
            b.as_ptr(),
        )
    };
}

/// Weights `[m, k]` prepared for [`PackedMatrix::product`].
#[derive(Debug, Clone)]
pub struct PackedMatrix {
    /// AVX-512 and AVX2: `[m / MR (rounded up)][k][MR]`, zero-padded
    /// rows. Portable: row-major `[m, k]`.
    data: Vec<f32>,
    m: usize,
    k: usize,
    kernel: Kernel,
}

impl PackedMatrix {
    /// Packs the row-major matrix `w` (`m × k`) for the best kernel this CPU runs.
    pub fn new(w: &[f32], m: usize, k: usize) -> Self {
        Self::for_kernel(w, m, k, Kernel::active())
    }

    /// Packs `w` for `kernel`, which the caller has checked this CPU runs.
    fn for_kernel(w: &[f32], m: usize, k: usize, kernel: Kernel) -> Self {
        // The products read `m × k` weights: a shorter `w` would be read past.
        assert_eq!(
            w.len(),
            m * k,
            "PackedMatrix: {} weights for {m} × {k}",
            w.len()
        );
        if kernel == Kernel::Portable {
            return Self {
                data: w.to_vec(),
                m,
                k,
                kernel,
            };
        }
        let blocks = m.div_ceil(MR);
        let mut data = vec![0f32; blocks * k * MR];
        for b in 0..blocks {
            for r in 0..k {
                for l in 0..MR {
                    let row = b * MR + l;
                    if row < m {
                        data[(b * k + r) * MR + l] = w[row * k + r];
                    }
                }
            }
        }
        Self { data, m, k, kernel }
    }

    /// The weights back as the row-major `m × k` matrix they were packed
    /// from (to quantize a loaded layer).
    pub fn to_row_major(&self) -> Vec<f32> {
        if self.kernel == Kernel::Portable {
            return self.data.clone();
        }
        let (m, k) = (self.m, self.k);
        let mut w = vec![0f32; m * k];
        for (row, values) in w.chunks_exact_mut(k.max(1)).enumerate().take(m) {
            let (block, l) = (row / MR, row % MR);
            for (r, v) in values.iter_mut().enumerate() {
                *v = self.data[(block * k + r) * MR + l];
            }
        }
        w
    }

    /// [`PackedMatrix::product`] on slices, its bounds checked once per
    /// call (a panic if short: they are the caller's arithmetic). `start`
    /// says what the product is added to.
    pub fn multiply(
        &self,
        n: usize,
        dst: &mut [f32],
        ld_dst: usize,
        rows: &[&[f32]],
        start: Start<'_>,
        bias: Option<&[f32]>,
    ) {
        if n == 0 || self.m == 0 {
            return;
        }
        let span = |ld: usize| (self.m - 1) * ld + n;
        assert!(
            ld_dst >= n && dst.len() >= span(ld_dst),
            "GEMM: dst of {} values for {} rows of {n}, {ld_dst} apart",
            dst.len(),
            self.m
        );
        assert!(
            rows.iter().all(|r| r.len() >= n),
            "GEMM: an input row shorter than {n}"
        );
        let init = match start {
            Start::Zero => Init::Zero,
            Start::Dst => Init::Dst,
            Start::From(src, ld) => {
                assert!(
                    ld >= n && src.len() >= span(ld),
                    "GEMM: a start matrix of {} values for {} rows of {n}, {ld} apart",
                    src.len(),
                    self.m
                );
                Init::From(src.as_ptr(), ld)
            }
        };
        let rows: Vec<*const f32> = rows.iter().map(|r| r.as_ptr()).collect();
        // SAFETY: the asserts above bound every index the product touches
        // inside `dst`, the rows and the start matrix; `dst` is a `&mut`
        // borrow, so it overlaps none of the `&` inputs.
        unsafe { self.product(n, dst.as_mut_ptr(), ld_dst, &rows, init, bias) };
    }

    /// `dst[i, t] = init[i, t] + bias[i] + Σ_r W[i, r] · rows[r][t]` for
    /// `i < m`, `t < n`, single-threaded; `dst` rows are `ld_dst` apart.
    /// [`Init`] says where the first term comes from (it may be `dst`
    /// itself), and a missing bias is zero.
    ///
    /// The counts (`k` rows, a bias of at least `m` values) are checked on
    /// every call, and panic if wrong: they are the caller's arithmetic, not
    /// input. The pointer ranges cannot be checked, hence `unsafe`.
    ///
    /// # Safety
    /// - `dst` must be valid for writes at `i * ld_dst + t` for `i < m`,
    ///   `t < n`, and nothing else may read or write those elements during
    ///   the call;
    /// - every `rows[r]` must be valid for reads at `t < n`, and an
    ///   [`Init::From`] source for reads at `i * ld + t`;
    /// - those ranges must not overlap `dst`'s, except for [`Init::Dst`],
    ///   which reads `dst` itself element by element before writing it.
    pub(crate) unsafe fn product(
        &self,
        n: usize,
        dst: *mut f32,
        ld_dst: usize,
        rows: &[*const f32],
        init: Init,
        bias: Option<&[f32]>,
    ) {
        if n == 0 || self.m == 0 {
            return;
        }
        assert!(
            bias.is_none_or(|b| b.len() >= self.m),
            "GEMM: a bias of {} values for {} rows",
            bias.map_or(0, <[f32]>::len),
            self.m
        );
        assert_eq!(rows.len(), self.k, "GEMM: input rows against W's columns");
        #[cfg(target_arch = "x86_64")]
        match self.kernel {
            Kernel::Avx512 => {
                // SAFETY: `Kernel::Avx512` is only chosen when AVX-512F was
                // detected; the caller guarantees the pointer ranges.
                unsafe { self.product_avx512(n, dst, ld_dst, rows, init, bias) };
                return;
            }
            Kernel::Avx2 => {
                // SAFETY: `Kernel::Avx2` is only chosen when AVX2 and FMA
                // were detected; the caller guarantees the pointer ranges.
                unsafe { self.product_avx2(n, dst, ld_dst, rows, init, bias) };
                return;
            }
            Kernel::Portable => {}
        }
        // Portable: write init + bias into dst, then accumulate with `gemm`.
        for i in 0..self.m {
            let b = bias.map_or(0.0, |b| b[i]);
            // SAFETY: row i, columns 0..n of dst (and of the init source).
            unsafe {
                let row = std::slice::from_raw_parts_mut(dst.add(i * ld_dst), n);
                match init {
                    Init::Zero => row.fill(b),
                    Init::Dst => row.iter_mut().for_each(|v| *v += b),
                    Init::From(src, ld) => {
                        let src = std::slice::from_raw_parts(src.add(i * ld), n);
                        for (v, &s) in row.iter_mut().zip(src) {
                            *v = s + b;
                        }
                    }
                }
            }
        }
        // The `gemm` crate wants one strided matrix: copy the rows into one.
        let mut cols = vec![0f32; self.k * n];
        for (r, &row) in rows.iter().enumerate() {
            // SAFETY: row r is readable for n elements.
            cols[r * n..(r + 1) * n].copy_from_slice(unsafe { std::slice::from_raw_parts(row, n) });
        }
        // SAFETY: as documented; `data` is row-major m × k, `cols` k × n.
        unsafe {
            row_major_gemm(
                [self.m, n, self.k],
                dst,
                ld_dst,
                true,
                self.data.as_ptr(),
                cols.as_ptr(),
            )
        };
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn product_avx512(
        &self,
        n: usize,
        dst: *mut f32,
        ld_dst: usize,
        rows: &[*const f32],
        init: Init,
        bias: Option<&[f32]>,
    ) {
        use std::arch::x86_64::*;
        let k = self.k;
        // SAFETY: AVX-512F is enabled (the caller checked the CPU); every
        // access stays within the ranges `product`'s contract guarantees:
        // `dst` rows `i < m` at columns `t0 + lane < n`, each `rows[r]` at
        // `t0 + lane < n` and `data` within its `blocks · k · MR` values;
        // lanes past `n` are masked off and their addresses only computed.
        unsafe {
            for t0 in (0..n).step_by(NR) {
                let width = NR.min(n - t0);
                // Lane masks of the four vectors (all ones but at the tail).
                let mut masks = [0 as __mmask16; 4];
                for (v, mask) in masks.iter_mut().enumerate() {
                    let lanes = width.saturating_sub(v * 16).min(16);
                    *mask = ((1u32 << lanes) - 1) as __mmask16;
                }
                for block in 0..self.m.div_ceil(MR) {
                    let valid = MR.min(self.m - block * MR);
                    let w = self.data.as_ptr().add(block * k * MR);
                    let mut acc = [[_mm512_setzero_ps(); 4]; MR];
                    for (l, row) in acc.iter_mut().enumerate().take(valid) {
                        let i = block * MR + l;
                        let b = _mm512_set1_ps(bias.map_or(0.0, |b| b[i]));
                        let src = match init {
                            Init::Zero => None,
                            Init::Dst => Some(dst.add(i * ld_dst + t0).cast_const()),
                            Init::From(src, ld) => Some(src.add(i * ld + t0)),
                        };
                        for (v, a) in row.iter_mut().enumerate() {
                            *a = match src {
                                Some(s) => _mm512_add_ps(
                                    b,
                                    _mm512_maskz_loadu_ps(masks[v], s.wrapping_add(v * 16)),
                                ),
                                None => b,
                            };
                        }
                    }
                    // SAFETY: AVX-512F is enabled; `w` holds this block's
                    // `k · MR` packed weights, and every row is readable at
                    // `t0 + lane` for the lanes `masks` keep.
                    let acc = match valid {
                        5.. => rows_avx512::<6>(acc, w, rows, t0, masks),
                        3 | 4 => rows_avx512::<4>(acc, w, rows, t0, masks),
                        _ => rows_avx512::<2>(acc, w, rows, t0, masks),
                    };
                    for (l, row) in acc.iter().enumerate().take(valid) {
                        let d = dst.add((block * MR + l) * ld_dst + t0);
                        for (v, &a) in row.iter().enumerate() {
                            _mm512_mask_storeu_ps(d.wrapping_add(v * 16), masks[v], a);
                        }
                    }
                }
            }
        }
    }

    /// The AVX2+FMA kernel: for each 64-step block of time and each six
    /// rows of `W`, four 6 × 16 micro-kernels over the same packed weights
    /// (so a block of weights is read from L1/L2 four times, not from memory).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn product_avx2(
        &self,
        n: usize,
        dst: *mut f32,
        ld_dst: usize,
        rows: &[*const f32],
        init: Init,
        bias: Option<&[f32]>,
    ) {
        let k = self.k;
        for t0 in (0..n).step_by(NR) {
            for block in 0..self.m.div_ceil(MR) {
                let first = block * MR;
                let valid = MR.min(self.m - first);
                // SAFETY: within `data`'s `blocks · k · MR` values.
                let w = unsafe { self.data.as_ptr().add(block * k * MR) };
                for s0 in (t0..n.min(t0 + NR)).step_by(NR_AVX2) {
                    let piece = Piece {
                        first,
                        valid,
                        s0,
                        width: NR_AVX2.min(n - s0),
                    };
                    // SAFETY: AVX2 and FMA are enabled here; the piece lies
                    // inside the ranges `product`'s contract guarantees.
                    unsafe {
                        // Rows multiplied: 2, 4 or 6, the fewest that cover `valid`.
                        macro_rules! run {
                            ($tail:literal) => {
                                match valid {
                                    5.. => block_avx2::<$tail, 6>(
                                        w, rows, piece, dst, ld_dst, init, bias,
                                    ),
                                    3 | 4 => block_avx2::<$tail, 4>(
                                        w, rows, piece, dst, ld_dst, init, bias,
                                    ),
                                    _ => block_avx2::<$tail, 2>(
                                        w, rows, piece, dst, ld_dst, init, bias,
                                    ),
                                }
                            };
                        }
                        if piece.width == NR_AVX2 {
                            run!(false)
                        } else {
                            run!(true)
                        }
                    }
                }
            }
        }
    }
}

/// The AVX-512 kernel's loop over the input rows for one 6 × 64 block:
/// `acc[l] += W[l, r] · rows[r][t0..t0 + 64]` for the first `ROWS` (2, 4
/// or 6) rows `l`, so a last block of fewer rows skips most of its zero
/// padding; lanes `masks` turns off are neither read nor used.
///
/// # Safety
/// The CPU must run AVX-512F; `w` must hold `rows.len() · 6` packed
/// weights, and every `rows[r]` must be readable at `t0 + lane` for each
/// lane its vector's mask keeps.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512<const ROWS: usize>(
    acc: [[std::arch::x86_64::__m512; 4]; MR],
    w: *const f32,
    rows: &[*const f32],
    t0: usize,
    masks: [std::arch::x86_64::__mmask16; 4],
) -> [[std::arch::x86_64::__m512; 4]; MR] {
    use std::arch::x86_64::*;
    // SAFETY: the contract above; tail vectors' addresses are made with
    // `wrapping_add` and their masks keep no lane past a row's end.
    unsafe {
        // Tail vectors (`width` < 64) may start past the end of a
        // row's allocation: their addresses are made with
        // `wrapping_add` (computing them with `add` would be undefined
        // behaviour) and their masks are zero, so nothing is accessed.
        // The hot loop on 24 named accumulators, so they stay in
        // registers whatever LLVM makes of the array passed in.
        let [[mut a00, mut a01, mut a02, mut a03], [mut a10, mut a11, mut a12, mut a13], [mut a20, mut a21, mut a22, mut a23], [mut a30, mut a31, mut a32, mut a33], [mut a40, mut a41, mut a42, mut a43], [mut a50, mut a51, mut a52, mut a53]] =
            acc;
        let mut wr = w;
        for &row in rows {
            let c = row.add(t0);
            let x0 = _mm512_maskz_loadu_ps(masks[0], c);
            let x1 = _mm512_maskz_loadu_ps(masks[1], c.wrapping_add(16));
            let x2 = _mm512_maskz_loadu_ps(masks[2], c.wrapping_add(32));
            let x3 = _mm512_maskz_loadu_ps(masks[3], c.wrapping_add(48));
            macro_rules! fma_row {
                ($l:expr, $b0:ident, $b1:ident, $b2:ident, $b3:ident) => {
                    let wl = _mm512_set1_ps(*wr.add($l));
                    $b0 = _mm512_fmadd_ps(wl, x0, $b0);
                    $b1 = _mm512_fmadd_ps(wl, x1, $b1);
                    $b2 = _mm512_fmadd_ps(wl, x2, $b2);
                    $b3 = _mm512_fmadd_ps(wl, x3, $b3);
                };
            }
            fma_row!(0, a00, a01, a02, a03);
            if ROWS > 1 {
                fma_row!(1, a10, a11, a12, a13);
            }
            if ROWS > 2 {
                fma_row!(2, a20, a21, a22, a23);
                fma_row!(3, a30, a31, a32, a33);
            }
            if ROWS > 4 {
                fma_row!(4, a40, a41, a42, a43);
                fma_row!(5, a50, a51, a52, a53);
            }
            wr = wr.add(MR);
        }
        [
            [a00, a01, a02, a03],
            [a10, a11, a12, a13],
            [a20, a21, a22, a23],
            [a30, a31, a32, a33],
            [a40, a41, a42, a43],
            [a50, a51, a52, a53],
        ]
    }
}

/// Where one AVX2 micro-kernel block lies: rows `first..first + valid`
/// (`valid` ≤ 6) of the output, time steps `s0..s0 + width` (`width` ≤ 16).
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
struct Piece {
    first: usize,
    valid: usize,
    s0: usize,
    width: usize,
}

/// One 6 × 16 block of `dst = init + bias + W · rows` with AVX2 and FMA:
/// twelve accumulators, and per input row two loads and six broadcasts for
/// twelve FMAs. `TAIL` blocks (`width` < 16) load and store through lane
/// masks; full ones with plain loads. Only the first `ROWS` (2, 4 or 6) of
/// the six rows are multiplied, so a last block of `m` that is not a
/// multiple of 6 skips most of its zero padding (32 rows: 36 → 32).
///
/// # Safety
/// The CPU must run AVX2 and FMA; `w` must hold `rows.len() · 6` packed
/// weights; `dst` rows `first..first + valid` must be writable at
/// `s0..s0 + width`, every `rows[r]` (and an `Init::From` source's rows)
/// readable there.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_avx2<const TAIL: bool, const ROWS: usize>(
    w: *const f32,
    rows: &[*const f32],
    piece: Piece,
    dst: *mut f32,
    ld_dst: usize,
    init: Init,
    bias: Option<&[f32]>,
) {
    use std::arch::x86_64::*;
    /// `-1` for a lane to use, `0` for one to skip: eight lanes from `8 − n`.
    const LANES: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    let Piece {
        first,
        valid,
        s0,
        width,
    } = piece;
    // SAFETY: AVX2 and FMA are enabled (the caller checked the CPU). Every
    // access stays inside the ranges the contract above gives: full blocks
    // read and write exactly `s0..s0 + 16`; tail blocks go through masks
    // whose lanes past `width` are off (a masked-off lane is not accessed,
    // and addresses past a row's end are only computed, with
    // `wrapping_add`), and `LANES` is read at `8 − lanes ∈ 0..=8`.
    unsafe {
        let masks = [0, 1].map(|v| {
            let lanes = width.saturating_sub(v * 8).min(8);
            _mm256_loadu_si256(LANES.as_ptr().add(8 - lanes).cast())
        });
        macro_rules! load {
            ($p:expr, $v:expr) => {
                if TAIL {
                    _mm256_maskload_ps($p.wrapping_add($v * 8), masks[$v])
                } else {
                    _mm256_loadu_ps($p.add($v * 8))
                }
            };
        }
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for (l, row) in acc.iter_mut().enumerate().take(valid) {
            let i = first + l;
            let b = _mm256_set1_ps(bias.map_or(0.0, |b| b[i]));
            let src = match init {
                Init::Zero => None,
                Init::Dst => Some(dst.add(i * ld_dst + s0).cast_const()),
                Init::From(src, ld) => Some(src.add(i * ld + s0)),
            };
            for (v, a) in row.iter_mut().enumerate() {
                *a = match src {
                    Some(s) => _mm256_add_ps(b, load!(s, v)),
                    None => b,
                };
            }
        }
        // Twelve named accumulators, so they stay in registers.
        let [[mut a00, mut a01], [mut a10, mut a11], [mut a20, mut a21], [mut a30, mut a31], [mut a40, mut a41], [mut a50, mut a51]] =
            acc;
        let mut wr = w;
        for &row in rows {
            let c = row.add(s0);
            let x0 = load!(c, 0);
            let x1 = load!(c, 1);
            macro_rules! fma_row {
                ($l:expr, $b0:ident, $b1:ident) => {
                    let wl = _mm256_broadcast_ss(&*wr.add($l));
                    $b0 = _mm256_fmadd_ps(wl, x0, $b0);
                    $b1 = _mm256_fmadd_ps(wl, x1, $b1);
                };
            }
            fma_row!(0, a00, a01);
            if ROWS > 1 {
                fma_row!(1, a10, a11);
            }
            if ROWS > 2 {
                fma_row!(2, a20, a21);
                fma_row!(3, a30, a31);
            }
            if ROWS > 4 {
                fma_row!(4, a40, a41);
                fma_row!(5, a50, a51);
            }
            wr = wr.add(MR);
        }
        let acc = [
            [a00, a01],
            [a10, a11],
            [a20, a21],
            [a30, a31],
            [a40, a41],
            [a50, a51],
        ];
        for (l, row) in acc.iter().enumerate().take(valid) {
            let d = dst.add((first + l) * ld_dst + s0);
            for (v, &a) in row.iter().enumerate() {
                if TAIL {
                    _mm256_maskstore_ps(d.wrapping_add(v * 8), masks[v], a);
                } else {
                    _mm256_storeu_ps(d.add(v * 8), a);
                }
            }
        }
    }
}

/// Whether AVX-512F code runs (the GEMM kernel, the LSTM cell): the kernel
/// path in use (`nn::cpu_kernel`).
pub(crate) fn has_avx512() -> bool {
    super::cpu_kernel::avx512()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a plain triple loop, over shapes with row and time tails.
    #[test]
    fn accumulate_matches_a_plain_product() {
        let mut seed = 12345u32;
        let mut rand = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for &(m, k, n) in &[
            (6, 4, 64),
            (13, 7, 100),
            (1, 3, 5),
            (32, 96, 200),
            (7, 1, 17),
            (12, 5, 8),
            (6, 9, 16),
            (5, 2, 81),
            // Last blocks of 3 and 4 rows (the kernels multiply 2, 4 or 6).
            (9, 5, 33),
            (10, 7, 70),
        ] {
            let w: Vec<f32> = (0..m * k).map(|_| rand()).collect();
            let (ld_cols, ld_dst) = (n + 3, n + 5);
            let cols: Vec<f32> = (0..k * ld_cols).map(|_| rand()).collect();
            let start: Vec<f32> = (0..m * ld_dst).map(|_| rand()).collect();
            let mut want = start.clone();
            for i in 0..m {
                for t in 0..n {
                    let dot: f32 = (0..k).map(|r| w[i * k + r] * cols[r * ld_cols + t]).sum();
                    want[i * ld_dst + t] += dot;
                }
            }
            let bias: Vec<f32> = (0..m).map(|_| rand()).collect();
            // Every kernel this CPU has, whatever path is forced (the
            // portable one everywhere); each way of starting: from dst, from
            // another matrix, from zero.
            let cpu = crate::nn::cpu_kernel::Features::of_this_cpu();
            let kernels = [
                Some(Kernel::Portable),
                cpu.avx2_fma.then_some(Kernel::Avx2),
                cpu.avx512.then_some(Kernel::Avx512),
            ];
            for kernel in kernels.into_iter().flatten() {
                let packed = PackedMatrix::for_kernel(&w, m, k, kernel);
                assert_eq!(packed.to_row_major(), w, "{kernel:?}: unpacked weights");
                for case in 0..3 {
                    let mut got = match case {
                        0 => start.clone(),
                        _ => vec![7.0; m * ld_dst],
                    };
                    let (init, with_bias) = match case {
                        0 => (Init::Dst, None),
                        1 => (Init::From(start.as_ptr(), ld_dst), Some(&bias[..])),
                        _ => (Init::Zero, Some(&bias[..])),
                    };
                    let rows: Vec<&[f32]> = (0..k).map(|r| &cols[r * ld_cols..]).collect();
                    let from = match init {
                        Init::Dst => Start::Dst,
                        Init::Zero => Start::Zero,
                        Init::From(..) => Start::From(&start, ld_dst),
                    };
                    // Guard rows past the last: a block that stored its
                    // padding rows would write them.
                    got.extend(std::iter::repeat_n(-3.0, MR * ld_dst));
                    packed.multiply(n, &mut got, ld_dst, &rows, from, with_bias);
                    assert!(
                        got[m * ld_dst..].iter().all(|&v| v == -3.0),
                        "{kernel:?} m{m}: a row past the last was written"
                    );
                    for (i, &b) in bias.iter().enumerate() {
                        for t in 0..ld_dst {
                            let at = i * ld_dst + t;
                            if t >= n {
                                let kept = if case == 0 { start[at] } else { 7.0 };
                                assert_eq!(got[at], kept, "column {t} past n was written");
                                continue;
                            }
                            // `want` holds start + product.
                            let want = match case {
                                0 => want[at],
                                1 => want[at] + b,
                                _ => want[at] - start[at] + b,
                            };
                            assert!(
                                (got[at] - want).abs() < 1e-4,
                                "{kernel:?} case {case} m{m} k{k} n{n} at ({i}, {t})"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "GEMM: dst of")]
    fn a_short_destination_is_refused_before_any_write() {
        let packed = PackedMatrix::new(&[1.0; 6], 2, 3);
        let cols = [1.0f32; 4];
        let rows: Vec<&[f32]> = vec![&cols; 3];
        let mut dst = [0f32; 7]; // two rows of 4 need 8
        packed.multiply(4, &mut dst, 4, &rows, Start::Zero, None);
    }

    #[test]
    #[should_panic(expected = "matmul: operands too short")]
    fn a_short_matmul_operand_is_refused() {
        let mut dst = [0f32; 4];
        matmul([2, 2, 3], &mut dst, 2, false, &[1.0; 6], &[1.0; 5]);
    }
}
