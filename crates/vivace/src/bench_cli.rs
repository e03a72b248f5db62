//! `vivace bench`: library defaults against the plan, each measurement in
//! a fresh process (`bench-run`, hidden), the work count (`--count`) and
//! the model alone on the PyTorch peer's workloads (`--model-only`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use vivace::bench::{Variant, Workload};
use vivace::synth::{LoadOptions, Synthesizer};
use vivace::voice_store::VoiceStore;
use vivace_perf::Optimizer;

use crate::{embed_cli, DeviceArg};

/// `VIVACE_*` and thread variables removed for the baseline, so it runs on
/// library defaults.
const TUNING_VARIABLES: [&str; 9] = [
    "VIVACE_NUM_THREADS",
    "VIVACE_SENTENCE_THREADS",
    "VIVACE_ELEMENTWISE_THREADS",
    "VIVACE_PRECISION",
    "VIVACE_CUDNN",
    "VIVACE_BATCH_SIZE",
    "VIVACE_WARMUP",
    "RAYON_NUM_THREADS",
    "CANDLE_NUM_THREADS",
];

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Voice (a .onnx, compact .safetensors or MMS checkpoint path, or an installed name); default en_US-joe-medium.
    #[arg(long, short = 'm', visible_alias = "model", env = "VIVACE_VOICE")]
    voice: Option<String>,
    #[command(flatten)]
    device: DeviceArg,
    /// Write the JSON report to this file (`-` for stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Timed runs per workload and variant.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// A short budget (2 runs, short and medium texts), as CI uses.
    #[arg(long)]
    quick: bool,
    /// Only count the work: FLOP per second of audio per stage, this
    /// machine's matmul rate, and the real-time-factor floor they imply.
    #[arg(long)]
    count: bool,
    /// Time speaker embeddings (the voice encoder) instead of synthesis.
    #[arg(long)]
    embed: bool,
    /// Time the model alone on the PyTorch peer's workloads
    /// (bench/torch_peer.py): full synthesis of --tokens random ids, and the
    /// decoder alone on --frames random latent frames at batch 1 and 8.
    #[arg(long, conflicts_with_all = ["embed", "count"])]
    model_only: bool,
    /// With --model-only: input ids of the full synthesis.
    #[arg(long, default_value_t = 120, requires = "model_only")]
    tokens: usize,
    /// With --model-only: latent frames of the decoder (250 = 4 s at 16 kHz).
    #[arg(long, default_value_t = 250, requires = "model_only")]
    frames: usize,
    /// With --model-only: batches of full synthesis timed for throughput.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "8,32",
        requires = "model_only"
    )]
    full_batches: Vec<usize>,
    /// With --model-only: also time the decoder replayed as a CUDA graph
    /// (experimental; CUDA builds only, a failure is recorded in its row).
    #[arg(long, requires = "model_only")]
    graphs: bool,
    /// Time Chatterbox T3's decode on the plan's device: the published
    /// English T3's shapes with random weights (speed depends on shapes,
    /// not values; no file is read), a 60-id text after a 150-token voice
    /// prompt, --t3-tokens per sequence with the reference's sampling, at
    /// each of --t3-batches sequences decoded together; the median of
    /// --runs rounded to 1 or 3 (1 with --quick).
    #[arg(long, conflicts_with_all = ["embed", "count", "model_only"])]
    t3: bool,
    /// With --t3: sequences decoded together, one row each.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,8",
        requires = "t3",
        action = clap::ArgAction::Set
    )]
    t3_batches: Vec<usize>,
    /// With --t3: tokens decoded per sequence (250: 10 s of speech).
    #[arg(long, default_value_t = 250, requires = "t3")]
    t3_tokens: usize,
    /// Time Chatterbox's S3Gen on the plan's device: the published
    /// S3Gen's shapes with random weights (both the 10-step flow and
    /// Turbo's 2-step meanflow), speaking 250 speech tokens (10 s) after a
    /// 10 s prompt, in f32 as the Chatterbox family loads it; the real-time
    /// factor of flow and vocoder, the median of --runs rounded to 1 or 3.
    #[arg(long, conflicts_with_all = ["embed", "count", "model_only", "t3"])]
    s3gen: bool,
    /// With --embed: the recordings to embed (default: two sentences spoken
    /// by the default voice, at 22050 Hz).
    #[arg(long = "audio", requires = "embed")]
    audio: Vec<PathBuf>,
    /// With --embed: voice-encoder weights (default resemblyzer's). Not
    /// `requires = "embed"`: clap counts the variable as given, which would
    /// break a plain `bench` while it is exported.
    #[arg(long, env = "VIVACE_VOICE_ENCODER")]
    encoder: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BenchRunArgs {
    #[arg(long)]
    voice: PathBuf,
    #[arg(long)]
    device: String,
    #[arg(long, value_enum)]
    variant: Variant,
    #[arg(long, value_enum)]
    workload: Workload,
    #[arg(long)]
    runs: usize,
}

pub(crate) fn bench(args: &BenchArgs) -> Result<()> {
    use vivace::bench::{speedup, RunResult, Summary};
    if args.embed {
        return embed_cli::bench_embed(
            &args.device,
            &args.audio,
            args.encoder.as_deref(),
            if args.quick { 2 } else { args.runs.max(1) },
            args.json.as_deref(),
        );
    }
    let optimizer = args.device.optimizer()?;
    if args.t3 {
        return bench_t3(args, &optimizer);
    }
    if args.s3gen {
        return bench_s3gen(args, &optimizer);
    }
    let store = VoiceStore::from_env()?;
    let onnx = store.resolve(args.voice.as_deref())?;
    if args.count {
        return count(&onnx, &store, &optimizer);
    }
    if args.model_only {
        return bench_model_only(args, &onnx, &store, &optimizer);
    }
    let exe =
        std::env::current_exe().context("cannot find the vivace executable to run measurements")?;
    let (runs, workloads): (usize, &[Workload]) = if args.quick {
        (2, &[Workload::Short, Workload::Medium])
    } else {
        (args.runs.max(1), &Workload::ALL)
    };
    let variants = [Variant::Baseline, Variant::Optimized];
    let progress = indicatif::ProgressBar::new((workloads.len() * variants.len()) as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut summaries = Vec::new();
    for &workload in workloads {
        for variant in variants {
            progress.set_message(format!("{variant:?} / {workload:?}").to_lowercase());
            let mut cmd = std::process::Command::new(&exe);
            cmd.arg("bench-run")
                .arg("--voice")
                .arg(&onnx)
                .args(["--device", &args.device.device])
                .args(["--workload", &format!("{workload:?}").to_lowercase()])
                .args(["--runs", &runs.to_string()]);
            let run: RunResult =
                run_measurement(cmd, variant, &format!("{variant:?}/{workload:?}"))?;
            summaries.push(Summary::of(run));
            progress.inc(1);
        }
    }
    progress.finish_and_clear();

    let speedup = speedup(&summaries);
    println!(
        "{:<8} {:<10} {:>5} {:>9} {:>8} {:>15} {:>8} {:>7} {:>11} {:>9}",
        "workload",
        "variant",
        "batch",
        "cold s",
        "p50 s",
        "min-max s",
        "p95 s",
        "rtf",
        "audio s/s",
        "peak MiB"
    );
    for s in &summaries {
        println!(
            "{:<8} {:<10} {:>5} {:>9.3} {:>8.3} {:>15} {:>8.3} {:>7.3} {:>11.2} {:>9.0}",
            format!("{:?}", s.run.workload).to_lowercase(),
            format!("{:?}", s.run.variant).to_lowercase(),
            s.run.batch,
            s.run.cold_start_s,
            s.p50_s,
            format!("{:.3}-{:.3}", s.min_s, s.max_s),
            s.p95_s,
            s.rtf,
            s.throughput,
            s.run
                .peak_rss
                .map_or(f64::NAN, |b| b as f64 / (1u64 << 20) as f64),
        );
    }
    match speedup {
        Some(x) if x > 1.02 => println!("\nspeedup (optimized / baseline throughput): {x:.2}x"),
        Some(x) => println!(
            "\nspeedup (optimized / baseline throughput): {x:.2}x: the plan is not faster than library defaults on this hardware ({}, {} physical cores, precision {})",
            optimizer.device.kind, optimizer.hardware.cpu.physical_cores, optimizer.plan.precision
        ),
        None => println!("\nspeedup: not measurable"),
    }
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "hardware": optimizer.hardware,
            "plan": optimizer.plan,
            "voice": onnx,
            "runs": runs,
            "results": summaries,
            "speedup": speedup,
            "optimized_is_faster": speedup.map(|x| x > 1.02),
        });
        write_report(path, &report)?;
    }
    Ok(())
}

/// Runs one measurement child process (`cmd`, told its `variant`; the
/// baseline without the tuning variables, so it gets library defaults) and
/// parses the JSON result it prints. `what` names it in errors.
pub(crate) fn run_measurement<T: serde::de::DeserializeOwned>(
    mut cmd: std::process::Command,
    variant: Variant,
    what: &str,
) -> Result<T> {
    cmd.args(["--variant", &format!("{variant:?}").to_lowercase()])
        .stderr(std::process::Stdio::inherit());
    if variant == Variant::Baseline {
        for name in TUNING_VARIABLES {
            cmd.env_remove(name);
        }
    }
    let out = cmd.output().context("cannot start a measurement process")?;
    if !out.status.success() {
        bail!("measurement {what} failed ({})", out.status);
    }
    serde_json::from_slice(&out.stdout).context("a measurement process printed no result")
}

/// Writes a JSON report to `path`, or to stdout when it is `-`.
pub(crate) fn write_report(path: &std::path::Path, report: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    if path.as_os_str() == "-" {
        println!("{text}");
    } else {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// `bench --count`: the work per second of audio for the long workload, the
/// matmul rate, and the floor.
fn count(onnx: &std::path::Path, store: &VoiceStore, optimizer: &Optimizer) -> Result<()> {
    let synth = Synthesizer::load(
        onnx,
        &optimizer.device.device,
        optimizer.plan.dtype(),
        &store.espeak_data_dir(),
    )?;
    let params = synth.default_params()?;
    let cfg = synth.vits()?.model().config();
    let (mut macs, mut samples) = (vivace_models::vits::cost::StageMacs::default(), 0usize);
    for sentence in synth.sentences(Workload::Long.text())? {
        let (audio, _) = synth.synthesize_sentences(std::slice::from_ref(&sentence), &params, 1)?;
        let n = audio.first().map_or(0, Vec::len);
        let m = cfg.macs(sentence.ids.len(), n / cfg.hop_length());
        macs.text_encoder += m.text_encoder;
        macs.duration_predictor += m.duration_predictor;
        macs.flow += m.flow;
        macs.decoder += m.decoder;
        samples += n;
    }
    let seconds = samples as f64 / f64::from(cfg.sampling_rate);
    let gflop = |m: f64| 2.0 * m / seconds / 1e9;
    let peak = vivace::bench::matmul_peak_gflops()?;
    let total = gflop(macs.total());
    println!("work per second of audio (long workload, {seconds:.1} s of audio):");
    for (name, m) in [
        ("text encoder", macs.text_encoder),
        ("durations", macs.duration_predictor),
        ("flow", macs.flow),
        ("decoder", macs.decoder),
    ] {
        println!(
            "  {name:<13} {:>6.3} GFLOP  {:>5.1} %",
            gflop(m),
            100.0 * m / macs.total()
        );
    }
    println!("  {:<13} {total:>6.3} GFLOP", "total");
    println!("f32 matmul rate (1024³, best of 5): {peak:.1} GFLOP/s");
    println!("real-time-factor floor at that rate: {:.4}", total / peak);
    let path = vivace_models::nn::cpu_kernel::active();
    let packed = vivace::bench::packed_gemm_gflops();
    println!(
        "kernel path {path}: packed GEMM on a convolution's shape (256 × 768 × 8192, best of 5) {packed:.1} GFLOP/s, floor {:.4}",
        total / packed
    );
    Ok(())
}

/// `bench --model-only`: the peer's workloads, in this process, on the plan.
fn bench_model_only(
    args: &BenchArgs,
    voice: &std::path::Path,
    store: &VoiceStore,
    optimizer: &Optimizer,
) -> Result<()> {
    use vivace::model_bench::{self, ModelBench};
    if args.tokens == 0 || args.frames == 0 {
        bail!("--tokens and --frames must be at least 1");
    }
    let (synth, kind) = Synthesizer::load_planned(
        voice,
        optimizer,
        args.device.is_explicit(),
        &LoadOptions::new(&store.espeak_data_dir()),
    )
    .with_context(|| format!("cannot load voice {}", voice.display()))?;
    let vits = synth.vits()?;
    let model = vits.model();
    let variant = format!("vivace-{}", optimizer.plan.precision);
    let bench = ModelBench {
        tokens: args.tokens,
        frames: args.frames,
        runs: if args.quick { 2 } else { args.runs.max(1) },
        warmup: if args.quick { 1 } else { 3 },
        full_batches: args
            .full_batches
            .iter()
            .copied()
            .filter(|&b| b > 1)
            .collect(),
        graphs: args.graphs,
    };
    let rows = model_bench::run(model, &vits.synthesis_defaults(), &variant, &bench)
        .context("the model failed while being timed")?;
    println!(
        "{:<22} {:<14} {:>5} {:>10} {:>10} {:>10} {:>8}",
        "workload", "variant", "batch", "median ms", "min ms", "audio s", "RTF"
    );
    for r in &rows {
        if let Some(e) = &r.error {
            println!(
                "{:<22} {:<14} {:>5} failed: {e}",
                r.workload, r.variant, r.batch
            );
            continue;
        }
        println!(
            "{:<22} {:<14} {:>5} {:>10.2} {:>10.2} {:>10.2} {:>8.4}",
            r.workload, r.variant, r.batch, r.median_ms, r.min_ms, r.audio_s, r.rtf
        );
        if let Some(s) = &r.stages_ms {
            println!(
                "  stages (mean ms): text encoder {:.2}, durations {:.2}, length regulation {:.2}, flow {:.2}, decoder {:.2}",
                s.text_encoder, s.duration_predictor, s.length_regulation, s.flow, s.decoder
            );
        }
    }
    if let Some(path) = &args.json {
        let mut report = report_head(optimizer, kind);
        report["decoder_dtype"] = model.decoder_dtype().as_str().into();
        report["voice"] = serde_json::to_value(voice)?;
        report["rows"] = serde_json::to_value(&rows)?;
        write_report(path, &report)?;
    }
    Ok(())
}

/// `vivace bench --t3`: T3's decode rate at each batch on the plan's device.
fn bench_t3(args: &BenchArgs, optimizer: &Optimizer) -> Result<()> {
    use vivace_models::chatterbox::t3::timing::{
        synthetic_conditioning, synthetic_text, time_decode,
    };
    use vivace_models::chatterbox::t3::{DecodeParams, Precision, T3Config, T3Variant, T3};
    if args.t3_tokens == 0 || args.t3_batches.contains(&0) {
        bail!("--t3-tokens and every --t3-batches value must be at least 1");
    }
    let device = &optimizer.device.device;
    // T3's decode weights: bf16 only where a bf16 plan asks for it and the
    // CPU's decode kernel stores them so (elsewhere they stay f32).
    let precision = match (optimizer.plan.precision, device.is_cpu()) {
        (vivace_perf::Precision::Bf16, true) => Precision::Bf16,
        _ => Precision::F32,
    };
    let start = Instant::now();
    let t3 = T3::random(T3Config::english(), device, precision)
        .context("cannot build the random-weight T3")?;
    let build_s = start.elapsed().as_secs_f64();
    let text = synthetic_text(T3Variant::English, 60);
    let conditioning = t3
        .conditioning(&synthetic_conditioning())
        .context("T3's conditioning failed")?;
    let params = DecodeParams {
        max_tokens: args.t3_tokens,
        ..DecodeParams::defaults(T3Variant::English)
    };
    // A short decode first: kernels loaded (PTX compiled) and caches warm.
    let warm = DecodeParams {
        max_tokens: 4,
        ..params.clone()
    };
    time_decode(&t3, &conditioning, &text, &warm, 1, 0).context("T3's warm-up decode failed")?;
    let runs = odd_runs(args);
    let mut rows = Vec::new();
    for &batch in &args.t3_batches {
        let median = median_of(
            runs,
            |run| time_decode(&t3, &conditioning, &text, &params, batch, 1000 * run as u64),
            |t| t.tokens_per_s,
        )
        .with_context(|| format!("T3's decode at batch {batch} failed"))?;
        println!(
            "T3 batch {batch}: {:.1} tokens/s ({} tokens; prefill {:.3} s per sequence of {} positions; median of {runs})",
            median.tokens_per_s, median.tokens, median.prefill_s, median.prompt_positions
        );
        rows.push(median);
    }
    if let Some(path) = &args.json {
        let mut report = report_head(optimizer, optimizer.device.kind);
        report["model"] = "chatterbox T3 English, published shapes, random weights".into();
        report["t3_weights"] = format!("{precision:?}").to_lowercase().into();
        report["build_s"] = build_s.into();
        report["tokens_per_sequence"] = args.t3_tokens.into();
        report["rows"] = serde_json::to_value(&rows)?;
        write_report(path, &report)?;
    }
    Ok(())
}

/// Timed runs of `--t3` and `--s3gen`: 1 with `--quick`, else `--runs`
/// rounded to 1 or 3, an odd count whose median is one of the runs.
fn odd_runs(args: &BenchArgs) -> usize {
    match args.quick || args.runs <= 1 {
        true => 1,
        false => 3,
    }
}

/// The median by `key` of `runs` (at least one) results of `time(run)`.
fn median_of<T, E>(
    runs: usize,
    time: impl FnMut(usize) -> Result<T, E>,
    key: impl Fn(&T) -> f64,
) -> Result<T, E> {
    let mut timings = (0..runs.max(1)).map(time).collect::<Result<Vec<_>, _>>()?;
    timings.sort_by(|a, b| key(a).total_cmp(&key(b)));
    Ok(timings.swap_remove(timings.len() / 2))
}

/// The head of a report timed on `device` (the plan's, or the CPU a model
/// fell back to): date, device, GPU and the plan's precision.
fn report_head(optimizer: &Optimizer, device: vivace_perf::DeviceKind) -> serde_json::Value {
    serde_json::json!({
        "date_utc": vivace::bench::today_utc(),
        "device": device.to_string(),
        "gpu": optimizer.hardware.gpus.first().map(|g| g.name.clone()),
        "precision": optimizer.plan.precision.to_string(),
    })
}

/// `vivace bench --s3gen`: S3Gen's real-time factor on the plan's device,
/// for both solvers.
fn bench_s3gen(args: &BenchArgs, optimizer: &Optimizer) -> Result<()> {
    use candle_core::DType;
    use vivace_models::chatterbox::s3gen::timing::{synthetic_prompt, time_synthesis};
    use vivace_models::chatterbox::s3gen::{S3Gen, S3GenConfig};
    // 10 s of speech (25 tokens a second) after a 10 s prompt.
    const TOKENS: u32 = 250;
    let device = &optimizer.device.device;
    let runs = odd_runs(args);
    let tokens: Vec<u32> = (0..TOKENS).map(|i| i * 31 % 6561).collect();
    let mut rows = Vec::new();
    for (name, meanflow) in [("s3gen", false), ("s3gen-meanflow", true)] {
        // f32, as the Chatterbox family loads S3Gen whatever the plan.
        let model = S3Gen::random(&S3GenConfig::chatterbox(), meanflow, device, DType::F32)
            .with_context(|| format!("cannot build the random-weight {name}"))?;
        let prompt = synthetic_prompt(&model, TOKENS as usize)?;
        // A first synthesis loads the kernels (PTX compiled) and warms caches.
        time_synthesis(&model, &prompt, &tokens[..25])
            .with_context(|| format!("{name}'s warm-up failed"))?;
        let median = median_of(
            runs,
            |_| time_synthesis(&model, &prompt, &tokens),
            |t| t.rtf,
        )
        .with_context(|| format!("{name} failed while being timed"))?;
        println!(
            "{name}: RTF {:.4} ({} steps; encoder {:.3} s, flow {:.3} s, vocoder {:.3} s for {:.1} s of audio; median of {runs})",
            median.rtf, median.steps, median.encode_s, median.flow_s, median.vocode_s, median.audio_s
        );
        rows.push(serde_json::json!({ "model": name, "timing": median }));
    }
    if let Some(path) = &args.json {
        let mut report = report_head(optimizer, optimizer.device.kind);
        report["model"] = "chatterbox S3Gen, published shapes, random weights, f32".into();
        report["rows"] = rows.into();
        write_report(path, &report)?;
    }
    Ok(())
}

pub(crate) fn bench_run(args: &BenchRunArgs, started: Instant) -> Result<()> {
    use vivace::bench::{decide_batch, BatchDecision};
    let store = VoiceStore::from_env()?;
    let (mut synth, device, batch) = match args.variant {
        Variant::Optimized => {
            // The parent's precision reaches this process as its variable.
            let device = DeviceArg {
                device: args.device.clone(),
                precision: std::env::var("VIVACE_PRECISION").ok(),
            };
            let optimizer = device.optimizer()?;
            let (synth, kind) = Synthesizer::load_planned(
                &args.voice,
                &optimizer,
                device.is_explicit(),
                &LoadOptions::new(&store.espeak_data_dir()),
            )?;
            let name = args
                .voice
                .file_stem()
                .map_or("voice".into(), |s| s.to_string_lossy().into_owned());
            let batch = decide_batch(
                &synth,
                &optimizer,
                &name,
                args.workload.text(),
                &store.batch_cache_path(),
            )?;
            let mut synth = synth;
            synth.set_parallel_sentences(
                optimizer.plan.sentence_threads,
                optimizer.plan.stream_threads,
            );
            (synth, kind, batch)
        }
        Variant::Baseline => {
            let chosen = vivace_perf::device::open(args.device.parse()?)?;
            let synth = Synthesizer::load(
                &args.voice,
                &chosen.device,
                candle_core::DType::F32,
                &store.espeak_data_dir(),
            )?;
            (synth, chosen.kind, BatchDecision::one("baseline"))
        }
    };
    synth.set_batch_size(batch.batch);
    let result = vivace::bench::measure(
        &synth,
        device.to_string(),
        args.variant,
        args.workload,
        args.runs,
        started,
        &batch,
    )?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}
