//! Warm-up: run until latency settles, and report cold against warm.
//!
//! The first calls of a model pay for allocations, kernel selection (cuDNN,
//! Metal pipelines) and page faults. [`warmup`] runs a call until the last
//! few latencies agree within a tolerance, so "warm" is measured, not assumed.

use std::time::{Duration, Instant};

use serde::Serialize;

/// How long to keep warming.
#[derive(Debug, Clone, Copy)]
pub struct WarmupOptions {
    /// Runs that must agree.
    pub window: usize,
    /// Largest spread within the window, as a fraction of its median.
    pub tolerance: f64,
    /// Give up after this many runs (the report says it did not settle).
    pub max_runs: usize,
}

impl Default for WarmupOptions {
    fn default() -> Self {
        Self {
            window: 3,
            tolerance: 0.10,
            max_runs: 10,
        }
    }
}

/// What warming measured.
#[derive(Debug, Clone, Serialize)]
pub struct WarmupReport {
    /// The first call.
    #[serde(with = "secs")]
    pub cold: Duration,
    /// Median of the settled window.
    #[serde(with = "secs")]
    pub warm: Duration,
    /// Calls made.
    pub runs: usize,
    /// Whether the window settled within the tolerance before `max_runs`.
    pub settled: bool,
}

/// Calls `run` until its latency settles (see [`WarmupOptions`]).
pub fn warmup<E>(
    mut run: impl FnMut() -> Result<(), E>,
    options: WarmupOptions,
) -> Result<WarmupReport, E> {
    let window = options.window.max(1);
    let mut times = Vec::new();
    let mut settled = false;
    while times.len() < options.max_runs.max(window + 1) {
        let start = Instant::now();
        run()?;
        times.push(start.elapsed());
        if times.len() > window && spread(&times[times.len() - window..]) <= options.tolerance {
            settled = true;
            break;
        }
    }
    // At least window + 1 runs were made, so the window never holds the cold run.
    let tail = &times[times.len() - window..];
    Ok(WarmupReport {
        cold: times[0],
        warm: median(tail),
        runs: times.len(),
        settled,
    })
}

/// `(max - min) / median` of a window.
fn spread(window: &[Duration]) -> f64 {
    let min = window.iter().min().copied().unwrap_or_default();
    let max = window.iter().max().copied().unwrap_or_default();
    let mid = median(window).as_secs_f64();
    if mid == 0.0 {
        0.0
    } else {
        (max - min).as_secs_f64() / mid
    }
}

/// Median of durations (the lower middle for an even count).
pub fn median(values: &[Duration]) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    v.get(v.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

/// Serializes durations as seconds (f64) in reports.
pub(crate) mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settles_after_a_slow_first_call() {
        let mut calls = 0u32;
        // Generous margins: sleeps overshoot on a loaded machine.
        let options = WarmupOptions {
            tolerance: 0.5,
            ..WarmupOptions::default()
        };
        let report = warmup(
            || {
                calls += 1;
                let ms = if calls == 1 { 150 } else { 20 };
                std::thread::sleep(Duration::from_millis(ms));
                Ok::<(), ()>(())
            },
            options,
        )
        .expect("warmup");
        assert!(report.settled, "{report:?}");
        assert!(
            report.runs >= 4,
            "one cold run, then at least a window of three"
        );
        assert!(report.cold > report.warm * 3, "{report:?}");
    }

    #[test]
    fn errors_stop_warming() {
        let result = warmup(|| Err::<(), _>("boom"), WarmupOptions::default());
        assert_eq!(result.unwrap_err(), "boom");
    }

    #[test]
    fn median_of_even_and_odd() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        assert_eq!(median(&ms(&[5, 1, 3])), Duration::from_millis(3));
        assert_eq!(median(&ms(&[4, 1, 3, 2])), Duration::from_millis(2));
    }
}
