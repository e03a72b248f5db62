//! `vivace convert-voice`: a recording re-voiced through Chatterbox's S3Gen
//! (its speech tokens, spoken in a target voice), as the reference's
//! `vc.py` does.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use vivace::family::chatterbox::reference::S3GEN_RATE;
use vivace::family::chatterbox::voice_conversion::{Randomness, VoiceConverter};
use vivace_frontend::audio::{AudioSink, SampleFormat, WavSink};
use vivace_models::chatterbox::s3gen::FlowNoise;

use crate::DeviceArg;

#[derive(Debug, clap::Args)]
pub struct ConvertVoiceArgs {
    /// The recording to re-voice (WAV, any rate from 8 kHz, up to 30 s).
    source: PathBuf,
    /// The voice to speak in: a WAV recording (its first 10 s count).
    /// Default: the built-in voice, `conds.pt` beside the checkpoint.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Output WAV (24 kHz, 16-bit); `-` writes it to stdout.
    #[arg(short = 'f', long = "output-file")]
    output: PathBuf,
    /// The S3Gen checkpoint: `s3gen.safetensors`, `s3gen.pt`,
    /// `s3gen_meanflow.safetensors`, or a folder holding one (a snapshot of
    /// ResembleAI/chatterbox or chatterbox-turbo).
    #[arg(long, env = "VIVACE_S3GEN")]
    s3gen: PathBuf,
    /// Decoder steps (default: 10, or 2 for Turbo's meanflow checkpoint).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100))]
    steps: Option<u64>,
    /// Seed of the flow's starting noise and the vocoder's phases and noise
    /// (random by default): the same seed, the same audio.
    #[arg(long)]
    seed: Option<u64>,
    /// The flow's starting noise from a float32 `.npy` of shape (80, frames)
    /// or longer, used from its first frame (for parity with the reference).
    #[arg(long)]
    flow_noise: Option<PathBuf>,
    /// `0` turns the vocoder's random sine phases and noise off (for parity).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    vocoder_noise: u8,
    /// Print a JSON report on stdout (not with `-f -`).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArg,
}

/// A seed from the clock, for unseeded runs.
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub fn convert_voice(args: &ConvertVoiceArgs) -> Result<()> {
    let to_stdout = args.output.as_os_str() == "-";
    if to_stdout && args.json {
        bail!("--json prints on stdout, where -f - writes the audio: give -f a file");
    }
    let optimizer = args.device.optimizer()?;
    let device = &optimizer.device.device;
    let started = Instant::now();
    let converter = VoiceConverter::load(&args.s3gen, device)
        .with_context(|| format!("cannot load S3Gen from {}", args.s3gen.display()))?;
    let load_s = started.elapsed().as_secs_f64();
    let target = converter
        .target(args.reference.as_deref())
        .context("cannot prepare the target voice")?;
    let tokens = converter
        .source_tokens(&args.source)
        .context("cannot read the source's speech")?;
    let seed = args.seed.unwrap_or_else(clock_seed);
    let randomness = Randomness {
        flow: match &args.flow_noise {
            Some(path) => FlowNoise::from_npy(path)?,
            None => FlowNoise::Seeded(seed),
        },
        vocoder_seed: (args.vocoder_noise == 1).then_some(seed),
    };
    let synth_started = Instant::now();
    let steps = args.steps.map(|s| s as usize);
    let audio = converter.speak(&tokens, &target, steps, &randomness)?;
    let synth_s = synth_started.elapsed().as_secs_f64();
    let mut sink: Box<dyn AudioSink> = match to_stdout {
        true => Box::new(WavSink::stdout(S3GEN_RATE, SampleFormat::I16)?),
        false => Box::new(WavSink::create(
            &args.output,
            S3GEN_RATE,
            SampleFormat::I16,
        )?),
    };
    sink.write(&audio)?;
    sink.finish()?;
    let audio_s = audio.len() as f64 / f64::from(S3GEN_RATE);
    if args.json {
        let report = serde_json::json!({
            "source": args.source, "reference": args.reference, "output": args.output,
            "tokens": tokens.len(), "audio_s": audio_s, "load_s": load_s,
            "synthesis_s": synth_s, "rtf": synth_s / audio_s.max(1e-9),
            "steps": steps.unwrap_or(converter.s3gen().default_steps()), "seed": seed,
        });
        println!("{report}");
    } else if !to_stdout {
        eprintln!(
            "vivace: {} tokens -> {audio_s:.2} s of audio in {synth_s:.2} s (RTF {:.2}) -> {}",
            tokens.len(),
            synth_s / audio_s.max(1e-9),
            args.output.display()
        );
    }
    Ok(())
}
