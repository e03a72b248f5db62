//! `vivace`: the command line. Arguments become a validated plan once
//! ([`SayArgs::plan`]); everything else lives in the library.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use vivace::bench::{Variant, Workload};
use vivace::synth::{SpeakReport, SynthError, Synthesizer};
use vivace::voice_store::{VoiceStore, DEFAULT_VOICE};
use vivace_frontend::audio::{AudioSink, PostProcess, RawSink, SampleFormat, WavSink};
use vivace_perf::{DeviceRequest, Optimizer, Overrides};

mod convert_cli;
mod embed_cli;
mod serve_cli;

/// Fast speech synthesis on any hardware.
#[derive(Debug, Parser)]
#[command(name = "vivace", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Speak text with a Piper voice (flags as in Piper's CLI).
    Say(Box<SayArgs>),
    /// Show the hardware and the plan Vivace would use on it.
    Info(InfoArgs),
    /// Check that the performance layer works here (exit code 1 on any FAIL).
    Validate(ValidateArgs),
    /// Time baseline against the plan on short, medium and long texts.
    Bench(BenchArgs),
    /// One measurement of `bench`, in a fresh process (internal).
    #[command(hide = true)]
    BenchRun(BenchRunArgs),
    /// One measurement of `bench --embed`, in a fresh process (internal).
    #[command(hide = true)]
    BenchEmbedRun(embed_cli::BenchEmbedRunArgs),
    /// Fetch the default voice into the cache (done automatically by `say`).
    Download,
    /// Speaker embeddings of WAV recordings (resemblyzer's voice encoder).
    Embed(embed_cli::EmbedArgs),
    /// Cosine similarity of two recordings' speaker embeddings.
    Similarity(embed_cli::SimilarityArgs),
    /// Run the OpenAI-compatible speech service (POST /v1/audio/speech).
    Serve(Box<serve_cli::ServeArgs>),
    /// Convert a Piper voice to a compact voice file (one .safetensors, f16 weights).
    Convert(convert_cli::ConvertArgs),
    /// List installed voices (Piper and MMS) with language and sample rate.
    Voices {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `--device`, shared by every command that runs a model.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DeviceArg {
    /// Device: auto, cpu, cuda[:N] or metal[:N]; auto tries CUDA, then Metal, then the CPU.
    #[arg(long = "device", env = "VIVACE_DEVICE", default_value = "auto")]
    device: String,
}

impl DeviceArg {
    /// Whether the user named a device (then it must work: no fallback).
    pub(crate) fn is_explicit(&self) -> bool {
        self.device != "auto"
    }

    /// Probes the machine, starts the device and applies the plan. Must run
    /// before any model code: the plan sets candle's thread count.
    pub(crate) fn optimizer(&self) -> Result<Optimizer> {
        let request: DeviceRequest = self.device.parse()?;
        let overrides = Overrides::from_env()?;
        let optimizer = Optimizer::new(request, &overrides)?;
        if let Some(why) = &optimizer.device.fallback {
            eprintln!("vivace: warning: no accelerator started ({why}); using the CPU");
        }
        Ok(optimizer)
    }
}

/// Output sample format.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SampleFormatArg {
    /// 16-bit PCM (Piper's format).
    S16,
    /// 32-bit float, for exact comparisons.
    F32,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
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
struct BenchRunArgs {
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

#[derive(Debug, clap::Args)]
struct InfoArgs {
    #[command(flatten)]
    device: DeviceArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ValidateArgs {
    #[command(flatten)]
    info: InfoArgs,
    /// Voice to run the checks with: a Piper .onnx, a compact voice
    /// (.safetensors), an MMS checkpoint directory or an installed voice name;
    /// the default voice when absent (fetched if missing).
    #[arg(long, short = 'm', visible_alias = "model", env = "VIVACE_VOICE")]
    voice: Option<String>,
}

#[derive(Debug, clap::Args)]
struct SayArgs {
    /// Text to speak; read from --input-file or stdin when absent.
    text: Vec<OsString>,
    /// Voice: NAME.onnx (NAME.onnx.json beside it), a compact NAME.safetensors, an MMS checkpoint directory or an installed voice name.
    #[arg(long, short = 'm', visible_alias = "model", env = "VIVACE_VOICE")]
    voice: Option<String>,
    /// Read the text from this file.
    #[arg(short = 'i', long = "input-file", visible_alias = "input_file")]
    input_file: Option<PathBuf>,
    /// Write a WAV file here (`-` for stdout).
    #[arg(short = 'f', long = "output-file", visible_alias = "output_file")]
    output_file: Option<PathBuf>,
    /// Write raw little-endian samples to stdout, sentence by sentence.
    #[arg(long = "output-raw", visible_alias = "output_raw")]
    output_raw: bool,
    /// Speaker id or name (multi-speaker voices).
    #[arg(short = 's', long)]
    speaker: Option<String>,
    /// Phoneme length multiplier (above 1 is slower); default from the voice.
    #[arg(long = "length-scale", visible_alias = "length_scale")]
    length_scale: Option<f64>,
    /// Generator noise; default from the voice.
    #[arg(long = "noise-scale", visible_alias = "noise_scale")]
    noise_scale: Option<f64>,
    /// Phoneme width noise; default from the voice.
    #[arg(long = "noise-w-scale", visible_aliases = ["noise_w_scale", "noise-w"])]
    noise_w_scale: Option<f64>,
    /// Seconds of silence between sentences.
    #[arg(
        long = "sentence-silence",
        visible_alias = "sentence_silence",
        default_value_t = 0.0
    )]
    sentence_silence: f32,
    /// Volume multiplier, applied after normalization.
    #[arg(long, default_value_t = 1.0)]
    volume: f32,
    /// Do not peak-normalize each sentence.
    #[arg(long = "no-normalize")]
    no_normalize: bool,
    #[command(flatten)]
    device: DeviceArg,
    /// Output sample format.
    #[arg(long = "sample-format", value_enum, default_value = "s16")]
    sample_format: SampleFormatArg,
    /// Print timings and the real-time factor to stderr.
    #[arg(short, long)]
    verbose: bool,
}

/// Where the audio goes.
enum Output {
    Wav(PathBuf),
    /// `-f -`: a WAV on stdout, written once complete (its header needs the length).
    WavStdout,
    Raw,
}

/// `say`'s arguments, checked.
struct SayPlan {
    /// The input, split as Piper's CLI does: each non-empty line (stripped) is
    /// spoken on its own; text given as arguments is one line.
    lines: Vec<String>,
    output: Output,
    format: SampleFormat,
    post: PostProcess,
}

impl SayArgs {
    /// Validates the arguments and reads the text (before any model loads).
    fn plan(&self) -> Result<SayPlan> {
        let output = match (&self.output_file, self.output_raw) {
            (Some(_), true) => bail!("choose one of --output-file and --output-raw"),
            (Some(path), false) if path.as_os_str() == "-" => Output::WavStdout,
            (Some(path), false) => Output::Wav(path.clone()),
            (None, true) => Output::Raw,
            (None, false) => bail!(
                "no output: pass -f OUT.wav to write a WAV file, or --output-raw to stream samples to stdout"
            ),
        };
        if !(self.volume.is_finite() && self.volume >= 0.0) {
            bail!(
                "--volume must be a non-negative number, got {}",
                self.volume
            );
        }
        if !(self.sentence_silence.is_finite() && self.sentence_silence >= 0.0) {
            bail!("--sentence-silence must be a non-negative number of seconds");
        }
        for (name, v) in [
            ("--length-scale", self.length_scale),
            ("--noise-scale", self.noise_scale),
            ("--noise-w-scale", self.noise_w_scale),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v >= 0.0) {
                    bail!("{name} must be a non-negative number, got {v}");
                }
            }
        }
        let text = self.read_text()?;
        let lines: Vec<String> = if self.text.is_empty() {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        } else if text.trim().is_empty() {
            Vec::new()
        } else {
            vec![text.trim().to_string()]
        };
        Ok(SayPlan {
            lines,
            output,
            format: match self.sample_format {
                SampleFormatArg::S16 => SampleFormat::I16,
                SampleFormatArg::F32 => SampleFormat::F32,
            },
            post: PostProcess {
                normalize: !self.no_normalize,
                volume: self.volume,
            },
        })
    }

    /// The text from the arguments, the input file or stdin; UTF-8 only.
    fn read_text(&self) -> Result<String> {
        let utf8 = |bytes: Vec<u8>, source: &str| {
            String::from_utf8(bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{source} is not valid UTF-8 (invalid byte at offset {}): convert it to UTF-8 first",
                    e.utf8_error().valid_up_to()
                )
            })
        };
        if !self.text.is_empty() {
            if self.input_file.is_some() {
                bail!("give the text either as arguments or with --input-file, not both");
            }
            let parts = self
                .text
                .iter()
                .map(|t| {
                    t.to_str()
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow::anyhow!("the text argument is not valid UTF-8"))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(parts.join(" "));
        }
        if let Some(path) = &self.input_file {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            return utf8(bytes, &path.display().to_string());
        }
        if std::io::stdin().is_terminal() {
            bail!("no text: give it as an argument, with --input-file, or on stdin");
        }
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read stdin")?;
        utf8(bytes, "stdin")
    }
}

fn say(args: &SayArgs) -> Result<()> {
    let plan = args.plan()?;
    if plan.lines.is_empty() {
        return Err(SynthError::EmptyText.into());
    }
    let optimizer = args.device.optimizer()?;
    let store = VoiceStore::from_env()?;
    let onnx = store.resolve(args.voice.as_deref())?;
    let load_start = std::time::Instant::now();
    let (mut synth, device) = Synthesizer::load_planned(
        &onnx,
        &optimizer,
        args.device.is_explicit(),
        &store.espeak_data_dir(),
    )
    .with_context(|| format!("cannot load voice {}", onnx.display()))?;
    synth.set_parallel_sentences(
        optimizer.plan.sentence_threads,
        optimizer.plan.stream_threads,
    );
    if args.verbose {
        // -v prints the stage breakdown: time the stages on any device.
        synth.voice().model().set_stage_timing(true);
    }
    let load_time = load_start.elapsed();

    let mut params = synth.voice().default_params();
    if let Some(v) = args.length_scale {
        params.length_scale = v;
    }
    if let Some(v) = args.noise_scale {
        params.noise_scale = v;
    }
    if let Some(v) = args.noise_w_scale {
        params.noise_w = v;
    }
    if let Some(s) = &args.speaker {
        params.speaker = Some(synth.voice().speaker(s)?);
    }

    let mut sink: Box<dyn AudioSink> = match &plan.output {
        Output::Wav(path) => Box::new(WavSink::create(path, synth.sample_rate(), plan.format)?),
        Output::WavStdout => Box::new(WavSink::stdout(synth.sample_rate(), plan.format)?),
        Output::Raw => Box::new(RawSink::new(
            std::io::stdout().lock(),
            plan.format,
            "<stdout>",
        )),
    };
    let start = Instant::now();
    let mut report = SpeakReport::default();
    for line in &plan.lines {
        let offset = start.elapsed();
        let line_report = synth.speak(
            line,
            &params,
            &plan.post,
            args.sentence_silence,
            sink.as_mut(),
        )?;
        report.merge(&line_report, offset);
    }
    sink.finish()?;
    if args.verbose {
        eprintln!(
            "vivace: voice {} loaded on {device} in {:.3} s; {} sentence(s), {:.2} s of audio; phonemize {:.3} s, synthesize {:.3} s, first audio after {:.3} s, total {:.3} s; real-time factor {:.3}",
            onnx.display(),
            load_time.as_secs_f64(),
            report.sentences,
            report.audio_seconds,
            report.phonemize.as_secs_f64(),
            report.synthesize.as_secs_f64(),
            report.first_audio.unwrap_or_default().as_secs_f64(),
            report.total.as_secs_f64(),
            report.real_time_factor(),
        );
        let st = synth.voice().model().stage_times();
        let pct =
            |d: std::time::Duration| 100.0 * d.as_secs_f64() / st.total().as_secs_f64().max(1e-9);
        eprintln!(
            "vivace: stages: text encoder {:.0}%, durations {:.0}%, length regulation {:.0}%, flow {:.0}%, decoder {:.0}% of {:.3} s of stage time (summed over sentence threads)",
            pct(st.text_encoder),
            pct(st.duration_predictor),
            pct(st.length_regulation),
            pct(st.flow),
            pct(st.decoder),
            st.total().as_secs_f64()
        );
    }
    Ok(())
}

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

fn bench(args: &BenchArgs) -> Result<()> {
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
    let params = synth.voice().default_params();
    let cfg = synth.voice().model().config();
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
        &store.espeak_data_dir(),
    )
    .with_context(|| format!("cannot load voice {}", voice.display()))?;
    let model = synth.voice().model();
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
    let rows = model_bench::run(model, &synth.voice().default_params(), &variant, &bench)
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
        let report = serde_json::json!({
            "date_utc": vivace::bench::today_utc(),
            "device": kind.to_string(),
            "gpu": optimizer.hardware.gpus.first().map(|g| g.name.clone()),
            "precision": optimizer.plan.precision.to_string(),
            "decoder_dtype": model.decoder_dtype().as_str(),
            "voice": voice,
            "rows": rows,
        });
        write_report(path, &report)?;
    }
    Ok(())
}

fn bench_run(args: &BenchRunArgs, started: Instant) -> Result<()> {
    use vivace::bench::{decide_batch, BatchDecision};
    let store = VoiceStore::from_env()?;
    let (mut synth, device, batch) = match args.variant {
        Variant::Optimized => {
            let device = DeviceArg {
                device: args.device.clone(),
            };
            let optimizer = device.optimizer()?;
            let (synth, kind) = Synthesizer::load_planned(
                &args.voice,
                &optimizer,
                device.is_explicit(),
                &store.espeak_data_dir(),
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

fn info(args: &InfoArgs) -> Result<()> {
    let optimizer = args.device.optimizer()?;
    if args.json {
        let report = serde_json::json!({
            "hardware": optimizer.hardware,
            "device": optimizer.device.kind,
            "fallback": optimizer.device.fallback,
            "plan": optimizer.plan,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let hw = &optimizer.hardware;
    let gib = |b: Option<u64>| {
        b.map_or("unknown".to_string(), |b| {
            format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
        })
    };
    println!("cpu          {} ({})", hw.cpu.model, hw.cpu.arch);
    println!(
        "cores        {} physical, {} logical",
        hw.cpu.physical_cores, hw.cpu.logical_cores
    );
    println!(
        "simd         {}",
        if hw.cpu.simd.is_empty() {
            "none detected".into()
        } else {
            hw.cpu.simd.join(" ")
        }
    );
    println!(
        "memory       {} total, {} available",
        gib(hw.cpu.total_memory),
        gib(hw.cpu.available_memory)
    );
    for gpu in &hw.gpus {
        println!("gpu          {:?} {}: {}", gpu.kind, gpu.index, gpu.name);
    }
    if hw.gpus.is_empty() {
        println!("gpu          none usable by this build");
    }
    println!("device       {}", optimizer.device.kind);
    println!();
    println!("{:<19} {:<10} {:<8} reason", "setting", "value", "source");
    for s in &optimizer.plan.settings {
        println!(
            "{:<19} {:<10} {:<8} {}",
            s.name,
            s.value,
            format!("{:?}", s.source).to_lowercase(),
            s.reason
        );
    }
    Ok(())
}

fn validate(args: &ValidateArgs) -> Result<()> {
    use vivace::validate::{Status, Subject};
    let device_args = &args.info.device;
    let optimizer = device_args.optimizer()?;
    let store = VoiceStore::from_env()?;
    let subject = store
        .resolve(args.voice.as_deref())
        .map_err(|e| e.to_string())
        .and_then(|path| {
            Subject::load(
                &path,
                &optimizer,
                device_args.is_explicit(),
                &store.espeak_data_dir(),
            )
        });
    let checks = vivace::validate::run(&optimizer, subject.as_ref().map_err(Clone::clone));
    let count = |st: Status| checks.iter().filter(|c| c.status == st).count();
    let (passed, skipped, failed) = (
        count(Status::Pass),
        count(Status::Skip),
        count(Status::Fail),
    );
    if args.info.json {
        let report = serde_json::json!({
            "device": optimizer.device.kind,
            "checks": checks,
            "passed": passed,
            "skipped": skipped,
            "failed": failed,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for c in &checks {
            println!(
                "{:<5} {:<16} {}",
                format!("{:?}", c.status).to_uppercase(),
                c.name,
                c.detail
            );
        }
        println!("\n{passed} passed, {skipped} skipped, {failed} failed");
    }
    if failed > 0 {
        bail!("{failed} validation check(s) failed");
    }
    Ok(())
}

fn run(cli: Cli, started: Instant) -> Result<()> {
    match cli.command {
        Command::Say(args) => say(&args),
        Command::Info(args) => info(&args),
        Command::Bench(args) => bench(&args),
        Command::BenchRun(args) => bench_run(&args, started),
        Command::BenchEmbedRun(args) => embed_cli::bench_embed_run(&args, started),
        Command::Validate(args) => validate(&args),
        Command::Embed(args) => embed_cli::embed(&args),
        Command::Similarity(args) => embed_cli::similarity(&args),
        Command::Serve(args) => serve_cli::serve(&args),
        Command::Convert(args) => convert_cli::convert(&args),
        Command::Download => {
            let store = VoiceStore::from_env()?;
            let path = store.ensure(&DEFAULT_VOICE)?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Voices { json } => {
            let store = VoiceStore::from_env()?;
            let mut voices = Vec::new();
            for name in store.installed() {
                let Some(path) = store.voice_path(&name) else {
                    continue;
                };
                match vivace::voice_store::describe(&name, &path) {
                    Ok(info) => voices.push(info),
                    Err(e) => eprintln!("vivace: skipping {name}: {e}"),
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&voices)?);
            } else {
                println!(
                    "{:<28} {:<6} {:<10} {:>6} {:>8}  path",
                    "name", "format", "language", "Hz", "speakers"
                );
                for v in &voices {
                    println!(
                        "{:<28} {:<6} {:<10} {:>6} {:>8}  {}",
                        v.name,
                        v.format,
                        v.language.as_deref().unwrap_or("-"),
                        v.sample_rate,
                        v.speakers,
                        v.path.display()
                    );
                }
            }
            Ok(())
        }
    }
}

/// Whether the failure is a broken pipe (a reader that went away: not an error).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let started = Instant::now();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VIVACE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse(), started) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vivace: error: {err:#}");
            let empty = err
                .chain()
                .any(|c| matches!(c.downcast_ref::<SynthError>(), Some(SynthError::EmptyText)));
            ExitCode::from(if empty { 2 } else { 1 })
        }
    }
}
