//! A bounded load test of `vivace serve` on loopback.
//!
//! Starts the server twice, in turn: with the scheduler as planned (workers
//! per sentence stream, batching where it pays) and serving one request at a
//! time (`--workers 1 --batch-size 1`: one model call at a time on every
//! core). Against each, N clients post speech requests back to back for a
//! fixed time; the report gives requests per second, latency percentiles,
//! time to first audio, audio seconds produced per second and the batch
//! sizes the scheduler formed (from its Prometheus histogram). A single
//! client on the scheduler gives the single-request latency.
//!
//! `cargo build --release -p vivace -p vivace-load &&
//!  target/release/vivace-load --clients 2,4 --seconds 30 --json out.json`

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Serialize;

/// Texts of the size a translation service speaks: one to three sentences.
const TEXTS: [&str; 6] = [
    "Your table is ready.",
    "The train to Berlin leaves from platform seven at half past ten.",
    "Please keep your ticket until the end of the journey. Inspectors may ask to see it.",
    "We are sorry for the delay. The next bus will arrive in about five minutes.",
    "Thank you for calling. All of our agents are busy. Please stay on the line.",
    "The museum opens at nine in the morning and closes at six in the evening.",
];

/// Load test of `vivace serve`: scheduler against one request at a time.
#[derive(Debug, Parser)]
struct Args {
    /// The `vivace` binary to serve with.
    #[arg(long, default_value = "target/release/vivace")]
    vivace: PathBuf,
    /// Concurrent clients, one run each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "2,4")]
    clients: Vec<usize>,
    /// Seconds of load per run.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Extra arguments for `vivace serve` (e.g. `--voice NAME`), both modes.
    #[arg(long, allow_hyphen_values = true)]
    serve_arg: Vec<String>,
    /// Write the report here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// How the server schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    /// The plan's workers and batch size.
    Scheduler,
    /// One model call at a time, on every core.
    OneAtATime,
}

impl Mode {
    fn serve_args(self) -> &'static [&'static str] {
        match self {
            Mode::Scheduler => &[],
            Mode::OneAtATime => &["--workers", "1", "--batch-size", "1"],
        }
    }
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
struct RunReport {
    mode: Mode,
    clients: usize,
    seconds: f64,
    requests: usize,
    errors: usize,
    requests_per_second: f64,
    audio_seconds_per_second: f64,
    latency_p50_s: f64,
    latency_p95_s: f64,
    latency_p99_s: f64,
    first_audio_p50_s: f64,
    /// Model calls the scheduler made, by batch size (histogram bucket upper bound).
    batch_sizes: Vec<(String, u64)>,
    mean_batch: f64,
}

/// One request's outcome.
struct Sample {
    latency: Duration,
    first_audio: Duration,
    audio_seconds: f64,
}

/// A `vivace serve` child, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(vivace: &PathBuf, mode: Mode, extra: &[String]) -> Result<Server> {
        let mut child = Command::new(vivace)
            .args(["serve", "--port", "0", "--no-embeddings"])
            .args(mode.serve_args())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", vivace.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("vivace: listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(300))
            .context("the server did not start")?;
        let server = Server { child, base };
        let start = Instant::now();
        while !agent()
            .get(&format!("{}/ready", server.base))
            .call()
            .is_ok_and(|r| r.status() == 200)
        {
            if start.elapsed() > Duration::from_secs(300) {
                bail!("the server did not get ready");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// The batch-size histogram's cumulative bucket counts.
    fn batch_buckets(&self) -> Result<Vec<(String, u64)>> {
        let text = agent()
            .get(&format!("{}/metrics", self.base))
            .call()?
            .body_mut()
            .read_to_string()?;
        Ok(text
            .lines()
            .filter_map(|l| l.strip_prefix("vivace_batch_size_bucket{le=\""))
            .filter_map(|l| {
                let (le, rest) = l.split_once("\"} ")?;
                Some((le.to_string(), rest.trim().parse().ok()?))
            })
            .collect())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// One speech request, read to the end.
fn speak(url: &str, text: &str) -> Result<Sample> {
    let start = Instant::now();
    let body = serde_json::json!({ "model": "tts-1", "input": text, "response_format": "pcm" });
    let mut response = agent()
        .post(url)
        .content_type("application/json")
        .send(body.to_string())?;
    if response.status() != 200 {
        bail!("status {}", response.status());
    }
    let rate: f64 = response
        .headers()
        .get("x-sample-rate")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .context("no x-sample-rate")?;
    let mut reader = response.body_mut().as_reader();
    let mut first = [0u8; 2];
    reader.read_exact(&mut first)?;
    let first_audio = start.elapsed();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest)?;
    Ok(Sample {
        latency: start.elapsed(),
        first_audio,
        audio_seconds: (rest.len() + 2) as f64 / 2.0 / rate,
    })
}

/// `clients` threads posting back to back for `seconds`.
fn run(server: &Server, mode: Mode, clients: usize, seconds: f64) -> Result<RunReport> {
    let url = format!("{}/v1/audio/speech", server.base);
    // One request per client first: connections and caches warm.
    for text in TEXTS.iter().take(clients.max(1)) {
        speak(&url, text)?;
    }
    let before = server.batch_buckets()?;
    let start = Instant::now();
    let stop = start + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                let mut errors = 0;
                let mut i = c;
                while Instant::now() < stop {
                    match speak(&url, TEXTS[i % TEXTS.len()]) {
                        Ok(s) => samples.push(s),
                        Err(e) => {
                            eprintln!("vivace-load: request failed: {e}");
                            errors += 1;
                        }
                    }
                    i += 1;
                }
                (samples, errors)
            })
        })
        .collect();
    let mut samples = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (s, e) = t.join().map_err(|_| anyhow::anyhow!("a client panicked"))?;
        samples.extend(s);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = server.batch_buckets()?;
    let buckets: Vec<(String, u64)> = after
        .iter()
        .map(|(le, n)| {
            let was = before.iter().find(|(l, _)| l == le).map_or(0, |(_, n)| *n);
            (le.clone(), n - was)
        })
        .collect();
    // Cumulative buckets to counts per bucket, and the mean (bucket bounds
    // are powers of two, so each bucket holds one batch size on the CPU).
    let mut per_bucket = Vec::new();
    let mut previous = 0;
    let (mut calls, mut weighted) = (0u64, 0f64);
    for (le, cumulative) in &buckets {
        let count = cumulative - previous;
        previous = *cumulative;
        if count > 0 {
            if let Ok(size) = le.parse::<f64>() {
                weighted += size * count as f64;
            }
            calls += count;
            per_bucket.push((le.clone(), count));
        }
    }
    let mut latencies: Vec<f64> = samples.iter().map(|s| s.latency.as_secs_f64()).collect();
    let mut firsts: Vec<f64> = samples
        .iter()
        .map(|s| s.first_audio.as_secs_f64())
        .collect();
    latencies.sort_by(f64::total_cmp);
    firsts.sort_by(f64::total_cmp);
    let audio: f64 = samples.iter().map(|s| s.audio_seconds).sum();
    Ok(RunReport {
        mode,
        clients,
        seconds: elapsed,
        requests: samples.len(),
        errors,
        requests_per_second: samples.len() as f64 / elapsed,
        audio_seconds_per_second: audio / elapsed,
        latency_p50_s: percentile(&latencies, 0.50),
        latency_p95_s: percentile(&latencies, 0.95),
        latency_p99_s: percentile(&latencies, 0.99),
        first_audio_p50_s: percentile(&firsts, 0.50),
        batch_sizes: per_bucket,
        mean_batch: if calls > 0 {
            weighted / calls as f64
        } else {
            0.0
        },
    })
}

/// Nearest-rank percentile of sorted values (0 when empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.vivace.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p vivace` or pass --vivace",
            args.vivace.display()
        );
    }
    if args.clients.contains(&0) || !args.seconds.is_finite() || args.seconds <= 0.0 {
        bail!("--clients must be at least 1 and --seconds positive");
    }
    let mut reports = Vec::new();
    for mode in [Mode::Scheduler, Mode::OneAtATime] {
        let server = Server::start(&args.vivace, mode, &args.serve_arg)?;
        if mode == Mode::Scheduler {
            eprintln!("vivace-load: single-request latency (1 client)");
            reports.push(run(&server, mode, 1, args.seconds)?);
        }
        for &clients in &args.clients {
            eprintln!(
                "vivace-load: {mode:?}, {clients} clients, {} s",
                args.seconds
            );
            reports.push(run(&server, mode, clients, args.seconds)?);
        }
    }
    println!(
        "{:<12} {:>7} {:>8} {:>6} {:>7} {:>9} {:>8} {:>8} {:>8} {:>9} {:>6}",
        "mode",
        "clients",
        "requests",
        "errors",
        "req/s",
        "audio s/s",
        "p50 s",
        "p95 s",
        "p99 s",
        "first p50",
        "batch"
    );
    for r in &reports {
        println!(
            "{:<12} {:>7} {:>8} {:>6} {:>7.2} {:>9.2} {:>8.3} {:>8.3} {:>8.3} {:>9.3} {:>6.2}",
            format!("{:?}", r.mode),
            r.clients,
            r.requests,
            r.errors,
            r.requests_per_second,
            r.audio_seconds_per_second,
            r.latency_p50_s,
            r.latency_p95_s,
            r.latency_p99_s,
            r.first_audio_p50_s,
            r.mean_batch
        );
    }
    let single = reports
        .iter()
        .find(|r| r.clients == 1 && r.mode == Mode::Scheduler)
        .map(|r| r.latency_p95_s);
    let mut comparisons = Vec::new();
    for &clients in &args.clients {
        let find = |mode| {
            reports
                .iter()
                .find(|r| r.mode == mode && r.clients == clients)
        };
        if let (Some(s), Some(o)) = (find(Mode::Scheduler), find(Mode::OneAtATime)) {
            let throughput = s.audio_seconds_per_second / o.audio_seconds_per_second;
            let p95_vs_single = single.map(|l| s.latency_p95_s / l);
            println!(
                "{clients} clients: scheduler {throughput:.2}x the audio throughput of one request at a time; p95 latency {:.3} s against {:.3} s one at a time{}",
                s.latency_p95_s,
                o.latency_p95_s,
                p95_vs_single.map_or(String::new(), |x| format!(", {x:.2}x the single-request p95"))
            );
            comparisons.push(serde_json::json!({
                "clients": clients,
                "throughput_ratio": throughput,
                "p95_ratio_to_one_at_a_time": s.latency_p95_s / o.latency_p95_s,
                "p95_ratio_to_single_request": p95_vs_single,
            }));
        }
    }
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "seconds_per_run": args.seconds,
            "runs": reports,
            "comparisons": comparisons,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
