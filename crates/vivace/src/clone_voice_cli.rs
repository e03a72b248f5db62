//! `vivace clone-voice`: a recording re-voiced with the timbre of another
//! through OpenVoice v2's tone-colour converter, as the reference's
//! `ToneColorConverter.extract_se` and `.convert` do.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use vivace::tone_color::{load_for_cloning, locate_converter, save_embedding, DEFAULT_TAU};
use vivace::voice_store::VoiceStore;
use vivace_frontend::audio::{AudioSink, SampleFormat, WavSink};
use vivace_frontend::speaker_audio::read_wav;

use crate::DeviceArg;

/// Flags of `vivace clone-voice`.
#[derive(Debug, clap::Args)]
pub struct CloneVoiceArgs {
    /// The speech to re-voice (WAV, any rate).
    source: PathBuf,
    /// Whose timbre to give it: a WAV recording (10 s or more of speech
    /// clones best) or an embedding saved with --save-embedding (`.npy`).
    #[arg(long)]
    reference: PathBuf,
    /// Output WAV (16-bit, at the converter's rate, 22,050 Hz); `-` writes
    /// it to stdout.
    #[arg(short = 'f', long = "output-file")]
    output: PathBuf,
    /// The source speaker's embedding (WAV or `.npy`); default: measured
    /// from the source itself (split like the reference, unless --no-vad),
    /// as the reference's demo does.
    #[arg(long)]
    source_embedding: Option<PathBuf>,
    /// The converter: a folder with `checkpoint.pth` and `config.json`
    /// (default: the one `vivace download openvoice` installs).
    #[arg(long, env = "VIVACE_OPENVOICE")]
    converter: Option<PathBuf>,
    /// Scale of the posterior's sampling noise (0: deterministic).
    #[arg(long, default_value_t = DEFAULT_TAU)]
    tau: f32,
    /// Seed of that noise (random by default): the same seed, the same audio.
    #[arg(long)]
    seed: Option<u64>,
    /// Embed the whole reference recording, as `extract_se` does on one
    /// file, instead of its speech cut into ~10 s pieces by Silero VAD (the
    /// reference's `get_se` default, which needs more than 5 s of speech).
    #[arg(long)]
    no_vad: bool,
    /// Also write the reference's embedding here (float32 `.npy`, shape (256,)).
    #[arg(long)]
    save_embedding: Option<PathBuf>,
    /// Print a JSON report on stdout (not with `-f -`).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArg,
}

/// `vivace clone-voice`.
pub fn clone_voice(args: &CloneVoiceArgs) -> Result<()> {
    let to_stdout = args.output.as_os_str() == "-";
    if to_stdout && args.json {
        bail!("--json prints on stdout, where -f - writes the audio: give -f a file");
    }
    if !(args.tau.is_finite() && args.tau >= 0.0) {
        bail!("--tau must be a non-negative number, got {}", args.tau);
    }
    let optimizer = args.device.optimizer()?;
    let device = &optimizer.device.device;
    let store = VoiceStore::from_env()?;
    let dir = locate_converter(args.converter.as_deref(), &store)?;
    let started = Instant::now();
    let tone_color = load_for_cloning(&dir, device, &store, !args.no_vad)
        .with_context(|| format!("cannot load the converter in {}", dir.display()))?;
    let load_s = started.elapsed().as_secs_f64();

    let embed_started = Instant::now();
    let source = read_wav(&args.source)?;
    let target = tone_color.embed_file(&args.reference)?;
    let source_se = match &args.source_embedding {
        Some(path) => tone_color.embed_file(path)?,
        None => tone_color.embed(&source.samples, source.sample_rate, &args.source)?,
    };
    let embed_s = embed_started.elapsed().as_secs_f64();
    if let Some(path) = &args.save_embedding {
        save_embedding(path, &target)?;
    }

    let convert_started = Instant::now();
    let audio = tone_color.convert(
        &source.samples,
        source.sample_rate,
        &source_se,
        &target,
        args.tau,
        args.seed,
    )?;
    let convert_s = convert_started.elapsed().as_secs_f64();
    let rate = tone_color.sample_rate();
    let mut sink: Box<dyn AudioSink> = match to_stdout {
        true => Box::new(WavSink::stdout(rate, SampleFormat::I16)?),
        false => Box::new(WavSink::create(&args.output, rate, SampleFormat::I16)?),
    };
    sink.write(&audio)?;
    sink.finish()?;
    let audio_s = audio.len() as f64 / f64::from(rate);
    if args.json {
        let report = serde_json::json!({
            "source": args.source, "reference": args.reference, "output": args.output,
            "converter": dir, "audio_s": audio_s, "load_s": load_s, "embed_s": embed_s,
            "convert_s": convert_s, "rtf": convert_s / audio_s.max(1e-9),
            "tau": args.tau, "seed": args.seed,
        });
        println!("{report}");
    } else if !to_stdout {
        eprintln!(
            "vivace: {audio_s:.2} s re-voiced in {convert_s:.2} s (RTF {:.3}; embeddings {embed_s:.2} s) -> {}",
            convert_s / audio_s.max(1e-9),
            args.output.display()
        );
    }
    Ok(())
}
