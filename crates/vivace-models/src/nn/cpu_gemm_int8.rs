//! The integer counterpart of [`super::cpu_gemm`], for the convolutions
//! of a decoder run with `--precision int8`: `dst = init + bias + W · cols`
//! with `W` quantized once at load (one scale per output row) and `cols`
//! quantized per call (one scale for the whole call, a convolution's time
//! tile), in one of two [`Lanes`] layouts:
//!
//! - bytes: lane `t` of lane row `g` holds rows `4g..4g + 4` of the
//!   columns at time `t` as unsigned bytes (with a zero point), against
//!   signed weight bytes, as AVX-512 VNNI's `vpdpbusd` takes them: 64
//!   products per instruction against the f32 kernel's 16 FMAs. Measured
//!   on the development Xeon: 1.7 G `vpdpbusd`/s against 2.3 G
//!   `vfmadd`/s, so 2.9× the multiply-adds;
//! - words: rows `2g..2g + 2` as signed 16-bit levels against 11-bit
//!   weights (`vpdpwssd`, 32 products, 1.55× the multiply-adds), where
//!   bytes were measured too coarse.
//!
//! With `x ≈ sx · (qx − zx)` and `w ≈ sw · qw`:
//! `Σ w·x ≈ sw · sx · (Σ qw·qx − zx · Σ qw)`, the integer sum exact, the
//! second term a constant per row. Without VNNI the same integer sums run
//! lane by lane (what the tests compare the kernels with, bit for bit).

use super::cpu_gemm::Init;

/// [`QuantizedMatrix::product`]'s arguments, as its SIMD kernels take them.
type ProductArgs<'a> = (
    usize,
    *mut f32,
    usize,
    &'a [*const u32],
    ActScale,
    Init,
    Option<&'a [f32]>,
);

/// Output rows per micro-kernel block.
const MR: usize = 6;
/// Time steps per AVX-512 micro-kernel block: four 16-lane vectors.
const NR: usize = 64;

/// How a 32-bit lane holds a quantized matrix's operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lanes {
    /// Four unsigned activation bytes against four signed weight bytes
    /// (`vpdpbusd`, 64 products per 512-bit instruction).
    Bytes,
    /// Two signed 16-bit activations against two signed weights of 11 bits
    /// (`vpdpwssd`, 32 products): for layers whose byte activations are
    /// measured too coarse (the decoder's last stage).
    Words,
}

impl Lanes {
    /// Input channels a lane holds.
    pub fn channels(self) -> usize {
        match self {
            Lanes::Bytes => 4,
            Lanes::Words => 2,
        }
    }

    /// The largest weight level (weights are symmetric).
    fn weight_max(self) -> f32 {
        match self {
            Lanes::Bytes => 127.0,
            Lanes::Words => 1023.0,
        }
    }
}

/// How one call's f32 activations map to integer levels:
/// `x ≈ scale · (q − zero)`, `q` in `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActScale {
    /// The step between two levels.
    pub scale: f32,
    /// The level that stands for 0 (exactly: a convolution's padding).
    pub zero: i32,
    /// The lowest level.
    pub min: i32,
    /// The highest level.
    pub max: i32,
}

impl ActScale {
    /// Unsigned bytes spanning `[lo, hi]`, widened to take in 0 so that
    /// zero padding is exact. An empty or non-finite range gives scale 1.
    pub fn bytes(lo: f32, hi: f32) -> Self {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let span = hi - lo;
        // A zero, infinite or subnormal step (whose inverse overflows) is
        // no scale: 1 instead.
        let scale = Some(span / 255.0).filter(|s| s.is_normal()).unwrap_or(1.0);
        Self {
            scale,
            zero: (-lo / scale).round().clamp(0.0, 255.0) as i32,
            min: 0,
            max: 255,
        }
    }

    /// Signed levels `-max..=max` spanning `[lo, hi]` (zero is level 0).
    pub fn words(lo: f32, hi: f32, max: i32) -> Self {
        let top = lo.abs().max(hi.abs());
        Self {
            scale: Some(top / max as f32)
                .filter(|s| s.is_normal())
                .unwrap_or(1.0),
            zero: 0,
            min: -max,
            max,
        }
    }

    /// A quantizer for this scale ([`Quantizer::level`]).
    pub fn quantizer(self) -> Quantizer {
        Quantizer {
            inverse: 1.0 / self.scale,
            zero: self.zero as f32,
            min: self.min as f32,
            max: self.max as f32,
        }
    }
}

/// [`ActScale`]'s map from f32 to levels, with the division turned into a
/// multiplication once.
#[derive(Debug, Clone, Copy)]
pub struct Quantizer {
    inverse: f32,
    zero: f32,
    min: f32,
    max: f32,
}

impl Quantizer {
    /// `round(x / scale) + zero`, clamped to the levels (NaN gives the
    /// lowest, as the SIMD conversion's out-of-range value clamps to).
    #[inline(always)]
    pub fn level(self, x: f32) -> i32 {
        // `f32::max` takes NaN to `min`; the clamped value fits an i32.
        x.mul_add(self.inverse, self.zero)
            .round_ties_even()
            .max(self.min)
            .min(self.max) as i32
    }
}

/// The kernel a [`QuantizedMatrix`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// The integer sums lane by lane.
    Portable,
    /// 6 × 64 blocks with AVX-512 VNNI.
    Avx512Vnni,
    /// 6 × 16 blocks with AVX-VNNI (256-bit, without AVX-512).
    AvxVnni,
}

impl Kernel {
    /// The kernel of the path in use (`nn::cpu_kernel`).
    fn active() -> Self {
        if super::cpu_kernel::avx512_vnni() {
            Kernel::Avx512Vnni
        } else if super::cpu_kernel::avx_vnni() {
            Kernel::AvxVnni
        } else {
            Kernel::Portable
        }
    }
}

/// Whether a VNNI kernel runs on the kernel path in use (AVX-512
/// VNNI or AVX-VNNI): elsewhere the integer sums run lane by lane, slower
/// than the f32 kernels, so `--precision int8` keeps f32 there.
pub fn available() -> bool {
    Kernel::active() != Kernel::Portable
}

/// Weights `[m, k]` as signed integers, one scale per row, packed a group
/// of columns (four bytes or two words) a lane for
/// [`QuantizedMatrix::product`].
#[derive(Debug, Clone)]
pub struct QuantizedMatrix {
    /// `[m / MR (rounded up)][groups][MR]` lanes; rows past `m` are zero.
    packed: Vec<i32>,
    /// Per row: `w ≈ scale · q`.
    scales: Vec<f32>,
    /// Per row: `Σ q` (for the activations' zero point).
    sums: Vec<i32>,
    m: usize,
    groups: usize,
    lanes: Lanes,
    /// The highest activation level: 255 for bytes; for words, what keeps
    /// a row's sum inside an i32 whatever the inputs.
    x_max: i32,
    kernel: Kernel,
}

impl QuantizedMatrix {
    /// Quantizes the row-major `w` (`m × k`) into `groups` lane rows of
    /// `lanes`: lane row `g`'s element `b` is column `column(g, b)` of `w`,
    /// or zero for `None` (a channel that only fills the last group). Each
    /// row's scale maps its largest magnitude to the top weight level.
    pub fn new(
        w: &[f32],
        m: usize,
        k: usize,
        lanes: Lanes,
        groups: usize,
        column: impl Fn(usize, usize) -> Option<usize>,
    ) -> Self {
        Self::for_kernel(w, m, k, lanes, groups, column, Kernel::active())
    }

    fn for_kernel(
        w: &[f32],
        m: usize,
        k: usize,
        lanes: Lanes,
        groups: usize,
        column: impl Fn(usize, usize) -> Option<usize>,
        kernel: Kernel,
    ) -> Self {
        assert_eq!(
            w.len(),
            m * k,
            "QuantizedMatrix: {} weights for {m} × {k}",
            w.len()
        );
        let top = lanes.weight_max();
        let scales: Vec<f32> = w
            .chunks_exact(k.max(1))
            .take(m)
            .map(|row| {
                let max = row.iter().fold(0f32, |a, &v| a.max(v.abs()));
                if max > 0.0 && max.is_finite() {
                    max / top
                } else {
                    1.0
                }
            })
            .collect();
        let level = |i: usize, g: usize, b: usize| -> i32 {
            match column(g, b) {
                Some(c) if c < k => (w[i * k + c] / scales[i]).round().clamp(-top, top) as i32,
                _ => 0,
            }
        };
        let blocks = m.div_ceil(MR);
        let mut packed = vec![0i32; blocks * groups * MR];
        let mut sums = vec![0i32; m];
        let per_lane = lanes.channels();
        for (i, sum) in sums.iter_mut().enumerate() {
            let (block, l) = (i / MR, i % MR);
            for g in 0..groups {
                let mut lane = 0u32;
                for b in 0..per_lane {
                    let q = level(i, g, b);
                    *sum += q;
                    let bits = 32 / per_lane;
                    lane |= (q as u32 & ((1u64 << bits) - 1) as u32) << (bits * b);
                }
                packed[(block * groups + g) * MR + l] = lane as i32;
            }
        }
        // Words: |Σ| ≤ products · 1023 · x_max must stay below 2³¹.
        let products = (0..groups)
            .flat_map(|g| (0..per_lane).map(move |b| (g, b)))
            .filter(|&(g, b)| column(g, b).is_some_and(|c| c < k))
            .count()
            .max(1);
        let x_max = match lanes {
            Lanes::Bytes => 255,
            Lanes::Words => (i32::MAX as usize / (products * 1023)).clamp(1, 32767) as i32,
        };
        Self {
            packed,
            scales,
            sums,
            m,
            groups,
            lanes,
            x_max,
            kernel,
        }
    }

    /// How the lanes hold the operands.
    pub fn lanes(&self) -> Lanes {
        self.lanes
    }

    /// The activation scale for inputs spanning `[lo, hi]`.
    pub fn activation_scale(&self, lo: f32, hi: f32) -> ActScale {
        match self.lanes {
            Lanes::Bytes => ActScale::bytes(lo, hi),
            Lanes::Words => ActScale::words(lo, hi, self.x_max),
        }
    }

    /// What the integer sum `acc` of row `i` stands for, before the start
    /// value: `a · (acc − offset) + bias` with `a = sw · sx` and
    /// `offset = zx · Σ qw`, subtracted as integers (one rounding, in the
    /// conversion; it wraps, if ever, as the sum does).
    fn row_affine(&self, i: usize, x: ActScale, bias: Option<&[f32]>) -> (f32, i32, f32) {
        let offset = x.zero.wrapping_mul(self.sums[i]);
        (self.scales[i] * x.scale, offset, bias.map_or(0.0, |b| b[i]))
    }

    /// `dst[i, t] = init[i, t] + bias[i] + sw[i] · sx · (Σ_g qw[i, g] ·
    /// qx[g][t] − zx · Σ_g qw[i, g])` for `i < m`, `t < n`, where
    /// `lane_rows[g]` holds lane row `g` of the columns (four bytes or two words a lane,
    /// quantized with `x`), single-threaded; `dst` rows are `ld_dst` apart.
    ///
    /// The counts are checked on every call and panic if wrong (the
    /// caller's arithmetic); the pointer ranges cannot be, hence `unsafe`.
    ///
    /// # Safety
    /// As [`super::cpu_gemm::PackedMatrix::product`]: `dst` writable at
    /// `i * ld_dst + t` for `i < m`, `t < n` and touched by nobody else
    /// meanwhile; every `lane_rows[g]` (and an [`Init::From`] source at
    /// `i * ld + t`) readable; no overlap with `dst` but [`Init::Dst`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn product(
        &self,
        n: usize,
        dst: *mut f32,
        ld_dst: usize,
        lane_rows: &[*const u32],
        x: ActScale,
        init: Init,
        bias: Option<&[f32]>,
    ) {
        if n == 0 || self.m == 0 {
            return;
        }
        assert!(
            bias.is_none_or(|b| b.len() >= self.m),
            "int8 GEMM: a bias of {} values for {} rows",
            bias.map_or(0, <[f32]>::len),
            self.m
        );
        assert_eq!(
            lane_rows.len(),
            self.groups,
            "int8 GEMM: lane rows against W's"
        );
        #[cfg(target_arch = "x86_64")]
        match self.kernel {
            Kernel::Avx512Vnni => {
                let args = (n, dst, ld_dst, lane_rows, x, init, bias);
                // SAFETY: `Kernel::Avx512Vnni` is only chosen when the CPU
                // runs AVX-512 VNNI; the caller guarantees the pointer ranges.
                unsafe {
                    match self.lanes {
                        Lanes::Bytes => self.product_avx512_vnni::<false>(args),
                        Lanes::Words => self.product_avx512_vnni::<true>(args),
                    }
                }
                return;
            }
            Kernel::AvxVnni => {
                let args = (n, dst, ld_dst, lane_rows, x, init, bias);
                // SAFETY: `Kernel::AvxVnni` is only chosen when the CPU runs
                // AVX2 and AVX-VNNI; the caller guarantees the pointer ranges.
                unsafe {
                    match self.lanes {
                        Lanes::Bytes => self.product_avx_vnni::<false>(args),
                        Lanes::Words => self.product_avx_vnni::<true>(args),
                    }
                }
                return;
            }
            Kernel::Portable => {}
        }
        for i in 0..self.m {
            let (a, offset, c) = self.row_affine(i, x, bias);
            let (block, l) = (i / MR, i % MR);
            let w = &self.packed[block * self.groups * MR..][..self.groups * MR];
            for t in 0..n {
                let mut acc = 0i32;
                for (g, &row) in lane_rows.iter().enumerate() {
                    // SAFETY: lane row g is readable at t < n.
                    let x = unsafe { *row.add(t) };
                    let w = w[g * MR + l] as u32;
                    acc = acc.wrapping_add(match self.lanes {
                        Lanes::Bytes => (0..4)
                            .map(|b| {
                                let (xb, wb) = ((x >> (8 * b)) as u8, (w >> (8 * b)) as u8);
                                i32::from(xb) * i32::from(wb as i8)
                            })
                            .sum::<i32>(),
                        Lanes::Words => (0..2)
                            .map(|b| {
                                let (xw, ww) = ((x >> (16 * b)) as u16, (w >> (16 * b)) as u16);
                                i32::from(xw as i16) * i32::from(ww as i16)
                            })
                            .fold(0i32, i32::wrapping_add),
                    });
                }
                // SAFETY: row i, column t of dst (and of the init source).
                unsafe {
                    let d = dst.add(i * ld_dst + t);
                    let start = match init {
                        Init::Zero => 0.0,
                        Init::Dst => *d,
                        Init::From(src, ld) => *src.add(i * ld + t),
                    };
                    *d = start + (acc.wrapping_sub(offset) as f32).mul_add(a, c);
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn product_avx512_vnni<const WORDS: bool>(&self, args: ProductArgs<'_>) {
        use std::arch::x86_64::*;
        let (n, dst, ld_dst, lane_rows, x, init, bias) = args;
        let groups = self.groups;
        // SAFETY: AVX-512F and VNNI are enabled (the caller checked the
        // CPU); every access stays within `product`'s contract: `dst` rows
        // `i < m` at columns `t0 + lane < n`, each lane row at `t0 + lane <
        // n`, `packed` within its `blocks · groups · MR` lanes; lanes past
        // `n` are masked off and their addresses only computed.
        unsafe {
            for t0 in (0..n).step_by(NR) {
                let width = NR.min(n - t0);
                let mut masks = [0 as __mmask16; 4];
                for (v, mask) in masks.iter_mut().enumerate() {
                    let lanes = width.saturating_sub(v * 16).min(16);
                    *mask = ((1u32 << lanes) - 1) as __mmask16;
                }
                for block in 0..self.m.div_ceil(MR) {
                    let valid = MR.min(self.m - block * MR);
                    let zero = _mm512_setzero_si512();
                    let [[mut a00, mut a01, mut a02, mut a03], [mut a10, mut a11, mut a12, mut a13], [mut a20, mut a21, mut a22, mut a23], [mut a30, mut a31, mut a32, mut a33], [mut a40, mut a41, mut a42, mut a43], [mut a50, mut a51, mut a52, mut a53]] =
                        [[zero; 4]; MR];
                    let mut wr = self.packed.as_ptr().add(block * groups * MR);
                    for &row in lane_rows {
                        let c = row.wrapping_add(t0).cast::<i32>();
                        macro_rules! dot {
                            ($a:expr, $x:expr, $w:expr) => {
                                if WORDS {
                                    _mm512_dpwssd_epi32($a, $x, $w)
                                } else {
                                    _mm512_dpbusd_epi32($a, $x, $w)
                                }
                            };
                        }
                        let x0 = _mm512_maskz_loadu_epi32(masks[0], c);
                        let x1 = _mm512_maskz_loadu_epi32(masks[1], c.wrapping_add(16));
                        let x2 = _mm512_maskz_loadu_epi32(masks[2], c.wrapping_add(32));
                        let x3 = _mm512_maskz_loadu_epi32(masks[3], c.wrapping_add(48));
                        macro_rules! dot_row {
                            ($l:expr, $b0:ident, $b1:ident, $b2:ident, $b3:ident) => {
                                let wl = _mm512_set1_epi32(*wr.add($l));
                                $b0 = dot!($b0, x0, wl);
                                $b1 = dot!($b1, x1, wl);
                                $b2 = dot!($b2, x2, wl);
                                $b3 = dot!($b3, x3, wl);
                            };
                        }
                        dot_row!(0, a00, a01, a02, a03);
                        dot_row!(1, a10, a11, a12, a13);
                        dot_row!(2, a20, a21, a22, a23);
                        dot_row!(3, a30, a31, a32, a33);
                        dot_row!(4, a40, a41, a42, a43);
                        dot_row!(5, a50, a51, a52, a53);
                        wr = wr.add(MR);
                    }
                    let acc = [
                        [a00, a01, a02, a03],
                        [a10, a11, a12, a13],
                        [a20, a21, a22, a23],
                        [a30, a31, a32, a33],
                        [a40, a41, a42, a43],
                        [a50, a51, a52, a53],
                    ];
                    for (l, row) in acc.iter().enumerate().take(valid) {
                        let i = block * MR + l;
                        let (a, offset, c) = self.row_affine(i, x, bias);
                        let (a, c) = (_mm512_set1_ps(a), _mm512_set1_ps(c));
                        let offset = _mm512_set1_epi32(offset);
                        let d = dst.add(i * ld_dst + t0);
                        let src = match init {
                            Init::Zero => None,
                            Init::Dst => Some(d.cast_const()),
                            Init::From(src, ld) => Some(src.add(i * ld + t0)),
                        };
                        for (v, &sum) in row.iter().enumerate() {
                            let sum = _mm512_sub_epi32(sum, offset);
                            let mut y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), a, c);
                            if let Some(s) = src {
                                let start = _mm512_maskz_loadu_ps(masks[v], s.wrapping_add(v * 16));
                                y = _mm512_add_ps(start, y);
                            }
                            _mm512_mask_storeu_ps(d.wrapping_add(v * 16), masks[v], y);
                        }
                    }
                }
            }
        }
    }
}

impl QuantizedMatrix {
    /// The AVX-VNNI kernel: 6 × 16 blocks (twelve accumulators; per lane
    /// row two loads and six broadcasts for twelve `vpdpbusd` or
    /// `vpdpwssd`), tails
    /// through lane masks.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,avxvnni")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn product_avx_vnni<const WORDS: bool>(&self, args: ProductArgs<'_>) {
        use std::arch::x86_64::*;
        let (n, dst, ld_dst, lane_rows, x, init, bias) = args;
        /// `-1` for a lane to use, `0` for one to skip: eight lanes from `8 − n`.
        const LANES: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
        const STEP: usize = 16;
        let groups = self.groups;
        // SAFETY: AVX2, FMA and AVX-VNNI are enabled (the caller checked
        // the CPU); every access stays within `product`'s contract: `dst`
        // rows `i < m` at columns `s0 + lane < n`, each lane row at `s0 +
        // lane < n`, `packed` within its `blocks · groups · MR` lanes; lanes
        // past `n` are masked off (not accessed; their addresses only
        // computed, with `wrapping_add`), and `LANES` is read at
        // `8 − lanes ∈ 0..=8`.
        unsafe {
            for s0 in (0..n).step_by(STEP) {
                let width = STEP.min(n - s0);
                let masks = [0, 1].map(|v| {
                    let lanes = width.saturating_sub(v * 8).min(8);
                    _mm256_loadu_si256(LANES.as_ptr().add(8 - lanes).cast())
                });
                for block in 0..self.m.div_ceil(MR) {
                    let valid = MR.min(self.m - block * MR);
                    let zero = _mm256_setzero_si256();
                    let [[mut a00, mut a01], [mut a10, mut a11], [mut a20, mut a21], [mut a30, mut a31], [mut a40, mut a41], [mut a50, mut a51]] =
                        [[zero; 2]; MR];
                    let mut wr = self.packed.as_ptr().add(block * groups * MR);
                    for &row in lane_rows {
                        let c = row.wrapping_add(s0).cast::<i32>();
                        macro_rules! dot {
                            ($a:expr, $x:expr, $w:expr) => {
                                if WORDS {
                                    _mm256_dpwssd_avx_epi32($a, $x, $w)
                                } else {
                                    _mm256_dpbusd_avx_epi32($a, $x, $w)
                                }
                            };
                        }
                        let x0 = _mm256_maskload_epi32(c, masks[0]);
                        let x1 = _mm256_maskload_epi32(c.wrapping_add(8), masks[1]);
                        macro_rules! dot_row {
                            ($l:expr, $b0:ident, $b1:ident) => {
                                let wl = _mm256_set1_epi32(*wr.add($l));
                                $b0 = dot!($b0, x0, wl);
                                $b1 = dot!($b1, x1, wl);
                            };
                        }
                        dot_row!(0, a00, a01);
                        dot_row!(1, a10, a11);
                        dot_row!(2, a20, a21);
                        dot_row!(3, a30, a31);
                        dot_row!(4, a40, a41);
                        dot_row!(5, a50, a51);
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
                        let i = block * MR + l;
                        let (a, offset, c) = self.row_affine(i, x, bias);
                        let (a, c) = (_mm256_set1_ps(a), _mm256_set1_ps(c));
                        let offset = _mm256_set1_epi32(offset);
                        let d = dst.add(i * ld_dst + s0);
                        let src = match init {
                            Init::Zero => None,
                            Init::Dst => Some(d.cast_const()),
                            Init::From(src, ld) => Some(src.add(i * ld + s0)),
                        };
                        for (v, &sum) in row.iter().enumerate() {
                            let sum = _mm256_sub_epi32(sum, offset);
                            let mut y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), a, c);
                            if let Some(s) = src {
                                let start = _mm256_maskload_ps(s.wrapping_add(v * 8), masks[v]);
                                y = _mm256_add_ps(start, y);
                            }
                            _mm256_maskstore_ps(d.wrapping_add(v * 8), masks[v], y);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rand_stream(mut seed: u32) -> impl FnMut() -> f32 {
        move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        }
    }

    /// Lane row `g` at `t`: rows `per·g..per·(g + 1)` of `cols` (`k × ld`
    /// f32), the level for zero past `k`, quantized with `scale`.
    fn lane_rows(
        cols: &[f32],
        k: usize,
        ld: usize,
        n: usize,
        lanes: Lanes,
        scale: ActScale,
    ) -> Vec<Vec<u32>> {
        let (per, q) = (lanes.channels(), scale.quantizer());
        let bits = 32 / per;
        (0..k.div_ceil(per))
            .map(|g| {
                (0..n)
                    .map(|t| {
                        (0..per).fold(0u32, |lane, b| {
                            let r = per * g + b;
                            let level = if r < k {
                                q.level(cols[r * ld + t])
                            } else {
                                scale.zero
                            };
                            lane | (level as u32 & ((1u64 << bits) - 1) as u32) << (bits * b)
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// The kernel equals the portable integer sums bit for bit, and both
    /// stay within the quantization's error of the f32 product.
    #[test]
    fn product_matches_the_integer_sums_and_the_f32_product() {
        let mut rand = rand_stream(777);
        for &(m, k, n) in &[
            (6, 8, 64),
            (13, 10, 100),
            (1, 3, 5),
            (32, 96, 200),
            (7, 4, 17),
            (12, 20, 130),
        ] {
            let w: Vec<f32> = (0..m * k).map(|_| rand()).collect();
            let ld = n + 3;
            // Activations as after a leaky ReLU: mostly positive.
            let cols: Vec<f32> = (0..k * ld)
                .map(|_| (rand() + 0.3).max(0.0) + 0.1 * rand())
                .collect();
            let (lo, hi) = cols
                .iter()
                .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let bias: Vec<f32> = (0..m).map(|_| rand()).collect();
            let start: Vec<f32> = (0..m * n).map(|_| rand()).collect();
            let cpu = crate::nn::cpu_kernel::Features::of_this_cpu();
            let kernels = [
                Some(Kernel::Portable),
                (cpu.avx512 && cpu.avx512_vnni).then_some(Kernel::Avx512Vnni),
                (cpu.avx2_fma && cpu.avx_vnni).then_some(Kernel::AvxVnni),
            ];
            for lanes in [Lanes::Bytes, Lanes::Words] {
                let per = lanes.channels();
                let column = |g: usize, b: usize| Some(per * g + b).filter(|&c| c < k);
                let probe = QuantizedMatrix::for_kernel(
                    &w,
                    m,
                    k,
                    lanes,
                    k.div_ceil(per),
                    column,
                    Kernel::Portable,
                );
                let scale = probe.activation_scale(lo, hi);
                let levels = lane_rows(&cols, k, ld, n, lanes, scale);
                let rows: Vec<*const u32> = levels.iter().map(|r| r.as_ptr()).collect();
                // Half a step of each operand, times the other's largest value.
                let (w_step, x_step) = (0.5 / lanes.weight_max(), scale.scale);
                let mut first: Option<Vec<f32>> = None;
                for kernel in kernels.into_iter().flatten() {
                    let matrix = QuantizedMatrix::for_kernel(
                        &w,
                        m,
                        k,
                        lanes,
                        k.div_ceil(per),
                        column,
                        kernel,
                    );
                    // Each way of starting: from zero, from dst, from another matrix.
                    let mut outs = Vec::new();
                    for case in 0..3 {
                        let mut out = match case {
                            1 => start.clone(),
                            _ => vec![7.0; m * n],
                        };
                        let init = match case {
                            0 => Init::Zero,
                            1 => Init::Dst,
                            _ => Init::From(start.as_ptr(), n),
                        };
                        // SAFETY: out and start are m × n, every lane row n lanes long.
                        unsafe {
                            matrix.product(n, out.as_mut_ptr(), n, &rows, scale, init, Some(&bias))
                        };
                        for i in 0..m {
                            for t in 0..n {
                                let dot: f32 =
                                    (0..k).map(|r| w[i * k + r] * cols[r * ld + t]).sum();
                                let want =
                                    bias[i] + dot + if case == 0 { 0.0 } else { start[i * n + t] };
                                // Per product: |x| < 1 times half a weight
                                // step, |w| ≤ 0.5 times half an activation step.
                                let bound = k as f32 * (w_step / 2.0 + 0.5 * x_step / 2.0) + 1e-5;
                                let got = out[i * n + t];
                                assert!(
                                (got - want).abs() <= bound,
                                "{lanes:?} {kernel:?} m{m} k{k} n{n} case {case} ({i}, {t}): {got} vs {want}"
                            );
                            }
                        }
                        outs.extend(out);
                    }
                    match &first {
                        None => first = Some(outs),
                        Some(portable) => assert_eq!(
                            &outs, portable,
                            "{lanes:?} {kernel:?} m{m} k{k} n{n}: not the integer sums"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn a_scale_spans_zero_and_maps_it_exactly() {
        let s = ActScale::bytes(0.5, 2.0);
        assert_eq!(s.zero, 0);
        assert_eq!(s.quantizer().level(0.0), 0);
        assert_eq!(s.quantizer().level(2.0), 255);
        let s = ActScale::bytes(-1.0, 3.0);
        assert_eq!(s.quantizer().level(0.0), s.zero);
        assert_eq!(s.quantizer().level(-1.0), 0);
        assert_eq!(s.quantizer().level(3.0), 255);
        assert_eq!(s.quantizer().level(f32::NAN), 0);
        assert_eq!(ActScale::bytes(0.0, 0.0).scale, 1.0);
        assert_eq!(ActScale::bytes(f32::NEG_INFINITY, 1.0).scale, 1.0);
        let s = ActScale::words(-1.0, 3.0, 1000);
        assert_eq!((s.zero, s.min, s.max), (0, -1000, 1000));
        assert_eq!(s.quantizer().level(3.0), 1000);
        assert_eq!(s.quantizer().level(-3.5), -1000);
        assert_eq!(s.quantizer().level(f32::NAN), -1000);
    }

    /// Word lanes keep every row's sum inside an i32 at the extremes:
    /// every weight at +1023 and every activation at the top level, over
    /// many products, on every kernel; the sum checked in i64.
    #[test]
    fn word_sums_at_the_extremes_do_not_overflow() {
        let cpu = crate::nn::cpu_kernel::Features::of_this_cpu();
        let kernels = [
            Some(Kernel::Portable),
            (cpu.avx512 && cpu.avx512_vnni).then_some(Kernel::Avx512Vnni),
            (cpu.avx2_fma && cpu.avx_vnni).then_some(Kernel::AvxVnni),
        ];
        for k in [7usize, 448, 4096] {
            for sign in [1.0f32, -1.0] {
                let w = vec![sign; 6 * k];
                let column = |g: usize, b: usize| Some(2 * g + b).filter(|&c| c < k);
                for kernel in kernels.into_iter().flatten() {
                    let m = QuantizedMatrix::for_kernel(
                        &w,
                        6,
                        k,
                        Lanes::Words,
                        k.div_ceil(2),
                        column,
                        kernel,
                    );
                    let scale = m.activation_scale(-1.0, 1.0);
                    let top = scale.quantizer().level(1.0);
                    assert_eq!(top, scale.max);
                    let lane = (top as u32 & 0xffff) | (top as u32) << 16;
                    let row = [lane; 16];
                    let rows = vec![row.as_ptr(); k.div_ceil(2)];
                    let mut out = vec![0f32; 6 * 16];
                    // SAFETY: out is 6 × 16, every lane row 16 lanes long.
                    unsafe { m.product(16, out.as_mut_ptr(), 16, &rows, scale, Init::Zero, None) };
                    // Σ = k · 1023 · top, at most i32::MAX.
                    let sum = i64::from(sign as i32) * k as i64 * 1023 * i64::from(top);
                    assert!(sum.abs() <= i64::from(i32::MAX));
                    let want = sum as f64 * f64::from(m.scales[0]) * f64::from(scale.scale);
                    for &got in &out {
                        assert!(
                            (f64::from(got) - want).abs() <= 1e-6 * want.abs(),
                            "{kernel:?} k{k}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
