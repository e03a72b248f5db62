//! Batch sizes that are measured, not guessed.
//!
//! [`memory_budget`] bounds the batch by memory: free device memory (or
//! available RAM on the CPU) times a utilization factor, minus a reserve,
//! divided by the measured memory per item. [`find_batch`] then grows the
//! batch by doubling, measuring throughput at each size, and stops at the
//! knee: when doubling gains less than a threshold, or when the next size
//! fails with out-of-memory (which the anchors — Accelerate, Lightning, vLLM,
//! TGI — either halve blindly from a guess or hit again later). At run time,
//! [`run_with_backoff`] halves on out-of-memory and retries instead of failing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How much memory a batch may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryPolicy {
    /// Fraction of free memory to use (0..1).
    pub utilization: f64,
    /// Bytes always left free (other processes, fragmentation).
    pub reserve: u64,
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        Self {
            utilization: 0.8,
            reserve: 512 << 20,
        }
    }
}

/// The largest batch whose items fit in `free` bytes under `policy`, given
/// the measured bytes per item (at least 1).
pub fn memory_budget(free: u64, per_item: u64, policy: MemoryPolicy) -> usize {
    let usable = (free as f64 * policy.utilization.clamp(0.0, 1.0)) as u64;
    let usable = usable.saturating_sub(policy.reserve);
    (usable / per_item.max(1)).max(1) as usize
}

/// One measured batch size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Batch size.
    pub batch: usize,
    /// Items per second (audio seconds per second for speech).
    pub throughput: f64,
}

/// How a measurement attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeError<E> {
    /// The batch did not fit: try smaller.
    OutOfMemory,
    /// Any other failure: stop.
    Failed(E),
}

/// The chosen batch and the measurements behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchChoice {
    /// The batch to use.
    pub batch: usize,
    /// Every size measured, in order.
    pub probes: Vec<Probe>,
    /// Why the search stopped.
    pub reason: String,
}

/// Doubles the batch from 1 up to `max_batch`, measuring throughput with
/// `measure`, and picks the knee: the last size whose doubling gained at least
/// `min_gain` (0.1 = 10 %). Only sizes that actually ran are ever chosen.
pub fn find_batch<E>(
    max_batch: usize,
    min_gain: f64,
    mut measure: impl FnMut(usize) -> Result<f64, ProbeError<E>>,
) -> Result<BatchChoice, E> {
    let mut probes: Vec<Probe> = Vec::new();
    let mut batch = 1usize;
    let reason = loop {
        match measure(batch) {
            Ok(throughput) => probes.push(Probe { batch, throughput }),
            Err(ProbeError::OutOfMemory) if !probes.is_empty() => {
                break format!("batch {batch} ran out of memory");
            }
            Err(ProbeError::OutOfMemory) => {
                return Ok(BatchChoice {
                    batch: 1,
                    probes,
                    reason: "even batch 1 ran out of memory; using 1".into(),
                })
            }
            Err(ProbeError::Failed(e)) => return Err(e),
        }
        if let [.., previous, last] = probes.as_slice() {
            if last.throughput < previous.throughput * (1.0 + min_gain) {
                break format!(
                    "doubling {} → {} gained under {:.0} %",
                    previous.batch,
                    last.batch,
                    min_gain * 100.0
                );
            }
        }
        if batch * 2 > max_batch {
            break format!("memory budget allows at most {max_batch}");
        }
        batch *= 2;
    };
    // The knee: the best throughput, preferring the smaller batch on a near-tie.
    let best = probes
        .iter()
        .fold(None::<Probe>, |best, p| match best {
            Some(b) if p.throughput < b.throughput * (1.0 + min_gain) => Some(b),
            _ => Some(*p),
        })
        .map_or(1, |p| p.batch);
    Ok(BatchChoice {
        batch: best,
        probes,
        reason,
    })
}

/// Sorts a failed model call into "try a smaller batch" (its message says
/// the device ran out of memory: CUDA reports `CUDA_ERROR_OUT_OF_MEMORY`,
/// Metal "out of memory") and "give up". On the CPU an allocation failure
/// aborts the process instead, so batches there are bounded by the memory
/// budget up front.
pub fn classify_failure<E: std::fmt::Display>(e: E) -> ProbeError<E> {
    let text = e.to_string().to_ascii_lowercase();
    if text.contains("out of memory") || text.contains("out_of_memory") {
        ProbeError::OutOfMemory
    } else {
        ProbeError::Failed(e)
    }
}

/// Runs `work` at `batch`, halving on out-of-memory until it fits (down to 1).
/// Returns the result and the batch that worked.
pub fn run_with_backoff<T, E>(
    batch: usize,
    mut work: impl FnMut(usize) -> Result<T, ProbeError<E>>,
) -> Result<(T, usize), BackoffError<E>> {
    let mut batch = batch.max(1);
    loop {
        match work(batch) {
            Ok(value) => return Ok((value, batch)),
            Err(ProbeError::OutOfMemory) if batch > 1 => {
                tracing::warn!(batch, next = batch / 2, "out of memory; halving the batch");
                batch /= 2;
            }
            Err(ProbeError::OutOfMemory) => return Err(BackoffError::OutOfMemory),
            Err(ProbeError::Failed(e)) => return Err(BackoffError::Failed(e)),
        }
    }
}

/// Why [`run_with_backoff`] gave up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackoffError<E> {
    /// Even a batch of one does not fit.
    #[error("out of memory even at batch size 1")]
    OutOfMemory,
    /// The work failed for another reason.
    #[error("{0}")]
    Failed(E),
}

/// Batch choices remembered per model, device and input-length bucket, in a
/// JSON file, so the search runs once per machine.
#[derive(Debug, Default)]
pub struct BatchCache {
    path: Option<PathBuf>,
    entries: HashMap<String, BatchChoice>,
}

impl BatchCache {
    /// Loads the cache at `path` (an unreadable or corrupt file starts empty).
    pub fn open(path: &Path) -> Self {
        let entries = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Self {
            path: Some(path.to_path_buf()),
            entries,
        }
    }

    /// The key for a model, device and input length (bucketed to a power of two).
    pub fn key(model: &str, device: &str, input_len: usize) -> String {
        format!("{model}|{device}|{}", input_len.max(1).next_power_of_two())
    }

    /// A remembered choice.
    pub fn get(&self, key: &str) -> Option<&BatchChoice> {
        self.entries.get(key)
    }

    /// Remembers a choice and writes the file (best effort: a cache that
    /// cannot be written only costs a new search next time).
    pub fn put(&mut self, key: String, choice: BatchChoice) {
        self.entries.insert(key, choice);
        if let Some(path) = &self.path {
            let write = || -> std::io::Result<()> {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let text =
                    serde_json::to_string_pretty(&self.entries).map_err(std::io::Error::other)?;
                std::fs::write(path, text)
            };
            if let Err(e) = write() {
                tracing::warn!(path = %path.display(), "cannot save the batch-size cache: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_uses_a_fraction_minus_reserve() {
        let gib = 1u64 << 30;
        let policy = MemoryPolicy {
            utilization: 0.5,
            reserve: gib,
        };
        // 10 GiB free → 5 GiB usable → 4 GiB after reserve → 4 items of 1 GiB.
        assert_eq!(memory_budget(10 * gib, gib, policy), 4);
        assert_eq!(memory_budget(gib, 8 * gib, policy), 1, "never below 1");
    }

    #[test]
    fn stops_at_the_knee() {
        // Throughput doubles until 8, then flattens.
        let curve = |b: usize| -> Result<f64, ProbeError<()>> { Ok((b.min(8) as f64) * 10.0) };
        let choice = find_batch(64, 0.1, curve).expect("search");
        assert_eq!(choice.batch, 8);
        assert_eq!(choice.probes.last().map(|p| p.batch), Some(16));
    }

    #[test]
    fn out_of_memory_during_search_keeps_the_last_size_that_ran() {
        let curve = |b: usize| -> Result<f64, ProbeError<()>> {
            if b > 4 {
                Err(ProbeError::OutOfMemory)
            } else {
                Ok(b as f64)
            }
        };
        let choice = find_batch(64, 0.1, curve).expect("search");
        assert_eq!(choice.batch, 4);
        assert!(choice.reason.contains("out of memory"));
    }

    #[test]
    fn memory_budget_caps_the_search() {
        let choice = find_batch(5, 0.1, |b| Ok::<_, ProbeError<()>>(b as f64)).expect("search");
        assert_eq!(choice.batch, 4);
    }

    /// Injected failure: the first two attempts run out of memory.
    #[test]
    fn backoff_halves_until_it_fits() {
        let mut tried = Vec::new();
        let (value, batch) = run_with_backoff(16, |b| {
            tried.push(b);
            if b > 4 {
                Err(ProbeError::<()>::OutOfMemory)
            } else {
                Ok(b * 10)
            }
        })
        .expect("fits at 4");
        assert_eq!((value, batch), (40, 4));
        assert_eq!(tried, vec![16, 8, 4]);
        let never = run_with_backoff(2, |_| Err::<(), _>(ProbeError::<()>::OutOfMemory));
        assert_eq!(never.unwrap_err(), BackoffError::OutOfMemory);
    }

    #[test]
    fn cache_round_trips_through_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("batch.json");
        let key = BatchCache::key("joe", "cpu", 100);
        assert!(key.ends_with("|128"));
        let choice = BatchChoice {
            batch: 4,
            probes: vec![Probe {
                batch: 4,
                throughput: 2.0,
            }],
            reason: "test".into(),
        };
        BatchCache::open(&path).put(key.clone(), choice.clone());
        assert_eq!(BatchCache::open(&path).get(&key), Some(&choice));
    }
}
