//! The service's Prometheus metrics (`GET /metrics`, text format).
//!
//! Counters and histograms are updated where the work happens (the HTTP
//! layer, the scheduler); memory gauges are read when scraped.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use vivace_perf::DeviceKind;

/// Labels of the request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route (`/v1/audio/speech`), or `unmatched`.
    pub endpoint: String,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of the memory gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemoryLabels {
    /// `cpu`, `cuda:0`, `metal:0`.
    pub device: String,
    /// `total`, `free`, or `process_resident` (the CPU only).
    pub kind: String,
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by endpoint and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Sentences waiting for a worker.
    pub queue_depth: Gauge,
    /// Speech requests holding a place in the queue: accepted and not yet
    /// fully handed to their connection (or dropped).
    pub requests_in_flight: Gauge,
    /// Sentences per model call.
    pub batch_size: Histogram,
    /// Latency of speech requests that completed, from acceptance to the
    /// last chunk queued for the connection (timeouts, failures and clients
    /// that hung up are counted by status in `requests`, not here).
    pub request_seconds: Histogram,
    /// Time from acceptance to a speech request's first audio being ready to
    /// send (for `flac`, the whole file).
    pub first_audio_seconds: Histogram,
    /// Model time over audio time, per model call.
    pub real_time_factor: Histogram,
    /// Seconds of audio synthesized.
    pub audio_seconds: Counter<f64, AtomicU64>,
    /// Sentences dropped unsynthesized because their request went away
    /// (client disconnect or timeout).
    pub sentences_cancelled: Counter,
    /// Device memory, read at scrape time.
    memory: Family<MemoryLabels, Gauge>,
    devices: Vec<DeviceKind>,
}

impl Metrics {
    /// Registers every metric under the `vivace_` prefix; `devices` are the
    /// devices whose memory is reported.
    pub fn new(devices: Vec<DeviceKind>) -> Self {
        let mut registry = Registry::with_prefix("vivace");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by endpoint and status",
            requests.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Sentences waiting for a synthesis worker",
            queue_depth.clone(),
        );
        let requests_in_flight = Gauge::default();
        registry.register(
            "speech_requests_in_flight",
            "Speech requests holding a place in the queue",
            requests_in_flight.clone(),
        );
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 8));
        registry.register("batch_size", "Sentences per model call", batch_size.clone());
        let request_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "speech_request_duration_seconds",
            "Latency of completed speech requests, acceptance to last chunk queued",
            request_seconds.clone(),
        );
        let first_audio_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "speech_first_audio_seconds",
            "Time from acceptance to a speech request's first audio",
            first_audio_seconds.clone(),
        );
        let real_time_factor = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        registry.register(
            "real_time_factor",
            "Model time over audio time, per model call (below 1: faster than real time)",
            real_time_factor.clone(),
        );
        let audio_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "audio_seconds",
            "Seconds of audio synthesized",
            audio_seconds.clone(),
        );
        let sentences_cancelled = Counter::default();
        registry.register(
            "sentences_cancelled",
            "Queued sentences dropped because their request went away",
            sentences_cancelled.clone(),
        );
        let memory = Family::<MemoryLabels, Gauge>::default();
        registry.register(
            "memory_bytes",
            "Device memory (total, free) and the process's resident memory",
            memory.clone(),
        );
        Self {
            registry,
            requests,
            queue_depth,
            requests_in_flight,
            batch_size,
            request_seconds,
            first_audio_seconds,
            real_time_factor,
            audio_seconds,
            sentences_cancelled,
            memory,
            devices,
        }
    }

    /// The metrics in Prometheus' text format, memory read now.
    pub fn render(&self) -> String {
        for device in &self.devices {
            let name = device.to_string();
            if let Some(now) = vivace_perf::hardware::memory_now(*device) {
                for (kind, bytes) in [("total", now.total), ("free", now.free)] {
                    self.memory
                        .get_or_create(&MemoryLabels {
                            device: name.clone(),
                            kind: kind.into(),
                        })
                        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                }
            }
        }
        if let Some(rss) = crate::bench::proc_status_bytes("VmRSS:") {
            self.memory
                .get_or_create(&MemoryLabels {
                    device: DeviceKind::Cpu.to_string(),
                    kind: "process_resident".into(),
                })
                .set(i64::try_from(rss).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
