//! `vivace`: the command line. Arguments become a validated plan once
//! ([`SayArgs::plan`]); everything else lives in the library.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use vivace::synth::{SpeakReport, SynthError, Synthesizer};
use vivace::voice_store::{VoiceStore, DEFAULT_VOICE};
use vivace_frontend::audio::{AudioSink, PostProcess, RawSink, SampleFormat, WavSink};
use vivace_perf::{DeviceRequest, Optimizer, Overrides};

mod bench_cli;
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
    Bench(bench_cli::BenchArgs),
    /// One measurement of `bench`, in a fresh process (internal).
    #[command(hide = true)]
    BenchRun(bench_cli::BenchRunArgs),
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
        Command::Bench(args) => bench_cli::bench(&args),
        Command::BenchRun(args) => bench_cli::bench_run(&args, started),
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
