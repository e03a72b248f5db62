//! Arabic diacritization as piper-tts 1.8 does it before espeak-ng
//! (`piper.tashkeel.TashkeelDiacritizer`, a Python port of mush42's
//! libtashkeel): a small conformer predicts each letter's diacritic.
//!
//! The model is read from the `model.onnx` piper-tts ships (its weights by
//! the names the export gives them) and run in plain f32 loops: 56 channels,
//! three blocks of feed-forward, 8-head attention and bidirectional GRUs,
//! about a million multiply-adds per character. Around it, the text rules of
//! the Python code: characters outside the model's alphabet are kept aside,
//! digits read as `#`, existing diacritics become hints, and each predicted
//! diacritic is written after its letter.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use crate::error::{Error, Result};
use crate::nn::cpu_ops::{argmax, with_wide_vectors};
use crate::onnx::OnnxWeights;

/// Model width.
const D: usize = 56;
/// Attention heads (of 7 channels each).
const HEADS: usize = 8;
/// Diacritic classes the model predicts.
const CLASSES: usize = 15;
/// The longest text Piper diacritizes, in characters.
pub const CHAR_LIMIT: usize = 12_000;
/// The eight Arabic diacritics the model reads and writes.
const DIACRITICS: [char; 8] = [
    '\u{652}', '\u{651}', '\u{64e}', '\u{64f}', '\u{650}', '\u{64b}', '\u{64c}', '\u{64d}',
];

fn is_diacritic(c: char) -> bool {
    DIACRITICS.contains(&c)
}

/// A dense layer: `x · W + b`, `W` stored `[in][out]` as ONNX's MatMul.
struct Dense {
    w: Vec<f32>,
    b: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Dense {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let rows = x.len() / self.inputs;
        let mut out = vec![0f32; rows * self.outputs];
        for r in 0..rows {
            let o = &mut out[r * self.outputs..(r + 1) * self.outputs];
            o.copy_from_slice(&self.b);
            accumulate(o, &x[r * self.inputs..(r + 1) * self.inputs], &self.w);
        }
        out
    }
}

struct LayerNorm {
    w: Vec<f32>,
    b: Vec<f32>,
}

impl LayerNorm {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let n = self.w.len();
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks_exact(n) {
            let mean = row.iter().sum::<f32>() / n as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
            let inv = 1.0 / (var + 1e-5).sqrt();
            out.extend(
                row.iter()
                    .zip(&self.w)
                    .zip(&self.b)
                    .map(|((v, w), b)| (v - mean) * inv * w + b),
            );
        }
        out
    }
}

/// ONNX's bidirectional GRU (gates z, r, h; `linear_before_reset`), its
/// two directions' outputs summed, then `tanh`. The matrices are kept
/// transposed (`[in][3H]`, `[H][3H]`) so that every product runs along
/// contiguous rows (a vectorized multiply-add per input value).
struct BiGru {
    /// Per direction: `Wᵀ` `[in][3H]`, `Rᵀ` `[H][3H]`, biases `[6H]`.
    w_t: [Vec<f32>; 2],
    r_t: [Vec<f32>; 2],
    b: [Vec<f32>; 2],
    inputs: usize,
    hidden: usize,
}

/// `out += Σ_k x[k] · m[k][..]` for a row-major `m` of `x.len()` rows,
/// compiled for the widest vectors the CPU has (each output element still
/// sums in the same order: the result does not depend on the path).
pub(crate) fn accumulate(out: &mut [f32], x: &[f32], m: &[f32]) {
    with_wide_vectors(|| {
        for (xk, row) in x.iter().zip(m.chunks_exact(out.len())) {
            for (o, w) in out.iter_mut().zip(row) {
                *o += xk * w;
            }
        }
    });
}

/// One GRU step's gates from the input and recurrent projections
/// (`[z | r | h]` each): updates `state` and adds it to `out`. Inlined into
/// its caller's vector width.
#[inline(always)]
fn gates(gx: &[f32], gh: &[f32], state: &mut [f32], out: &mut [f32]) {
    let h = state.len();
    for j in 0..h {
        let z = sigmoid(gx[j] + gh[j]);
        let r = sigmoid(gx[h + j] + gh[h + j]);
        let n = tanh(gx[2 * h + j] + r * gh[2 * h + j]);
        state[j] = (1.0 - z) * n + z * state[j];
        out[j] += state[j];
    }
}

/// The transpose of a row-major `[rows][cols]` matrix.
pub(crate) fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

impl BiGru {
    /// From ONNX's `W` `[2][3H][in]`, `R` `[2][3H][H]` and `B` `[2][6H]`.
    fn new(w: &[f32], r: &[f32], b: &[f32], inputs: usize, hidden: usize) -> Self {
        let g = 3 * hidden;
        let dir = |d: usize| {
            (
                transpose(&w[d * g * inputs..(d + 1) * g * inputs], g, inputs),
                transpose(&r[d * g * hidden..(d + 1) * g * hidden], g, hidden),
                b[d * 2 * g..(d + 1) * 2 * g].to_vec(),
            )
        };
        let (w0, r0, b0) = dir(0);
        let (w1, r1, b1) = dir(1);
        Self {
            w_t: [w0, w1],
            r_t: [r0, r1],
            b: [b0, b1],
            inputs,
            hidden,
        }
    }

    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let (h, inp) = (self.hidden, self.inputs);
        let g = 3 * h;
        let steps = x.len() / inp;
        let mut out = vec![0f32; steps * h];
        for dir in 0..2 {
            let (w_t, r_t, b) = (&self.w_t[dir], &self.r_t[dir], &self.b[dir]);
            // Input projections of every step at once.
            let mut gx = Vec::with_capacity(steps * g);
            for t in 0..steps {
                let start = gx.len();
                gx.extend_from_slice(&b[..g]);
                accumulate(&mut gx[start..], &x[t * inp..(t + 1) * inp], w_t);
            }
            let mut state = vec![0f32; h];
            let mut gh = vec![0f32; g];
            for step in 0..steps {
                let t = if dir == 0 { step } else { steps - 1 - step };
                let gxt = &gx[t * g..(t + 1) * g];
                gh.copy_from_slice(&b[g..]);
                accumulate(&mut gh, &state, r_t);
                let o = &mut out[t * h..(t + 1) * h];
                with_wide_vectors(|| gates(gxt, &gh, &mut state, o));
            }
        }
        out.iter_mut().for_each(|v| *v = tanh(*v));
        out
    }
}

/// The shared branch-free kernels (a few ulp from libm, and loops over them
/// vectorize): libm's calls were most of this model's time.
use crate::nn::cpu_ops::{exp, sigmoid, tanh};

fn silu(x: f32) -> f32 {
    x * sigmoid(x)
}

struct FeedForward {
    norm: LayerNorm,
    up: Dense,
    down: Dense,
}

impl FeedForward {
    /// `x + 0.5 · down(silu(up(norm(x))))`.
    fn residual(&self, x: &mut [f32]) {
        let mut h = self.up.apply(&self.norm.apply(x));
        h.iter_mut().for_each(|v| *v = silu(*v));
        for (xi, d) in x.iter_mut().zip(self.down.apply(&h)) {
            *xi += 0.5 * d;
        }
    }
}

struct Block {
    ffm1: FeedForward,
    attn_norm: LayerNorm,
    q: Dense,
    k: Dense,
    v: Dense,
    o: Dense,
    ccm_norm: LayerNorm,
    gru1: BiGru,
    gru2: BiGru,
    /// Batch norm folded to a scale and shift per channel (112).
    bn_scale: Vec<f32>,
    bn_shift: Vec<f32>,
    gru3: BiGru,
    ffm2: FeedForward,
    post_norm: LayerNorm,
}

impl Block {
    fn apply(&self, x: &mut Vec<f32>, pos: &[f32]) {
        let t = x.len() / D;
        self.ffm1.residual(x);
        // Attention over all positions (one unpadded sequence: no mask).
        let mut a = self.attn_norm.apply(x);
        a.iter_mut().zip(pos).for_each(|(v, p)| *v += p);
        let (q, k, v) = (self.q.apply(&a), self.k.apply(&a), self.v.apply(&a));
        let dh = D / HEADS;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut ctx = vec![0f32; t * D];
        let mut scores = vec![0f32; t];
        for head in 0..HEADS {
            let c0 = head * dh;
            for i in 0..t {
                let qi = &q[i * D + c0..i * D + c0 + dh];
                let mut max = f32::NEG_INFINITY;
                for (j, s) in scores.iter_mut().enumerate() {
                    let kj = &k[j * D + c0..j * D + c0 + dh];
                    *s = qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale;
                    max = max.max(*s);
                }
                let mut sum = 0f32;
                scores.iter_mut().for_each(|s| {
                    *s = exp(*s - max);
                    sum += *s;
                });
                let out = &mut ctx[i * D + c0..i * D + c0 + dh];
                for (j, s) in scores.iter().enumerate() {
                    let p = s / sum;
                    for (o, vv) in out.iter_mut().zip(&v[j * D + c0..j * D + c0 + dh]) {
                        *o += p * vv;
                    }
                }
            }
        }
        for (xi, o) in x.iter_mut().zip(self.o.apply(&ctx)) {
            *xi += o;
        }
        // Convolution-like module: GRU, gated linear unit, GRU, batch
        // norm, SiLU, GRU.
        let h = self.gru1.apply(&self.ccm_norm.apply(x));
        let mut glu = Vec::with_capacity(t * D);
        for row in h.chunks_exact(2 * D) {
            glu.extend(row[..D].iter().zip(&row[D..]).map(|(a, b)| a * sigmoid(*b)));
        }
        let mut h = self.gru2.apply(&glu);
        let width = self.bn_scale.len();
        for row in h.chunks_exact_mut(width) {
            for ((v, s), b) in row.iter_mut().zip(&self.bn_scale).zip(&self.bn_shift) {
                *v = silu(*v * s + b);
            }
        }
        for (xi, c) in x.iter_mut().zip(self.gru3.apply(&h)) {
            *xi += c;
        }
        self.ffm2.residual(x);
        *x = self.post_norm.apply(x);
        x.iter_mut().for_each(|v| *v = tanh(*v));
    }
}

/// libtashkeel's model.
pub struct TashkeelModel {
    char_emb: Vec<f32>,
    diac_emb: Vec<f32>,
    hint_scale: f32,
    dense: [Dense; 3],
    convs: Vec<(Vec<f32>, Vec<f32>, usize)>,
    pos_scale: f32,
    blocks: Vec<Block>,
    res_norm: LayerNorm,
    fc_out: Dense,
    chars: usize,
    hints: usize,
}

struct Reader {
    weights: OnnxWeights,
}

impl Reader {
    fn get(&self, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
        self.weights.values(name, dims, "libtashkeel's model")
    }

    fn dense(&self, module: &str, bias: &str, inputs: usize, outputs: usize) -> Result<Dense> {
        Ok(Dense {
            w: self.get(&format!("{module}.weight"), &[inputs, outputs])?,
            b: if bias.is_empty() {
                vec![0.0; outputs]
            } else {
                self.get(bias, &[outputs])?
            },
            inputs,
            outputs,
        })
    }

    fn norm(&self, module: &str) -> Result<LayerNorm> {
        Ok(LayerNorm {
            w: self.get(&format!("{module}.weight"), &[D])?,
            b: self.get(&format!("{module}.bias"), &[D])?,
        })
    }

    fn gru(&self, module: &str, inputs: usize, hidden: usize) -> Result<BiGru> {
        Ok(BiGru::new(
            &self.get(&format!("{module}.W"), &[2, 3 * hidden, inputs])?,
            &self.get(&format!("{module}.R"), &[2, 3 * hidden, hidden])?,
            &self.get(&format!("{module}.B"), &[2, 6 * hidden])?,
            inputs,
            hidden,
        ))
    }

    fn feed_forward(&self, module: &str) -> Result<FeedForward> {
        Ok(FeedForward {
            norm: self.norm(&format!("{module}.ffm.0"))?,
            up: self.dense(
                &format!("{module}.ffm.ffm.1"),
                &format!("{module}.ffm.1.bias"),
                D,
                4 * D,
            )?,
            down: self.dense(
                &format!("{module}.ffm.ffm.4"),
                &format!("{module}.ffm.4.bias"),
                4 * D,
                D,
            )?,
        })
    }
}

impl TashkeelModel {
    /// Reads piper-tts's `tashkeel/model.onnx`.
    pub fn load(path: &Path) -> Result<Self> {
        let r = Reader {
            weights: OnnxWeights::read(path, &Device::Cpu, DType::F32)?,
        };
        let char_emb = r
            .weights
            .tensors
            .get("char_emb.weight")
            .map(|t| t.dims().to_vec())
            .unwrap_or_default();
        let chars = char_emb.first().copied().unwrap_or(0);
        let hints = r
            .weights
            .tensors
            .get("diac_emb.weight")
            .and_then(|t| t.dims().first().copied())
            .unwrap_or(0);
        let mut convs = Vec::new();
        for (i, k) in [1usize, 3, 5, 7].into_iter().enumerate() {
            // `[out][in][k]` → per tap `[in][out]`, for row multiply-adds.
            let w = r.get(&format!("conv.{i}.conv.weight"), &[D, D, k])?;
            let mut taps = vec![0f32; k * D * D];
            for o in 0..D {
                for c in 0..D {
                    for tap in 0..k {
                        taps[tap * D * D + c * D + o] = w[(o * D + c) * k + tap];
                    }
                }
            }
            convs.push((taps, r.get(&format!("conv.{i}.conv.bias"), &[D])?, k));
        }
        let mut blocks = Vec::new();
        for l in 0..3 {
            let m = format!("attn_layers.{l}");
            let bn = |p: &str| r.get(&format!("{m}.ccm.batchnorm.{p}"), &[2 * D]);
            let (gamma, beta, mean, var) = (
                bn("weight")?,
                bn("bias")?,
                bn("running_mean")?,
                bn("running_var")?,
            );
            let bn_scale: Vec<f32> = gamma
                .iter()
                .zip(&var)
                .map(|(g, v)| g / (v + 1e-5).sqrt())
                .collect();
            let bn_shift = beta
                .iter()
                .zip(&mean)
                .zip(&bn_scale)
                .map(|((b, m), s)| b - m * s)
                .collect();
            blocks.push(Block {
                ffm1: r.feed_forward(&format!("{m}.ffm1"))?,
                attn_norm: r.norm(&format!("{m}.attn.layernorm"))?,
                q: r.dense(&format!("{m}.attn.attn.q_proj"), "", D, D)?,
                k: r.dense(&format!("{m}.attn.attn.k_proj"), "", D, D)?,
                v: r.dense(&format!("{m}.attn.attn.v_proj"), "", D, D)?,
                o: r.dense(&format!("{m}.attn.attn.o_proj"), "", D, D)?,
                ccm_norm: r.norm(&format!("{m}.ccm.layernorm"))?,
                gru1: r.gru(&format!("{m}.ccm.gru1.gru"), D, 2 * D)?,
                gru2: r.gru(&format!("{m}.ccm.gru2.gru"), D, 2 * D)?,
                bn_scale,
                bn_shift,
                gru3: r.gru(&format!("{m}.ccm.gru3.gru"), 2 * D, D)?,
                ffm2: r.feed_forward(&format!("{m}.ffm2"))?,
                post_norm: r.norm(&format!("{m}.post_norm"))?,
            });
        }
        Ok(Self {
            char_emb: r.get("char_emb.weight", &[chars, D])?,
            diac_emb: r.get("diac_emb.weight", &[hints, D])?,
            hint_scale: r.get("hint_scale", &[1])?[0],
            dense: [
                r.dense("dense.dense.0", "dense.0.bias", D, 256)?,
                r.dense("dense.dense.1", "dense.1.bias", 256, 128)?,
                r.dense("dense.dense.2", "dense.2.bias", 128, D)?,
            ],
            convs,
            pos_scale: r.get("pos_enc.scale", &[1])?[0],
            blocks,
            res_norm: r.norm("res_layernorm")?,
            fc_out: r.dense("fc_out", "fc_out.bias", D, CLASSES)?,
            chars,
            hints,
        })
    }

    /// The class probabilities of each character (`[T][15]`, the ONNX
    /// graph's `logits` output, which is a softmax).
    pub fn probabilities(&self, chars: &[usize], hints: &[usize]) -> Result<Vec<f32>> {
        let t = chars.len();
        if hints.len() != t {
            return Err(Error::InvalidInput(format!(
                "tashkeel: {t} characters but {} hints",
                hints.len()
            )));
        }
        if let Some(bad) = chars
            .iter()
            .find(|&&c| c >= self.chars)
            .or(hints.iter().find(|&&h| h >= self.hints))
        {
            return Err(Error::InvalidInput(format!(
                "tashkeel: id {bad} outside the model's tables"
            )));
        }
        let mut x = Vec::with_capacity(t * D);
        for (&c, &h) in chars.iter().zip(hints) {
            let ce = &self.char_emb[c * D..(c + 1) * D];
            let he = &self.diac_emb[h * D..(h + 1) * D];
            x.extend(
                ce.iter()
                    .zip(he)
                    .map(|(a, b)| a * 16.0 + b * self.hint_scale * 16.0),
            );
        }
        for dense in &self.dense {
            x = dense.apply(&x);
        }
        // Four same-padded convolutions (kernels 1, 3, 5, 7), no activation.
        for (w, b, k) in &self.convs {
            let pad = k / 2;
            let mut y = vec![0f32; t * D];
            for ti in 0..t {
                let out = &mut y[ti * D..(ti + 1) * D];
                out.copy_from_slice(b);
                for tap in 0..*k {
                    let src = ti + tap;
                    if src < pad || src - pad >= t {
                        continue;
                    }
                    let xs = &x[(src - pad) * D..(src - pad + 1) * D];
                    accumulate(out, xs, &w[tap * D * D..(tap + 1) * D * D]);
                }
            }
            x = y;
        }
        let skip = x.clone();
        let mut pos = vec![0f32; t * D];
        for p in 0..t {
            for j in 0..D / 2 {
                let freq = 10_000f32.powf(-(j as f32) / (D / 2) as f32);
                let angle = p as f32 * freq;
                pos[p * D + j] = angle.sin() * self.pos_scale;
                pos[p * D + D / 2 + j] = angle.cos() * self.pos_scale;
            }
        }
        for block in &self.blocks {
            block.apply(&mut x, &pos);
        }
        x.iter_mut().zip(&skip).for_each(|(v, s)| *v += s);
        let logits = self.fc_out.apply(&self.res_norm.apply(&x));
        let mut probs = Vec::with_capacity(logits.len());
        for row in logits.chunks_exact(CLASSES) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exps: Vec<f32> = row.iter().map(|v| exp(v - max)).collect();
            let sum: f32 = exps.iter().sum();
            probs.extend(exps.iter().map(|e| e / sum));
        }
        Ok(probs)
    }
}

/// piper-tts's `TashkeelDiacritizer`: the model with its three id maps.
pub struct Diacritizer {
    model: TashkeelModel,
    input_ids: HashMap<char, usize>,
    hint_ids: HashMap<String, usize>,
    targets: Vec<Option<String>>,
}

fn read_map(path: &Path) -> Result<HashMap<String, usize>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        reason: format!("not a JSON map of strings to ids: {e}"),
    })
}

impl Diacritizer {
    /// Reads `model.onnx`, `input_id_map.json`, `hint_id_map.json` and
    /// `target_id_map.json` from piper-tts's `tashkeel/` folder.
    pub fn load(dir: &Path) -> Result<Self> {
        let model = TashkeelModel::load(&dir.join("model.onnx"))?;
        let path = |name: &str| -> PathBuf { dir.join(name) };
        let input_ids = read_map(&path("input_id_map.json"))?
            .into_iter()
            .filter_map(|(k, v)| {
                let mut chars = k.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Some((c, v)),
                    _ => None,
                }
            })
            .collect();
        let hint_ids = read_map(&path("hint_id_map.json"))?;
        let mut targets = vec![None; CLASSES];
        for (text, id) in read_map(&path("target_id_map.json"))? {
            if let Some(slot) = targets.get_mut(id) {
                // The pad class (`_`) is a meta class: it writes nothing.
                *slot = (text != "_").then_some(text);
            }
        }
        Ok(Self {
            model,
            input_ids,
            hint_ids,
            targets,
        })
    }

    /// `TashkeelDiacritizer(text)`: the text stripped, with a diacritic
    /// predicted after each letter of the model's alphabet (digits read as
    /// one symbol), other characters kept where they were.
    pub fn diacritize(&self, text: &str) -> Result<String> {
        let text = text.trim();
        if text.chars().count() > CHAR_LIMIT {
            return Err(Error::InvalidInput(format!(
                "tashkeel: a text part of more than {CHAR_LIMIT} characters"
            )));
        }
        // `_to_valid_chars`.
        let mut valid = String::new();
        let mut removed = HashSet::new();
        for c in text.chars() {
            if self.input_ids.contains_key(&c) || is_diacritic(c) {
                valid.push(c);
            } else if c.is_ascii_digit() || ('٠'..='٩').contains(&c) {
                valid.push('#');
            } else {
                removed.insert(c);
            }
        }
        // `_extract_chars_and_diacritics`.
        let valid = valid.trim_start_matches(is_diacritic);
        let mut chars = Vec::new();
        let mut hints = Vec::new();
        let mut pending = String::new();
        for c in valid.chars().chain(std::iter::once(' ')) {
            if is_diacritic(c) {
                pending.push(c);
            } else {
                chars.push(c);
                hints.push(std::mem::take(&mut pending));
            }
        }
        chars.pop();
        if !hints.is_empty() {
            hints.remove(0);
        }
        let hint_ids: Vec<usize> = hints
            .iter()
            .map(|d| {
                let d = if self.hint_ids.contains_key(d) {
                    d.clone()
                } else {
                    normalized_shadda(d).unwrap_or_default()
                };
                self.hint_ids.get(&d).copied().unwrap_or(0)
            })
            .collect();
        let char_ids: Vec<usize> = chars
            .iter()
            .map(|c| self.input_ids.get(c).copied().unwrap_or(0))
            .collect();
        if char_ids.is_empty() {
            return Ok(text.to_string());
        }
        let probs = self.model.probabilities(&char_ids, &hint_ids)?;
        let predicted: Vec<&str> = probs
            .chunks_exact(CLASSES)
            .filter_map(|row| self.targets.get(argmax(row)).and_then(|t| t.as_deref()))
            .collect();
        // `_annotate_text_with_diacritics`.
        let mut out = String::new();
        let mut next = predicted.into_iter();
        for c in text.chars() {
            if is_diacritic(c) {
                continue;
            }
            out.push(c);
            if !removed.contains(&c) {
                out.push_str(next.next().unwrap_or(""));
            }
        }
        Ok(out)
    }
}

/// A vowel written before its shadda → shadda first (libtashkeel's
/// `NORMALIZED_DIAC_MAP`); other unknown combinations are dropped.
fn normalized_shadda(d: &str) -> Option<String> {
    let chars: Vec<char> = d.chars().collect();
    match chars.as_slice() {
        [v, '\u{651}']
            if [
                '\u{64e}', '\u{64b}', '\u{64f}', '\u{64c}', '\u{650}', '\u{64d}',
            ]
            .contains(v) =>
        {
            Some(format!("\u{651}{v}"))
        }
        _ => None,
    }
}
