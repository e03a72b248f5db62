//! A HiFi-GAN stage's residual blocks (the multi-receptive-field fusion:
//! `(block₁(x) + … + blockₙ(x)) / n`, each block a chain of
//! `x + conv(act(x))` steps) run time tile by time tile, so that every
//! intermediate signal stays in the core's cache.
//!
//! Run convolution by convolution, the last stage of a 4-second sentence
//! (32 channels × 88,000 steps, 11 MB a signal) streams each convolution's
//! input and output through memory, and the sum and the division walk three
//! more: about 290 MB a sentence against 5.4 GFLOP. Here a tile reads `x`
//! once with a margin (each step's reach), chains the steps in buffers of a
//! few hundred KiB, and writes the stage's output once; the margins are
//! computed twice, by the two tiles that share them (about 3 % more
//! multiply-adds on joe-medium's last stage).
//!
//! On the AVX2 and AVX-512 kernels the result equals the
//! convolution-by-convolution one bit for bit: each output step's sums run
//! in the same order whatever the tile, and the blocks are added and scaled
//! as candle adds and divides. On the portable path the `gemm` crate picks
//! its summation order by the product's width, so the two agree up to
//! float rounding there.

use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;

use super::cpu_conv::{balanced_tile_len, FusedConv, SharedOut, TileInput, TileScratch, TILE_STEP};
use super::cpu_gemm::{Init, PackedMatrix};
use super::cpu_ops::with_cpu_slice;

/// The f32 working set a tile aims at, in floats (three signals of
/// `channels × (tile + margins)` and about as much again for the window
/// and the blocks' sum): 384 KiB of signals, inside the L2 of Zen 2–4 and
/// Intel's server cores (512 KiB – 2 MiB); Intel's client cores before
/// Ice Lake have 256 KiB and spill part of it to L3.
const TILE_FLOATS: usize = 98_304;

/// One residual step: `x + second(act(first(act(x))))` with a second
/// convolution (ResBlock1), else `x + first(act(x))` (ResBlock2).
#[derive(Debug, Clone, Copy)]
struct Step<'a> {
    first: (&'a FusedConv, &'a PackedMatrix),
    second: Option<(&'a FusedConv, &'a PackedMatrix)>,
    /// Steps of the step's input it reads before and after an output step.
    reach: (usize, usize),
}

/// A stage's residual blocks prepared to run tile by tile: every
/// convolution dense, f32, `channels` in and out, and the tile the margins
/// allow.
#[derive(Debug)]
pub struct MrfStage<'a> {
    blocks: Vec<Vec<Step<'a>>>,
    channels: usize,
    slope: f32,
    /// The widest block's margins: steps read before and after a tile.
    margin: (usize, usize),
}

impl<'a> MrfStage<'a> {
    /// The stage of `blocks` (per block, its steps' first and optional
    /// second convolution), whose convolutions are preceded by leaky ReLUs
    /// of `slope`. `None` where a convolution has integer weights, the
    /// channels differ, a block has no steps, or the margins are over half
    /// the longest tile of this many channels (then convolution by
    /// convolution is as fast): the caller runs the blocks as they are.
    pub fn new(
        blocks: &[Vec<(&'a FusedConv, Option<&'a FusedConv>)>],
        channels: usize,
        slope: f32,
    ) -> Option<Self> {
        let prepared = |conv: &'a FusedConv| {
            let packed = conv.f32_weights()?;
            (conv.channels() == (channels, channels)).then_some((conv, packed))
        };
        let mut margin = (0, 0);
        let mut steps_of = Vec::with_capacity(blocks.len());
        for block in blocks {
            if block.is_empty() {
                return None;
            }
            let mut steps = Vec::with_capacity(block.len());
            let mut total = (0, 0);
            for &(first, second) in block {
                let first = prepared(first)?;
                let second = match second {
                    Some(conv) => Some(prepared(conv)?),
                    None => None,
                };
                let (l1, r1) = first.0.reach();
                let (l2, r2) = second.map_or((0, 0), |(conv, _)| conv.reach());
                let reach = (l1 + l2, r1 + r2);
                total = (total.0 + reach.0, total.1 + reach.1);
                steps.push(Step {
                    first,
                    second,
                    reach,
                });
            }
            margin = (margin.0.max(total.0), margin.1.max(total.1));
            steps_of.push(steps);
        }
        if steps_of.is_empty() {
            return None;
        }
        let stage = Self {
            blocks: steps_of,
            channels,
            slope,
            margin,
        };
        // Margins above half the longest tile are recomputed more than the
        // memory traffic they save is worth. (A short input's tiles may be
        // shorter than that, down to 64 steps: little work either way.)
        (stage.max_tile() >= 2 * (margin.0 + margin.1)).then_some(stage)
    }

    /// The longest tile whose signals with margins fit the working set.
    fn max_tile(&self) -> usize {
        let width = TILE_FLOATS / 4 / self.channels.max(1);
        width.saturating_sub(self.margin.0 + self.margin.1) / TILE_STEP * TILE_STEP
    }

    /// The stage's output for `x` `[b, channels, len]` (f32, on the CPU).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, len) = x.dims3()?;
        if c != self.channels {
            candle_core::bail!(
                "residual stage: {c} input channels, the convolutions expect {}",
                self.channels
            );
        }
        let per_item = c * len;
        let mut out: Vec<f32> = Vec::with_capacity(b * per_item);
        let base = out.as_mut_ptr();
        with_cpu_slice(x, |x| {
            for item in 0..b {
                let xs = &x[item * per_item..(item + 1) * per_item];
                self.forward_item(xs, SharedOut(base.wrapping_add(item * per_item)), len);
            }
        })?;
        // SAFETY: `forward_item` wrote every element of every item.
        unsafe { out.set_len(b * per_item) };
        Tensor::from_vec(out, (b, c, len), &Device::Cpu)
    }

    /// One item: writes every element of `out` (`[channels, len]`, which may
    /// be uninitialized), tiles in parallel.
    fn forward_item(&self, xs: &[f32], out: SharedOut, len: usize) {
        if len == 0 {
            return;
        }
        let tile_len = balanced_tile_len(len, self.max_tile().max(TILE_STEP));
        let tiles = len.div_ceil(tile_len);
        let input = TileInput::whole(xs, len);
        (0..tiles)
            .into_par_iter()
            .for_each_init(TileBuffers::default, |buffers, tile| {
                let t0 = tile * tile_len;
                let n = tile_len.min(len - t0);
                self.tile(input, len, t0, n, out, buffers);
            });
    }

    /// Output steps `t0..t0 + n` of the sequence of `len` steps.
    fn tile(
        &self,
        x: TileInput<'_>,
        len: usize,
        t0: usize,
        n: usize,
        out: SharedOut,
        buffers: &mut TileBuffers,
    ) {
        let c = self.channels;
        let ld = n + self.margin.0 + self.margin.1;
        let TileBuffers {
            even,
            odd,
            inner,
            sum,
            scratch,
        } = buffers;
        for buffer in [&mut *even, &mut *odd, &mut *inner] {
            if buffer.len() < c * ld {
                buffer.resize(c * ld, 0.0);
            }
        }
        if sum.len() < c * n {
            sum.resize(c * n, 0.0);
        }
        for (index, block) in self.blocks.iter().enumerate() {
            // What the steps after each one read: its output's margins.
            let mut after: (usize, usize) = block
                .iter()
                .fold((0, 0), |(l, r), step| (l + step.reach.0, r + step.reach.1));
            // The previous step's output: its buffer and the steps it holds.
            let mut previous: Option<(usize, usize)> = None;
            for (s, step) in block.iter().enumerate() {
                after = (after.0 - step.reach.0, after.1 - step.reach.1);
                let first = t0.saturating_sub(after.0);
                let end = (t0 + n + after.1).min(len);
                let (target, other) = if s % 2 == 0 {
                    (&mut *even, &*odd)
                } else {
                    (&mut *odd, &*even)
                };
                let input = match previous {
                    None => x,
                    Some((held_first, held_len)) => TileInput {
                        data: other,
                        ld,
                        first: held_first,
                        len: held_len,
                    },
                };
                // SAFETY: `target` holds `c` rows of `ld ≥ end − first`
                // columns and is neither the input (`x` or the other
                // signal) nor `inner`.
                unsafe {
                    self.step(
                        step,
                        input,
                        len,
                        first,
                        end - first,
                        target,
                        ld,
                        inner,
                        scratch,
                    )
                };
                previous = Some((first, end - first));
            }
            // The block's output, exactly the tile's steps: add it up as
            // candle adds (`sum = y₁; sum = sum + y₂; …`).
            let output: &[f32] = if block.len() % 2 == 1 { even } else { odd };
            for ch in 0..c {
                let y = &output[ch * ld..][..n];
                let acc = &mut sum[ch * n..(ch + 1) * n];
                if index == 0 {
                    acc.copy_from_slice(y);
                } else {
                    acc.iter_mut().zip(y).for_each(|(a, &v)| *a += v);
                }
            }
        }
        // `sum / blocks` as candle's affine computes it: `v · (1 / n) + 0`.
        let scale = (1.0 / self.blocks.len() as f64) as f32;
        for ch in 0..c {
            // SAFETY: this tile alone writes steps t0..t0+n of each row of
            // the item's `[c, len]` output.
            let row = unsafe { std::slice::from_raw_parts_mut(out.get().add(ch * len + t0), n) };
            for (o, &v) in row.iter_mut().zip(&sum[ch * n..(ch + 1) * n]) {
                *o = v * scale + 0.0;
            }
        }
    }

    /// One residual step's output over sequence steps `first..first + n`
    /// into `target` (rows `ld` apart), from `input`.
    ///
    /// # Safety
    /// - `input` must hold, in each of its `channels` rows, every step of
    ///   `first − reach.0 .. first + n + reach.1` inside `0..len` (its
    ///   convolutions' reads and the residual's, which are not checked),
    ///   with `input.first ≤ first`;
    /// - `target` and `inner` must hold `channels` rows of `ld` columns,
    ///   `ld ≥ n + reach.0 + reach.1` (the inner signal's span).
    #[allow(clippy::too_many_arguments)]
    unsafe fn step(
        &self,
        step: &Step<'_>,
        input: TileInput<'_>,
        len: usize,
        first: usize,
        n: usize,
        target: &mut [f32],
        ld: usize,
        inner: &mut [f32],
        scratch: &mut TileScratch,
    ) {
        // The residual: the input at the same steps.
        let residual = Init::From(input.data[(first - input.first)..].as_ptr(), input.ld);
        let (conv, packed) = step.first;
        match step.second {
            None => {
                // SAFETY: `target` is `channels × ld` and overlaps neither the
                // input nor its residual (the caller's contract).
                unsafe {
                    conv.tile_f32(
                        packed,
                        input,
                        first,
                        n,
                        self.slope,
                        residual,
                        target.as_mut_ptr(),
                        ld,
                        scratch,
                    )
                };
            }
            Some((second, second_packed)) => {
                // The first convolution over what the second reads.
                let (l2, r2) = second.reach();
                let inner_first = first.saturating_sub(l2);
                let inner_end = (first + n + r2).min(len);
                // SAFETY: `inner` is `channels × ld`, ld ≥ the inner span
                // (the contract above), and is a buffer of its own. The
                // first call reads `input` over the inner span's reach,
                // inside what the contract says it holds; the second reads
                // `inner` over `first − l2 .. first + n + r2` (clipped to
                // the sequence), which the first call just wrote, and the
                // residual from `input`, and writes `target` only.
                unsafe {
                    conv.tile_f32(
                        packed,
                        input,
                        inner_first,
                        inner_end - inner_first,
                        self.slope,
                        Init::Zero,
                        inner.as_mut_ptr(),
                        ld,
                        scratch,
                    );
                    let inner = TileInput {
                        data: inner,
                        ld,
                        first: inner_first,
                        len: inner_end - inner_first,
                    };
                    second.tile_f32(
                        second_packed,
                        inner,
                        first,
                        n,
                        self.slope,
                        residual,
                        target.as_mut_ptr(),
                        ld,
                        scratch,
                    );
                }
            }
        }
    }
}

/// One thread's tile buffers: two signals the steps alternate between, the
/// inner signal of a two-convolution step, the blocks' running sum.
#[derive(Debug, Default)]
struct TileBuffers {
    even: Vec<f32>,
    odd: Vec<f32>,
    inner: Vec<f32>,
    sum: Vec<f32>,
    scratch: TileScratch,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::cpu_gemm_int8::Lanes;

    /// A block's steps as (kernel, dilation of the first convolution,
    /// whether a second, undilated one follows: ResBlock1, whether the
    /// first pads only on the left: causal).
    type BlockSpec = Vec<(usize, usize, bool, bool)>;

    /// A convolution: the fused kernel, its candle weight and bias, its
    /// dilation and its left padding.
    type TestConv = (FusedConv, Tensor, Tensor, usize, usize);

    /// One step's convolutions.
    struct StepConvs {
        first: TestConv,
        second: Option<TestConv>,
    }

    fn conv(c: usize, k: usize, d: usize, causal: bool) -> Result<TestConv> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 0.3 / (c * k) as f32, (c, c, k), &dev)?;
        let b = Tensor::randn(0f32, 0.1, c, &dev)?;
        let left = if causal { d * (k - 1) } else { d * (k - 1) / 2 };
        let fused = FusedConv::with_left_padding(&w, Some(&b), d, left)?;
        Ok((fused, w, b, d, left))
    }

    fn build(c: usize, spec: &[BlockSpec]) -> Result<Vec<Vec<StepConvs>>> {
        spec.iter()
            .map(|block| {
                block
                    .iter()
                    .map(|&(k, d, two, causal)| {
                        Ok(StepConvs {
                            first: conv(c, k, d, causal)?,
                            second: if two {
                                Some(conv(c, k, 1, false)?)
                            } else {
                                None
                            },
                        })
                    })
                    .collect()
            })
            .collect()
    }

    fn refs(blocks: &[Vec<StepConvs>]) -> Vec<Vec<(&FusedConv, Option<&FusedConv>)>> {
        blocks
            .iter()
            .map(|b| {
                b.iter()
                    .map(|s| (&s.first.0, s.second.as_ref().map(|c| &c.0)))
                    .collect()
            })
            .collect()
    }

    /// The stage convolution by convolution on the fused kernels, summed
    /// and divided with candle's ops: what `Generator::forward` runs
    /// without this module.
    fn one_by_one(blocks: &[Vec<StepConvs>], x: &Tensor) -> Result<Tensor> {
        let mut sum: Option<Tensor> = None;
        for block in blocks {
            let mut y = x.clone();
            for step in block {
                y = match &step.second {
                    None => step.first.0.forward(&y, 0.1, Some(&y))?,
                    Some(second) => {
                        let inner = step.first.0.forward(&y, 0.1, None)?;
                        second.0.forward(&inner, 0.1, Some(&y))?
                    }
                };
            }
            sum = Some(match sum {
                Some(s) => (s + y)?,
                None => y,
            });
        }
        sum.map_or_else(|| Ok(x.clone()), |s| s / blocks.len() as f64)
    }

    /// The stage on candle's own `conv1d` (the reference the kernels are
    /// tested against).
    fn candle_reference(blocks: &[Vec<StepConvs>], x: &Tensor) -> Result<Tensor> {
        let apply = |(_, w, b, d, left): &TestConv, x: &Tensor| {
            let span = d * (w.dim(2)? - 1);
            candle_nn::ops::leaky_relu(x, 0.1)?
                .pad_with_zeros(2, *left, span - left)?
                .conv1d(w, 0, 1, *d, 1)?
                .broadcast_add(&b.reshape((1, b.dim(0)?, 1))?)
        };
        let mut sum: Option<Tensor> = None;
        for block in blocks {
            let mut y = x.clone();
            for step in block {
                let inner = apply(&step.first, &y)?;
                let out = match &step.second {
                    None => inner,
                    Some(second) => apply(second, &inner)?,
                };
                y = (out + &y)?;
            }
            sum = Some(match sum {
                Some(s) => (s + y)?,
                None => y,
            });
        }
        sum.map_or_else(|| Ok(x.clone()), |s| s / blocks.len() as f64)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.max_all()?.to_scalar::<f32>()
    }

    #[test]
    fn equals_the_convolutions_one_by_one_and_matches_candle() -> Result<()> {
        // joe-medium's blocks (ResBlock2), and ResBlock1's pairs (Piper
        // "high", MMS): dilated then undilated.
        let two: Vec<BlockSpec> = vec![
            vec![(3, 1, false, false), (3, 2, false, false)],
            vec![(5, 2, false, false), (5, 6, false, false)],
            vec![(7, 3, false, false), (7, 12, false, false)],
        ];
        let one: Vec<BlockSpec> = vec![
            vec![
                (3, 1, true, false),
                (3, 3, true, false),
                (3, 5, true, false),
            ],
            vec![
                (7, 1, true, false),
                (7, 3, true, false),
                (7, 5, true, false),
            ],
        ];
        // Reaches on one side only, one block wider on the left than 64.
        let causal: Vec<BlockSpec> = vec![
            vec![(5, 4, false, true), (5, 16, false, true)],
            vec![(3, 1, true, true)],
        ];
        // Bit for bit on the AVX2 and AVX-512 kernels; on the portable path
        // the `gemm` crate orders its sums by the product's width.
        let exact = crate::nn::cpu_kernel::avx2();
        let dev = Device::Cpu;
        for (spec, c) in [(&two, 32), (&one, 16), (&two, 8), (&causal, 16)] {
            let blocks = build(c, spec)?;
            let stage = MrfStage::new(&refs(&blocks), c, 0.1).expect("a stage in cache");
            // One step; shorter than the margins; a last tile of one step
            // or of a few; not a multiple of 64; several tiles (a
            // 32-channel tile is under 700 steps); two items.
            for (batch, len) in [(1, 1), (1, 20), (1, 65), (1, 129), (2, 333), (1, 3000)] {
                let x = Tensor::randn(0f32, 1.0, (batch, c, len), &dev)?;
                let got = stage.forward(&x)?;
                let same = one_by_one(&blocks, &x)?;
                let diff = max_diff(&got, &same)?;
                assert!(
                    if exact { diff == 0.0 } else { diff < 1e-5 },
                    "c{c} len {len}: {diff} from the convolutions' own result"
                );
                let want = candle_reference(&blocks, &x)?;
                let err = max_diff(&got, &want)?;
                assert!(err < 1e-4, "c{c} len {len}: {err} from candle's conv1d");
            }
        }
        Ok(())
    }

    #[test]
    fn convolutions_it_cannot_run_are_left_to_the_caller() -> Result<()> {
        let spec: Vec<BlockSpec> = vec![vec![(3, 1, false, false), (3, 2, false, false)]];
        let blocks = build(8, &spec)?;
        assert!(MrfStage::new(&refs(&blocks), 8, 0.1).is_some());
        // Another channel count than the convolutions'.
        assert!(MrfStage::new(&refs(&blocks), 16, 0.1).is_none());
        // No blocks, or a block without steps.
        assert!(MrfStage::new(&[], 8, 0.1).is_none());
        assert!(MrfStage::new(&[Vec::new()], 8, 0.1).is_none());
        // Integer weights (`--precision int8`).
        let quantized = blocks[0][0].first.0.quantized(Lanes::Words);
        let mixed = vec![vec![(&quantized, None), (&blocks[0][1].first.0, None)]];
        assert!(MrfStage::new(&mixed, 8, 0.1).is_none());
        // Margins too wide for a tile of this many channels.
        let wide = build(256, &[vec![(7, 3, false, false), (7, 12, false, false)]])?;
        assert!(MrfStage::new(&refs(&wide), 256, 0.1).is_none());
        // An empty input gives an empty output (and so does a convolution).
        let stage = MrfStage::new(&refs(&blocks), 8, 0.1).expect("stage");
        let empty = Tensor::zeros((1, 8, 0), candle_core::DType::F32, &Device::Cpu)?;
        assert_eq!(stage.forward(&empty)?.dims(), &[1, 8, 0]);
        let conv = &blocks[0][0].first.0;
        assert_eq!(conv.forward(&empty, 0.1, None)?.dims(), &[1, 8, 0]);
        // An input of other channels is refused, not read past.
        let x = Tensor::zeros((1, 4, 50), candle_core::DType::F32, &Device::Cpu)?;
        let err = stage.forward(&x).expect_err("refused");
        assert!(err.to_string().contains("4 input channels"), "{err}");
        Ok(())
    }
}
