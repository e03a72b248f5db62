//! T3's transformer backbones, without their token embeddings: Hugging
//! Face's `LlamaModel` (English and multilingual T3: RMSNorm, rotary
//! positions with llama3 scaling, a SwiGLU MLP) and `GPT2Model` (Turbo:
//! LayerNorm, learned positions, a GELU MLP, biases). Both are pre-norm
//! blocks of multi-head attention with a key/value cache per sequence and a
//! final norm, so they share one implementation and one decode path.
//!
//! Written here rather than taken from candle-transformers: T3 feeds
//! embeddings (its own text, speech and conditioning tables), keeps one
//! cache per request so that requests decode independently, and runs its
//! projections through [`Linear`], whose few-row kernel is what makes decode
//! fast on the CPU. q/k/v (and Llama's gate/up) are one product each.

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::kv_cache::KvCache;
use candle_nn::VarBuilder;
use rayon::prelude::*;

use crate::nn::cpu_ops::{applies_on, applies_to, gelu_tanh, swiglu, with_wide_vectors};
use crate::nn::linear::{Linear, Precision};

/// Which transformer a backbone is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Architecture {
    /// Llama: RMSNorm, rotary positions, SwiGLU MLP, no biases; tensors
    /// `layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, …}`, `norm`.
    Llama {
        /// RoPE base.
        rope_theta: f64,
        /// llama3 frequency scaling, where the model uses it.
        rope_scaling: Option<Llama3Scaling>,
    },
    /// GPT-2: LayerNorm, learned positions (`wpe`), GELU (tanh) MLP,
    /// biases everywhere, `Conv1D` weights stored `[in, out]`; tensors
    /// `h.N.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}`,
    /// `ln_f`, `wpe`.
    Gpt2 {
        /// Rows of the position table.
        positions: usize,
    },
}

/// The sizes and constants of a backbone.
#[derive(Debug, Clone, PartialEq)]
pub struct BackboneConfig {
    /// Model width.
    pub hidden: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads (no grouping: as many key/value heads).
    pub heads: usize,
    /// Width of a head.
    pub head_dim: usize,
    /// MLP width.
    pub intermediate: usize,
    /// Norm epsilon.
    pub norm_eps: f64,
    /// Llama or GPT-2.
    pub architecture: Architecture,
}

/// llama3's RoPE scaling: low frequencies divided by `factor`, high ones
/// kept, a smooth blend between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3Scaling {
    /// Division of the low frequencies.
    pub factor: f64,
    /// Wavelengths above `original_context / low_freq_factor` are scaled.
    pub low_freq_factor: f64,
    /// Wavelengths below `original_context / high_freq_factor` are kept.
    pub high_freq_factor: f64,
    /// The context length the model was first trained at.
    pub original_context: f64,
}

/// The RoPE scaling of Llama 3.2 (and so of T3): factor 8 below 1/8192
/// cycles per position, kept above 4/8192.
pub const LLAMA3_SCALING: Llama3Scaling = Llama3Scaling {
    factor: 8.0,
    low_freq_factor: 1.0,
    high_freq_factor: 4.0,
    original_context: 8192.0,
};

/// RMSNorm with a gain (Llama), or LayerNorm with a gain and a bias (GPT-2).
#[derive(Debug, Clone)]
enum Norm {
    Rms {
        weight: Tensor,
        eps: f32,
    },
    Layer {
        weight: Tensor,
        bias: Tensor,
        eps: f32,
    },
}

impl Norm {
    fn rms(width: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self::Rms {
            weight: vb.get(width, "weight")?,
            eps: eps as f32,
        })
    }

    fn layer(width: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self::Layer {
            weight: vb.get(width, "weight")?,
            bias: vb.get(width, "bias")?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Rms { weight, eps } => candle_nn::ops::rms_norm(&x.contiguous()?, weight, *eps),
            Self::Layer { weight, bias, eps } => {
                candle_nn::ops::layer_norm(&x.contiguous()?, weight, bias, *eps)
            }
        }
    }
}

/// The feed-forward half of a block.
#[derive(Debug, Clone)]
enum Mlp {
    /// `down(silu(gate(x)) · up(x))`, gate and up fused.
    SwiGlu { gate_up: Linear, down: Linear },
    /// `proj(gelu_tanh(fc(x)))`.
    Gelu { fc: Linear, proj: Linear },
}

/// One pre-norm block.
#[derive(Debug, Clone)]
struct Block {
    input_norm: Norm,
    qkv: Linear,
    o_proj: Linear,
    post_norm: Norm,
    mlp: Mlp,
}

/// The key/value cache of one sequence batch (its rows decode together).
#[derive(Debug, Clone)]
pub struct BackboneCache {
    layers: Vec<LayerCache>,
    len: usize,
    probes: Vec<AttentionProbe>,
}

/// Records one head's attention weights (softmax over every key, row 0 of
/// the batch) at every forward: what Chatterbox's alignment analyzer reads
/// from the multilingual T3 (the reference's `output_attentions` hook).
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionProbe {
    /// The block.
    pub layer: usize,
    /// The head within it.
    pub head: usize,
    /// The last forward's weights, `queries × keys` (keys: every cached
    /// position, the new ones included).
    pub weights: Vec<f32>,
    /// Query positions of the last forward.
    pub queries: usize,
    /// Position of the last forward's first query (its row 0 in
    /// `weights`): 0 after a whole prefill, the cached length after one
    /// that continued a cache.
    pub first_query: usize,
}

impl AttentionProbe {
    /// A probe on `head` of block `layer`, empty until a forward runs.
    pub fn new(layer: usize, head: usize) -> Self {
        Self {
            layer,
            head,
            weights: Vec::new(),
            queries: 0,
            first_query: 0,
        }
    }
}

/// One block's keys and values.
#[derive(Debug, Clone)]
enum LayerCache {
    /// On the CPU, position-major (`[position][row][head][dim]`), so a
    /// step appends without moving what is there and the decode kernel
    /// reads it in place.
    Cpu { k: Vec<f32>, v: Vec<f32> },
    /// Elsewhere: candle's growing cache (`[row, head, position, dim]`).
    Device(KvCache),
}

impl BackboneCache {
    /// Positions already in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes its keys and values take.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|layer| match layer {
                LayerCache::Cpu { k, v } => (k.len() + v.len()) * std::mem::size_of::<f32>(),
                LayerCache::Device(cache) => [cache.k(), cache.v()]
                    .into_iter()
                    .filter_map(|t| t.ok().flatten())
                    .map(|t| t.elem_count() * t.dtype().size_in_bytes())
                    .sum(),
            })
            .sum()
    }

    /// The attention probes, filled by every forward.
    pub fn probes(&self) -> &[AttentionProbe] {
        &self.probes
    }

    /// Whether its blocks keep their keys and values on the CPU.
    fn is_cpu(&self) -> bool {
        self.layers
            .iter()
            .all(|l| matches!(l, LayerCache::Cpu { .. }))
    }
}

/// The backbone.
#[derive(Debug, Clone)]
pub struct Backbone {
    config: BackboneConfig,
    blocks: Vec<Block>,
    norm: Norm,
    /// Rotary frequencies, one per pair of a head's dimensions (Llama;
    /// empty for GPT-2).
    inv_freq: Vec<f32>,
    /// Learned positions (GPT-2's `wpe`), `[positions, hidden]`.
    positions: Option<Tensor>,
    device: Device,
}

/// Positions the cache grows by.
const CACHE_CHUNK: usize = 512;

impl Backbone {
    /// Loads the backbone's tensors from `vb` (Hugging Face's names under
    /// the model's prefix; see [`Architecture`]).
    pub fn load(config: BackboneConfig, precision: Precision, vb: VarBuilder) -> Result<Self> {
        match config.architecture {
            Architecture::Llama { .. } => Self::load_llama(config, precision, vb),
            Architecture::Gpt2 { positions } => Self::load_gpt2(config, positions, precision, vb),
        }
    }

    fn load_llama(config: BackboneConfig, precision: Precision, vb: VarBuilder) -> Result<Self> {
        let (h, a) = (config.hidden, config.heads * config.head_dim);
        let eps = config.norm_eps;
        let blocks = (0..config.layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                let attn = vb.pp("self_attn");
                let mlp = vb.pp("mlp");
                // The fused products are made from f32 parts and stored in
                // `precision` once, when fused.
                let part = |n: &str, vb: &VarBuilder, i: usize, o: usize| {
                    Linear::load(i, o, false, Precision::F32, vb.pp(n))
                };
                let proj = |n: &str, vb: &VarBuilder, i: usize, o: usize| {
                    Linear::load(i, o, false, precision, vb.pp(n))
                };
                Ok(Block {
                    input_norm: Norm::rms(h, eps, vb.pp("input_layernorm"))?,
                    qkv: Linear::concat(
                        &[
                            part("q_proj", &attn, h, a)?,
                            part("k_proj", &attn, h, a)?,
                            part("v_proj", &attn, h, a)?,
                        ],
                        precision,
                    )?,
                    o_proj: proj("o_proj", &attn, a, h)?,
                    post_norm: Norm::rms(h, eps, vb.pp("post_attention_layernorm"))?,
                    mlp: Mlp::SwiGlu {
                        gate_up: Linear::concat(
                            &[
                                part("gate_proj", &mlp, h, config.intermediate)?,
                                part("up_proj", &mlp, h, config.intermediate)?,
                            ],
                            precision,
                        )?,
                        down: proj("down_proj", &mlp, config.intermediate, h)?,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let norm = Norm::rms(h, eps, vb.pp("norm"))?;
        let inv_freq = rope_frequencies(&config);
        Ok(Self {
            config,
            blocks,
            norm,
            inv_freq,
            positions: None,
            device: vb.device().clone(),
        })
    }

    fn load_gpt2(
        config: BackboneConfig,
        positions: usize,
        precision: Precision,
        vb: VarBuilder,
    ) -> Result<Self> {
        let (h, a) = (config.hidden, config.heads * config.head_dim);
        let eps = config.norm_eps;
        // GPT-2's Conv1D keeps its weight as [in, out].
        let conv1d = |vb: VarBuilder, i: usize, o: usize| -> Result<Linear> {
            let weight = vb.get((i, o), "weight")?.t()?.contiguous()?;
            Linear::new(weight, Some(vb.get(o, "bias")?), precision)
        };
        let blocks = (0..config.layers)
            .map(|i| {
                let vb = vb.pp(format!("h.{i}"));
                Ok(Block {
                    input_norm: Norm::layer(h, eps, vb.pp("ln_1"))?,
                    qkv: conv1d(vb.pp("attn.c_attn"), h, 3 * a)?,
                    o_proj: conv1d(vb.pp("attn.c_proj"), a, h)?,
                    post_norm: Norm::layer(h, eps, vb.pp("ln_2"))?,
                    mlp: Mlp::Gelu {
                        fc: conv1d(vb.pp("mlp.c_fc"), h, config.intermediate)?,
                        proj: conv1d(vb.pp("mlp.c_proj"), config.intermediate, h)?,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            norm: Norm::layer(h, eps, vb.pp("ln_f"))?,
            positions: Some(vb.get((positions, h), "wpe.weight")?),
            inv_freq: Vec::new(),
            device: vb.device().clone(),
            blocks,
            config,
        })
    }

    /// `x` (`[b, t, hidden]` at positions `past..past + t`) with the learned
    /// positions added, where the backbone has them.
    fn add_positions(&self, x: &Tensor, past: usize) -> Result<Tensor> {
        let Some(table) = &self.positions else {
            return Ok(x.clone());
        };
        let t = x.dim(1)?;
        if past + t > table.dim(0)? {
            candle_core::bail!(
                "position {} is past the backbone's {} learned positions",
                past + t,
                table.dim(0)?
            );
        }
        x.broadcast_add(&table.narrow(0, past, t)?.to_dtype(x.dtype())?)
    }

    /// The sizes it was loaded with.
    pub fn config(&self) -> &BackboneConfig {
        &self.config
    }

    /// An empty cache for a new sequence batch.
    pub fn new_cache(&self) -> BackboneCache {
        let cpu = applies_on(&self.device, DType::F32);
        BackboneCache {
            layers: (0..self.config.layers)
                .map(|_| match cpu {
                    true => LayerCache::Cpu {
                        k: Vec::new(),
                        v: Vec::new(),
                    },
                    false => LayerCache::Device(KvCache::new(2, CACHE_CHUNK)),
                })
                .collect(),
            len: 0,
            probes: Vec::new(),
        }
    }

    /// An empty cache that records the attention weights of `probes`
    /// (`(layer, head)` pairs) at every forward.
    pub fn new_probed_cache(&self, probes: &[(usize, usize)]) -> Result<BackboneCache> {
        let mut cache = self.new_cache();
        cache.probes = self.probes(probes)?;
        Ok(cache)
    }

    /// A copy of `prefix` (one row: a shared prompt run once) for a
    /// sequence batch of `rows` identical rows, recording `probes` from its
    /// next forward on. Every copy owns its keys and values, so the prefix
    /// stays as it was.
    pub fn expand_cache(
        &self,
        prefix: &BackboneCache,
        rows: usize,
        probes: &[(usize, usize)],
    ) -> Result<BackboneCache> {
        let a = self.config.heads * self.config.head_dim;
        let n = prefix.len;
        let layers = prefix
            .layers
            .iter()
            .map(|layer| match layer {
                LayerCache::Cpu { k, v } => {
                    if k.len() != n * a || v.len() != n * a {
                        candle_core::bail!("a prefix cache must hold one row");
                    }
                    // Position-major: each position's row, `rows` times.
                    let repeat = |c: &[f32]| -> Vec<f32> {
                        let mut out = Vec::with_capacity(c.len() * rows);
                        for position in c.chunks_exact(a) {
                            for _ in 0..rows {
                                out.extend_from_slice(position);
                            }
                        }
                        out
                    };
                    Ok(LayerCache::Cpu {
                        k: repeat(k),
                        v: repeat(v),
                    })
                }
                LayerCache::Device(cache) => device_copy(cache, |t| {
                    if t.dim(0)? != 1 {
                        candle_core::bail!("a prefix cache must hold one row");
                    }
                    t.repeat((rows, 1, 1, 1))
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(BackboneCache {
            layers,
            len: n,
            probes: self.probes(probes)?,
        })
    }

    /// A one-row cache of the first `positions` positions of `cache`'s row
    /// 0 (a shared prompt's part, copied out of a whole prompt's run), for
    /// [`Backbone::expand_cache`].
    pub fn cache_prefix(&self, cache: &BackboneCache, positions: usize) -> Result<BackboneCache> {
        let a = self.config.heads * self.config.head_dim;
        if positions > cache.len {
            candle_core::bail!(
                "a prefix of {positions} positions from a cache of {}",
                cache.len
            );
        }
        let layers = cache
            .layers
            .iter()
            .map(|layer| match layer {
                LayerCache::Cpu { k, v } => {
                    let rows = k.len() / (cache.len * a).max(1);
                    // Position-major: row 0 of each of the first positions.
                    let first = |c: &[f32]| -> Vec<f32> {
                        c.chunks_exact(rows * a)
                            .take(positions)
                            .flat_map(|p| p[..a].iter().copied())
                            .collect()
                    };
                    Ok(LayerCache::Cpu {
                        k: first(k),
                        v: first(v),
                    })
                }
                LayerCache::Device(kv) => device_copy(kv, |t| {
                    t.narrow(0, 0, 1)?.narrow(2, 0, positions)?.contiguous()
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(BackboneCache {
            layers,
            len: positions,
            probes: Vec::new(),
        })
    }

    /// Empty probes on `probes` (`(layer, head)` pairs), checked against
    /// the backbone's sizes.
    fn probes(&self, probes: &[(usize, usize)]) -> Result<Vec<AttentionProbe>> {
        if let Some(&(l, h)) = probes
            .iter()
            .find(|&&(l, h)| l >= self.config.layers || h >= self.config.heads)
        {
            candle_core::bail!(
                "attention probe on layer {l} head {h}: the backbone has {} layers of {} heads",
                self.config.layers,
                self.config.heads
            );
        }
        Ok(probes
            .iter()
            .map(|&(l, h)| AttentionProbe::new(l, h))
            .collect())
    }

    /// Runs `x` (`[batch, time, hidden]` embeddings at the positions after
    /// the cache's) through every block, appending to `cache`; returns the
    /// final-normed hidden states. On error the cache may be partly
    /// appended: the sequence must not continue.
    pub fn forward(&self, x: &Tensor, cache: &mut BackboneCache) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        if t == 1 && applies_to(x) && cache.is_cpu() {
            // One position: the decode step, whose kernel reads the cache in place.
            return self.forward_step(x, &mut [cache], &[b]);
        }
        let past = cache.len;
        let rotary = match self.inv_freq.is_empty() {
            true => None,
            false => Some(self.rotary(past, t)?),
        };
        let mask = match t {
            1 => None,
            _ => Some(causal_mask(past, t, &self.device)?),
        };
        let mut x = self.add_positions(x, past)?;
        let BackboneCache { layers, probes, .. } = cache;
        for (l, (block, kv)) in self.blocks.iter().zip(layers.iter_mut()).enumerate() {
            let probes = probes.iter_mut().filter(|p| p.layer == l);
            let rotary = rotary.as_ref().map(|(c, s)| (c, s));
            x = self.block(block, &x, kv, rotary, mask.as_ref(), probes)?;
        }
        cache.len += t;
        self.norm.forward(&x)
    }

    /// One decode step for several sequences at once: `x` is `[n, 1,
    /// hidden]`, the rows of sequence `s` (`rows[s]` of them: 2 with
    /// guidance) next to each other, each sequence at its own position with
    /// its own cache. Every weight is read once for all of them. On the CPU
    /// the projections run on all rows together and attention per sequence
    /// against its cache in place; elsewhere each sequence runs alone. On
    /// error every cache is as it was.
    pub fn forward_step(
        &self,
        x: &Tensor,
        caches: &mut [&mut BackboneCache],
        rows: &[usize],
    ) -> Result<Tensor> {
        let (n, t, hidden) = x.dims3()?;
        if t != 1
            || hidden != self.config.hidden
            || rows.len() != caches.len()
            || rows.iter().sum::<usize>() != n
        {
            candle_core::bail!(
                "decode step: input {:?} does not fit {} sequences of {rows:?} rows",
                x.dims(),
                caches.len()
            );
        }
        if !(applies_to(x) && caches.iter().all(|c| c.is_cpu())) {
            let mut outs = Vec::with_capacity(caches.len());
            let mut row0 = 0;
            for (cache, &r) in caches.iter_mut().zip(rows) {
                outs.push(self.forward(&x.narrow(0, row0, r)?, cache)?);
                row0 += r;
            }
            return Tensor::cat(&outs, 0);
        }
        // Learned positions: each sequence's rows at its own position.
        let x = match &self.positions {
            None => x.clone(),
            Some(_) => {
                let mut parts = Vec::with_capacity(caches.len());
                let mut row0 = 0;
                for (cache, &r) in caches.iter().zip(rows) {
                    parts.push(self.add_positions(&x.narrow(0, row0, r)?, cache.len)?);
                    row0 += r;
                }
                Tensor::cat(&parts, 0)?
            }
        };
        // cos and sin of each row's position.
        let mut cos = Vec::with_capacity(n * self.inv_freq.len());
        let mut sin = Vec::with_capacity(n * self.inv_freq.len());
        for (cache, &r) in caches.iter().zip(rows) {
            for _ in 0..r {
                for &f in &self.inv_freq {
                    let angle = cache.len as f32 * f;
                    cos.push(angle.cos());
                    sin.push(angle.sin());
                }
            }
        }
        let before: Vec<usize> = caches.iter().map(|c| c.len).collect();
        let run = |caches: &mut [&mut BackboneCache]| -> Result<Tensor> {
            let mut x = x.clone();
            for (l, block) in self.blocks.iter().enumerate() {
                x = self.block_step(block, &x, caches, l, rows, (&cos, &sin))?;
            }
            self.norm.forward(&x)
        };
        match run(caches) {
            Ok(h) => {
                caches.iter_mut().for_each(|c| c.len += 1);
                Ok(h)
            }
            Err(e) => {
                let a = self.config.heads * self.config.head_dim;
                for ((cache, &len), &r) in caches.iter_mut().zip(&before).zip(rows) {
                    for layer in cache.layers.iter_mut() {
                        if let LayerCache::Cpu { k, v } = layer {
                            k.truncate(len * r * a);
                            v.truncate(len * r * a);
                        }
                    }
                }
                Err(e)
            }
        }
    }

    /// One block of [`Backbone::forward_step`] on the CPU.
    fn block_step(
        &self,
        block: &Block,
        x: &Tensor,
        caches: &mut [&mut BackboneCache],
        layer: usize,
        rows: &[usize],
        (cos, sin): (&[f32], &[f32]),
    ) -> Result<Tensor> {
        let (n, _, _) = x.dims3()?;
        let (heads, dh) = (self.config.heads, self.config.head_dim);
        let (a, half) = (heads * dh, dh / 2);
        let mut qkv: Vec<f32> = block
            .qkv
            .forward(&block.input_norm.forward(x)?)?
            .flatten_all()?
            .to_vec1()?;
        // Rotate q and k of every row at its own position (rotate-half).
        let rotary = !self.inv_freq.is_empty();
        for r in (0..n).filter(|_| rotary) {
            let (c, s) = (
                &cos[r * half..(r + 1) * half],
                &sin[r * half..(r + 1) * half],
            );
            for part in 0..2 {
                for head in 0..heads {
                    let at = r * 3 * a + part * a + head * dh;
                    let x = &mut qkv[at..at + dh];
                    for i in 0..half {
                        let (x1, x2) = (x[i], x[i + half]);
                        x[i] = x1 * c[i] - x2 * s[i];
                        x[i + half] = x2 * c[i] + x1 * s[i];
                    }
                }
            }
        }
        let scale = 1.0 / (dh as f32).sqrt();
        let mut attended = vec![0f32; n * a];
        let mut row0 = 0;
        for (cache, &r) in caches.iter_mut().zip(rows) {
            let BackboneCache {
                layers,
                probes,
                len,
            } = &mut **cache;
            let LayerCache::Cpu { k, v } = &mut layers[layer] else {
                candle_core::bail!("decode step: a device cache in a CPU step");
            };
            let mut q = Vec::with_capacity(r * a);
            for i in row0..row0 + r {
                q.extend_from_slice(&qkv[i * 3 * a..i * 3 * a + a]);
                k.extend_from_slice(&qkv[i * 3 * a + a..i * 3 * a + 2 * a]);
                v.extend_from_slice(&qkv[i * 3 * a + 2 * a..(i + 1) * 3 * a]);
            }
            for probe in probes.iter_mut().filter(|p| p.layer == layer) {
                let at = probe.head * dh;
                probe.weights = step_weights(&q[at..at + dh], k, r * a, at, scale);
                probe.queries = 1;
                probe.first_query = *len;
            }
            let out = decode_attention(&q, k, v, [r, heads, dh], scale);
            attended[row0 * a..(row0 + r) * a].copy_from_slice(&out);
            row0 += r;
        }
        let attended = Tensor::from_vec(attended, (n, 1, a), &self.device)?;
        let x = (x + block.o_proj.forward(&attended)?)?;
        self.mlp(block, &x)
    }

    /// `x + mlp(norm(x))`.
    fn mlp(&self, block: &Block, x: &Tensor) -> Result<Tensor> {
        let normed = block.post_norm.forward(x)?;
        let out = match &block.mlp {
            Mlp::SwiGlu { gate_up, down } => {
                let gated = swiglu(&gate_up.forward(&normed)?, self.config.intermediate)?;
                down.forward(&gated)?
            }
            Mlp::Gelu { fc, proj } => proj.forward(&gelu_tanh(&fc.forward(&normed)?)?)?,
        };
        x + out
    }

    fn block<'p>(
        &self,
        block: &Block,
        x: &Tensor,
        kv: &mut LayerCache,
        rotary: Option<(&Tensor, &Tensor)>,
        mask: Option<&Tensor>,
        probes: impl Iterator<Item = &'p mut AttentionProbe>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (heads, dh) = (self.config.heads, self.config.head_dim);
        let a = heads * dh;
        let qkv = block.qkv.forward(&block.input_norm.forward(x)?)?;
        let split = |i: usize| -> Result<Tensor> {
            qkv.narrow(D::Minus1, i * a, a)?
                .reshape((b, t, heads, dh))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k) = match rotary {
            None => (split(0)?, split(1)?),
            Some((cos, sin)) => (
                candle_nn::rotary_emb::rope(&split(0)?, cos, sin)?,
                candle_nn::rotary_emb::rope(&split(1)?, cos, sin)?,
            ),
        };
        let v = split(2)?;
        let scale = 1.0 / (dh as f64).sqrt();
        let mut probes = probes.peekable();
        let attended = match kv {
            LayerCache::Device(cache) => {
                let past = cache.current_seq_len();
                let (k, v) = cache.append(&k, &v)?;
                for probe in probes.by_ref() {
                    record_probe(probe, &q, &k, scale, mask, past)?;
                }
                attend(&q, &k, &v.contiguous()?, scale, mask)?
            }
            LayerCache::Cpu { k: keys, v: values } => {
                let past = keys.len() / (b * a);
                // [row, head, t, dim] to position-major rows of the cache.
                let position_major = |t: &Tensor| -> Result<Vec<f32>> {
                    t.permute((2, 0, 1, 3))?.flatten_all()?.to_vec1::<f32>()
                };
                keys.extend(position_major(&k)?);
                values.extend(position_major(&v)?);
                if past == 0 {
                    for probe in probes.by_ref() {
                        record_probe(probe, &q, &k, scale, mask, past)?;
                    }
                    attend(&q, &k, &v, scale, mask)?
                } else {
                    let all = |c: &[f32]| -> Result<Tensor> {
                        Tensor::from_slice(c, (past + t, b, heads, dh), &self.device)?
                            .permute((1, 2, 0, 3))?
                            .contiguous()
                    };
                    let k = all(keys)?;
                    for probe in probes.by_ref() {
                        record_probe(probe, &q, &k, scale, mask, past)?;
                    }
                    attend(&q, &k, &all(values)?, scale, mask)?
                }
            }
        };
        let x = (x + block.o_proj.forward(&attended)?)?;
        self.mlp(block, &x)
    }

    /// cos and sin (`[t, head_dim / 2]`) of positions `past..past + t`, as
    /// Hugging Face computes them: the f32 angle `position · inv_freq`.
    fn rotary(&self, past: usize, t: usize) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(t * half);
        let mut sin = Vec::with_capacity(t * half);
        for p in past..past + t {
            for &f in &self.inv_freq {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        Ok((
            Tensor::from_vec(cos, (t, half), &self.device)?,
            Tensor::from_vec(sin, (t, half), &self.device)?,
        ))
    }
}

/// A fresh device cache holding `cache`'s keys and values through `part`
/// (rows repeated, positions cut). Fresh, not cloned: candle's cache writes
/// into its buffer in place, which a clone would share.
fn device_copy(cache: &KvCache, part: impl Fn(&Tensor) -> Result<Tensor>) -> Result<LayerCache> {
    let mut fresh = KvCache::new(2, CACHE_CHUNK);
    if let (Some(k), Some(v)) = (cache.k()?, cache.v()?) {
        fresh.append(&part(&k)?, &part(&v)?)?;
    }
    Ok(LayerCache::Device(fresh))
}

/// `softmax(q·kᵀ·scale + mask)·v` with candle's ops, for `q` `[b, h, t, d]`
/// and `k`, `v` `[b, h, s, d]`; returns `[b, t, h · d]`.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, mask: Option<&Tensor>) -> Result<Tensor> {
    let (b, h, t, d) = q.dims4()?;
    let mut scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?;
    if let Some(mask) = mask {
        scores = scores.broadcast_add(mask)?;
    }
    let weights = candle_nn::ops::softmax_last_dim(&scores)?;
    weights.matmul(v)?.transpose(1, 2)?.reshape((b, t, h * d))
}

/// Row 0's weights for `probe.head` (`q` `[b, h, t, d]` at positions
/// `past..`, `k` `[b, h, s, d]`), the softmax of the masked scores as eager
/// attention computes them.
fn record_probe(
    probe: &mut AttentionProbe,
    q: &Tensor,
    k: &Tensor,
    scale: f64,
    mask: Option<&Tensor>,
    past: usize,
) -> Result<()> {
    let q = q.get(0)?.get(probe.head)?;
    let k = k.get(0)?.get(probe.head)?;
    let mut scores = (q.matmul(&k.t()?)? * scale)?;
    if let Some(mask) = mask {
        scores = scores.broadcast_add(mask)?;
    }
    let weights = candle_nn::ops::softmax_last_dim(&scores)?;
    probe.queries = weights.dim(0)?;
    probe.first_query = past;
    probe.weights = weights.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
    Ok(())
}

/// One query's softmax weights over a position-major key cache, the head
/// at `offset` within each position's `stride` values.
fn step_weights(q: &[f32], keys: &[f32], stride: usize, offset: usize, scale: f32) -> Vec<f32> {
    let len = keys.len() / stride;
    let mut w: Vec<f32> = (0..len)
        .map(|s| {
            let k = &keys[s * stride + offset..][..q.len()];
            k.iter().zip(q).map(|(a, b)| a * b).sum::<f32>() * scale
        })
        .collect();
    let max = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for x in w.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    w.iter_mut().for_each(|x| *x /= sum);
    w
}

/// One query position per row and head against a position-major cache
/// (`[position][row][head][dim]`): `[row][head][dim]` out, every (row, head)
/// a task, keys and values read in place.
fn decode_attention(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    [rows, heads, d]: [usize; 3],
    scale: f32,
) -> Vec<f32> {
    let stride = rows * heads * d;
    let len = keys.len() / stride;
    let mut out = vec![0f32; stride];
    out.par_chunks_mut(d).enumerate().for_each(|(rh, o)| {
        with_wide_vectors(
            #[inline(always)]
            || {
                let qv = &q[rh * d..(rh + 1) * d];
                let mut scores: Vec<f32> = (0..len)
                    .map(|s| {
                        let kv = &keys[s * stride + rh * d..][..d];
                        kv.iter().zip(qv).map(|(a, b)| a * b).sum::<f32>() * scale
                    })
                    .collect();
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                for (s, &p) in scores.iter().enumerate() {
                    let vv = &values[s * stride + rh * d..][..d];
                    for (o, &x) in o.iter_mut().zip(vv) {
                        *o += p * x;
                    }
                }
                o.iter_mut().for_each(|x| *x /= sum);
            },
        )
    });
    out
}

/// `[t, past + t]`: 0 where query `i` (at `past + i`) may see key `j`, −∞ after it.
fn causal_mask(past: usize, t: usize, device: &Device) -> Result<Tensor> {
    let s = past + t;
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..s).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (t, s), device)
}

/// The rotary inverse frequencies `θ^(−2i/d)`, with llama3 scaling where set
/// (Hugging Face's `_compute_llama3_parameters`).
fn rope_frequencies(config: &BackboneConfig) -> Vec<f32> {
    let Architecture::Llama {
        rope_theta,
        rope_scaling,
    } = config.architecture
    else {
        return Vec::new();
    };
    let d = config.head_dim;
    (0..d / 2)
        .map(|i| {
            let f = 1.0 / rope_theta.powf((2 * i) as f64 / d as f64);
            let Some(s) = rope_scaling else {
                return f as f32;
            };
            let wavelen = 2.0 * std::f64::consts::PI / f;
            let low_wavelen = s.original_context / s.low_freq_factor;
            let high_wavelen = s.original_context / s.high_freq_factor;
            let scaled = if wavelen > low_wavelen {
                f / s.factor
            } else if wavelen < high_wavelen {
                f
            } else {
                let smooth = (s.original_context / wavelen - s.low_freq_factor)
                    / (s.high_freq_factor - s.low_freq_factor);
                (1.0 - smooth) * f / s.factor + smooth * f
            };
            scaled as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_scaling_keeps_high_frequencies_and_divides_low_ones() {
        let config = BackboneConfig {
            hidden: 1024,
            layers: 1,
            heads: 16,
            head_dim: 64,
            intermediate: 4096,
            norm_eps: 1e-5,
            architecture: Architecture::Llama {
                rope_theta: 500_000.0,
                rope_scaling: Some(LLAMA3_SCALING),
            },
        };
        let f = rope_frequencies(&config);
        assert_eq!(f.len(), 32);
        // The first pair rotates once per 2π positions: kept.
        assert_eq!(f[0], 1.0);
        // The last: θ^(−62/64), wavelength ~2.1 M positions, divided by 8.
        let plain = 1.0 / 500_000f64.powf(62.0 / 64.0);
        assert!(((f[31] as f64) - plain / 8.0).abs() < 1e-12, "{}", f[31]);
        // Every frequency lies between its plain value / 8 and its plain value.
        for (i, &v) in f.iter().enumerate() {
            let plain = 1.0 / 500_000f64.powf((2 * i) as f64 / 64.0);
            assert!(v as f64 <= plain * (1.0 + 1e-6) && v as f64 >= plain / 8.0 * (1.0 - 1e-6));
        }
    }

    #[test]
    fn the_causal_mask_hides_later_keys_only() -> Result<()> {
        let m = causal_mask(2, 2, &Device::Cpu)?.to_vec2::<f32>()?;
        let inf = f32::NEG_INFINITY;
        assert_eq!(m, vec![vec![0.0, 0.0, 0.0, inf], vec![0.0, 0.0, 0.0, 0.0]]);
        Ok(())
    }
}
