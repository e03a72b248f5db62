//! A bounded load test of `vivace serve` on loopback.
//!
//! Starts two servers: one with the scheduler as planned (workers per
//! sentence stream, batching where it pays) and one serving one request at a
//! time (`--workers 1 --batch-size 1`: one model call at a time on every
//! core). Each round runs, per client count, N clients posting speech
//! requests back to back for a fixed time against each server in turn, so
//! each ratio pairs two runs made under the same machine noise; a single
//! client on the scheduler gives the single-request latency. The report
//! gives requests per second, latency percentiles, time to first audio,
//! audio seconds produced per second and the batch sizes the scheduler
//! formed (from its Prometheus histogram): medians over the rounds, and the
//! paired ratios per round.
//!
//! `cargo build --release -p vivace -p vivace-load &&
//!  target/release/vivace-load --clients 2,4 --seconds 15 --rounds 3 --json out.json`

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
    #[arg(long, default_value_t = 15.0)]
    seconds: f64,
    /// Rounds; each runs every configuration once, the two modes back to back.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
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
    round: usize,
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
    /// Model calls the scheduler made per batch-size histogram bucket (upper bound).
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
            .env_remove("VIVACE_API_KEY")
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

    /// The batch-size histogram: cumulative bucket counts, and its sum and count.
    fn batch_histogram(&self) -> Result<Histogram> {
        let text = agent()
            .get(&format!("{}/metrics", self.base))
            .call()?
            .body_mut()
            .read_to_string()?;
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0)
        };
        Ok(Histogram {
            buckets: text
                .lines()
                .filter_map(|l| l.strip_prefix("vivace_batch_size_bucket{le=\""))
                .filter_map(|l| {
                    let (le, rest) = l.split_once("\"} ")?;
                    Some((le.to_string(), rest.trim().parse().ok()?))
                })
                .collect(),
            sum: value("vivace_batch_size_sum "),
            count: value("vivace_batch_size_count "),
        })
    }
}

/// A scrape of the scheduler's batch-size histogram.
struct Histogram {
    buckets: Vec<(String, u64)>,
    sum: f64,
    count: f64,
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
fn run(
    server: &Server,
    mode: Mode,
    clients: usize,
    seconds: f64,
    round: usize,
) -> Result<RunReport> {
    let url = format!("{}/v1/audio/speech", server.base);
    // One request per client first: connections and caches warm.
    for text in TEXTS.iter().take(clients.max(1)) {
        speak(&url, text)?;
    }
    let before = server.batch_histogram()?;
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
    let after = server.batch_histogram()?;
    // Model calls per histogram bucket (batch sizes up to its bound), and
    // the exact mean from the sum and count.
    let mut per_bucket = Vec::new();
    let mut previous = 0;
    for (le, cumulative) in &after.buckets {
        let was = before
            .buckets
            .iter()
            .find(|(l, _)| l == le)
            .map_or(0, |(_, n)| *n);
        let cumulative = cumulative - was;
        if cumulative > previous {
            per_bucket.push((le.clone(), cumulative - previous));
        }
        previous = cumulative;
    }
    let calls = after.count - before.count;
    let mean_batch = if calls > 0.0 {
        (after.sum - before.sum) / calls
    } else {
        0.0
    };
    let mut latencies: Vec<f64> = samples.iter().map(|s| s.latency.as_secs_f64()).collect();
    let mut firsts: Vec<f64> = samples
        .iter()
        .map(|s| s.first_audio.as_secs_f64())
        .collect();
    latencies.sort_by(f64::total_cmp);
    firsts.sort_by(f64::total_cmp);
    let audio: f64 = samples.iter().map(|s| s.audio_seconds).sum();
    Ok(RunReport {
        round,
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
        mean_batch,
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
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    // Both servers stay up (an idle one costs nothing); each round runs the
    // two modes back to back per client count, so ratios pair runs made
    // under the same machine noise.
    let scheduler = Server::start(&args.vivace, Mode::Scheduler, &args.serve_arg)?;
    let one_at_a_time = Server::start(&args.vivace, Mode::OneAtATime, &args.serve_arg)?;
    let mut reports = Vec::new();
    let mut pairs = Vec::new();
    for round in 1..=args.rounds {
        eprintln!("vivace-load: round {round}: single-request latency (1 client)");
        let single = run(&scheduler, Mode::Scheduler, 1, args.seconds, round)?;
        for &clients in &args.clients {
            eprintln!("vivace-load: round {round}: {clients} clients, both modes");
            let s = run(&scheduler, Mode::Scheduler, clients, args.seconds, round)?;
            let o = run(
                &one_at_a_time,
                Mode::OneAtATime,
                clients,
                args.seconds,
                round,
            )?;
            pairs.push(Pair {
                clients,
                throughput_ratio: s.audio_seconds_per_second / o.audio_seconds_per_second,
                p95_ratio_to_single_request: s.latency_p95_s / single.latency_p95_s,
                p95_ratio_to_one_at_a_time: s.latency_p95_s / o.latency_p95_s,
            });
            reports.push(s);
            reports.push(o);
        }
        reports.push(single);
    }
    println!(
        "medians over {} round(s) of {} s:\n{:<12} {:>7} {:>7} {:>9} {:>8} {:>8} {:>8} {:>9} {:>6} {:>6}",
        args.rounds,
        args.seconds,
        "mode",
        "clients",
        "req/s",
        "audio s/s",
        "p50 s",
        "p95 s",
        "p99 s",
        "first p50",
        "batch",
        "errors"
    );
    let mut medians = Vec::new();
    let mut keys: Vec<(Mode, usize)> = vec![(Mode::Scheduler, 1)];
    for &c in &args.clients {
        keys.push((Mode::Scheduler, c));
        keys.push((Mode::OneAtATime, c));
    }
    for (mode, clients) in keys {
        let runs: Vec<&RunReport> = reports
            .iter()
            .filter(|r| r.mode == mode && r.clients == clients)
            .collect();
        let med = |f: fn(&RunReport) -> f64| median(runs.iter().map(|r| f(r)).collect());
        let m = serde_json::json!({
            "mode": mode,
            "clients": clients,
            "requests_per_second": med(|r| r.requests_per_second),
            "audio_seconds_per_second": med(|r| r.audio_seconds_per_second),
            "latency_p50_s": med(|r| r.latency_p50_s),
            "latency_p95_s": med(|r| r.latency_p95_s),
            "latency_p99_s": med(|r| r.latency_p99_s),
            "first_audio_p50_s": med(|r| r.first_audio_p50_s),
            "mean_batch": med(|r| r.mean_batch),
            "errors": runs.iter().map(|r| r.errors).sum::<usize>(),
        });
        println!(
            "{:<12} {:>7} {:>7.2} {:>9.2} {:>8.3} {:>8.3} {:>8.3} {:>9.3} {:>6.2} {:>6}",
            format!("{mode:?}"),
            clients,
            m["requests_per_second"].as_f64().unwrap_or(0.0),
            m["audio_seconds_per_second"].as_f64().unwrap_or(0.0),
            m["latency_p50_s"].as_f64().unwrap_or(0.0),
            m["latency_p95_s"].as_f64().unwrap_or(0.0),
            m["latency_p99_s"].as_f64().unwrap_or(0.0),
            m["first_audio_p50_s"].as_f64().unwrap_or(0.0),
            m["mean_batch"].as_f64().unwrap_or(0.0),
            m["errors"],
        );
        medians.push(m);
    }
    let mut comparisons = Vec::new();
    for &clients in &args.clients {
        let of = |f: fn(&Pair) -> f64| -> Vec<f64> {
            pairs
                .iter()
                .filter(|p| p.clients == clients)
                .map(f)
                .collect()
        };
        let throughput = of(|p| p.throughput_ratio);
        let p95_single = of(|p| p.p95_ratio_to_single_request);
        let p95_one = of(|p| p.p95_ratio_to_one_at_a_time);
        println!(
            "{clients} clients: scheduler {:.2}x the audio throughput of one request at a time (rounds {}); its p95 latency {:.2}x the single-request p95 (rounds {}) and {:.2}x one at a time's",
            median(throughput.clone()),
            range(&throughput),
            median(p95_single.clone()),
            range(&p95_single),
            median(p95_one.clone()),
        );
        comparisons.push(serde_json::json!({
            "clients": clients,
            "throughput_ratio_median": median(throughput.clone()),
            "throughput_ratio_per_round": throughput,
            "p95_ratio_to_single_request_median": median(p95_single.clone()),
            "p95_ratio_to_single_request_per_round": p95_single,
            "p95_ratio_to_one_at_a_time_median": median(p95_one.clone()),
        }));
    }
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "date_utc": vivace::bench::today_utc(),
            "machine": {
                "cpu": vivace_perf::hardware::CpuInfo::probe().model,
                "logical_cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            },
            "rounds": args.rounds,
            "seconds_per_run": args.seconds,
            "medians": medians,
            "comparisons": comparisons,
            "runs": reports,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Scheduler against one request at a time in one round.
struct Pair {
    clients: usize,
    throughput_ratio: f64,
    p95_ratio_to_single_request: f64,
    p95_ratio_to_one_at_a_time: f64,
}

/// Median of the values (the project's median, on a sorted copy).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    vivace::bench::median(&values)
}

/// `min–max` of the values, for the report.
fn range(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.2}–{max:.2}")
}
