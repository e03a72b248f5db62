//! `vivace say`: text to speech with Piper's flags, to a WAV file, stdout or
//! raw samples.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use vivace::family::{Request, SpeakerRef};
use vivace::synth::LoadOptions;
use vivace::synth::{SpeakReport, SynthError, Synthesizer};
use vivace::tone_color::{load_for_cloning, locate_converter};
use vivace::voice_store::VoiceStore;
use vivace_frontend::audio::{AudioSink, PostProcess, RawSink, SampleFormat, WavSink};

use crate::DeviceArg;

/// Output sample format.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SampleFormatArg {
    /// 16-bit PCM (Piper's format).
    S16,
    /// 32-bit float, for exact comparisons.
    F32,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SayArgs {
    /// Text to speak; read from --input-file or stdin when absent.
    text: Vec<OsString>,
    /// Voice: NAME.onnx (NAME.onnx.json beside it), a compact NAME.safetensors, an MMS checkpoint directory, an installed voice name, or a Kokoro voice such as kokoro:af_heart.
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
    /// Seed of the noise: the same seed and text give the same audio
    /// (Vivace's own; Piper draws fresh noise each time).
    #[arg(long)]
    seed: Option<u64>,
    /// Chatterbox: a reference recording (WAV) whose voice to clone; the
    /// checkpoint's built-in voice (conds.pt) when absent.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Clone this voice onto a Piper, MMS or Kokoro voice: OpenVoice v2's
    /// tone-colour converter re-voices each sentence with the timbre of this
    /// recording (WAV; 10 s or more of speech clones best) or embedding
    /// (`.npy` from `vivace clone-voice --save-embedding`).
    #[arg(long)]
    clone: Option<PathBuf>,
    /// --clone: the converter folder (`checkpoint.pth`, `config.json`);
    /// default: the one `vivace download openvoice` installs.
    #[arg(long, env = "VIVACE_OPENVOICE")]
    converter: Option<PathBuf>,
    /// --clone: embed the whole recording instead of its speech cut into
    /// ~10 s pieces by Silero VAD (which needs more than 5 s of speech).
    #[arg(long = "no-vad")]
    no_vad: bool,
    /// --clone: scale of the converter's sampling noise (0: deterministic).
    #[arg(long, default_value_t = vivace::tone_color::DEFAULT_TAU)]
    tau: f32,
    /// The language to speak: for a Piper voice, the espeak-ng voice to
    /// phonemize with instead of its own (`de`, `fr`, `cmn`, ...; fetches
    /// espeak-ng's data for every language once); for Chatterbox, the
    /// language code (the English checkpoint: `en`).
    #[arg(long)]
    language: Option<String>,
    /// Chatterbox: emotion exaggeration (0.5 neutral).
    #[arg(long)]
    exaggeration: Option<f64>,
    /// Chatterbox: classifier-free guidance weight (0 off; default 0.5).
    #[arg(long = "cfg-weight")]
    cfg_weight: Option<f64>,
    /// Chatterbox: sampling temperature (0: greedy; default 0.8).
    #[arg(long)]
    temperature: Option<f64>,
    /// Chatterbox: speech tokens per sentence at most (25 per second; default 1000).
    #[arg(long = "max-tokens")]
    max_tokens: Option<u64>,
    /// Chatterbox: append each sentence's speech tokens to this file, one per line.
    #[arg(long = "speech-tokens-out")]
    speech_tokens_out: Option<PathBuf>,
    /// Chatterbox: the flow's starting noise from a float32 `.npy` (80, frames) (parity runs).
    #[arg(long = "flow-noise")]
    flow_noise: Option<PathBuf>,
    /// Chatterbox: `0` turns the vocoder's random sine phases and noise off (parity runs).
    #[arg(long = "vocoder-noise", value_parser = clap::value_parser!(u8).range(0..=1))]
    vocoder_noise: Option<u8>,
    /// Chatterbox: flow decoder steps (default 10).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100))]
    steps: Option<u64>,
    /// Speaking rate as OpenAI's API and kokoro-onnx take it: 1 is the
    /// voice's own, 2 twice as fast (Kokoro: 0.5 to 2; Piper and MMS voices
    /// divide their length scale by it).
    #[arg(long)]
    speed: Option<f64>,
    /// Seconds of silence between sentences (Kokoro voices pause after each
    /// batch as kokoro-onnx does instead).
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
        if let Some(speed) = self.speed {
            if !(speed.is_finite() && (0.25..=4.0).contains(&speed)) {
                bail!(
                    "--speed must be between 0.25 and 4 (1 is the voice's own rate), got {speed}"
                );
            }
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

/// The Chatterbox flags as the family's parameters (a voice of another
/// family refuses them by name), and the reference recording as the speaker.
fn chatterbox_overrides(args: &SayArgs, request: &mut Request) -> Result<()> {
    for (name, value) in [
        ("exaggeration", args.exaggeration),
        ("cfg_weight", args.cfg_weight),
        ("temperature", args.temperature),
    ] {
        if let Some(v) = value {
            if !(v.is_finite() && v >= 0.0) {
                bail!(
                    "--{} must be a non-negative number, got {v}",
                    name.replace('_', "-")
                );
            }
            request.overrides.insert(name.into(), v.into());
        }
    }
    if let Some(n) = args.max_tokens {
        if n == 0 {
            bail!("--max-tokens must be at least 1");
        }
        request.overrides.insert("max_tokens".into(), n.into());
    }
    if let Some(n) = args.steps {
        request.overrides.insert("steps".into(), n.into());
    }
    if let Some(v) = args.vocoder_noise {
        request
            .overrides
            .insert("vocoder_noise".into(), (v == 1).into());
    }
    if let Some(path) = &args.flow_noise {
        request.overrides.insert(
            "flow_noise".into(),
            path.to_string_lossy().into_owned().into(),
        );
    }
    if let Some(language) = &args.language {
        request
            .overrides
            .insert("language".into(), language.clone().into());
    }
    if let Some(path) = &args.speech_tokens_out {
        // Start the file empty: each sentence appends its tokens.
        std::fs::write(path, "").with_context(|| format!("cannot write {}", path.display()))?;
        request.overrides.insert(
            "speech_tokens_out".into(),
            path.to_string_lossy().into_owned().into(),
        );
    }
    if let Some(path) = &args.reference {
        if args.speaker.is_some() {
            bail!("give either --speaker or --reference, not both");
        }
        let recording = vivace_frontend::speaker_audio::read_wav(path)
            .with_context(|| format!("cannot read the reference recording {}", path.display()))?;
        request.speaker = Some(SpeakerRef::Recording {
            samples: recording.samples,
            sample_rate: recording.sample_rate,
        });
    }
    Ok(())
}

pub(crate) fn say(args: &SayArgs) -> Result<()> {
    let plan = args.plan()?;
    if plan.lines.is_empty() {
        return Err(SynthError::EmptyText.into());
    }
    let optimizer = args.device.optimizer()?;
    let store = VoiceStore::from_env()?;
    let onnx = store.resolve(args.voice.as_deref())?;
    store.ensure_phonemizer_data(&onnx, args.language.as_deref())?;
    let tone_color = match &args.clone {
        Some(_) => {
            if args.reference.is_some() {
                bail!("give either --clone (a Piper, MMS or Kokoro voice) or --reference (Chatterbox), not both");
            }
            if !(args.tau.is_finite() && args.tau >= 0.0) {
                bail!("--tau must be a non-negative number, got {}", args.tau);
            }
            let dir = locate_converter(args.converter.as_deref(), &store)?;
            let tone_color = load_for_cloning(&dir, &optimizer.device.device, &store, !args.no_vad)
                .with_context(|| format!("cannot load the converter in {}", dir.display()))?;
            Some(std::sync::Arc::new(tone_color))
        }
        None => None,
    };
    let espeak_data = store.espeak_data_dir();
    let options = LoadOptions {
        espeak_voice: args.language.as_deref(),
        tone_color: tone_color.clone(),
        ..LoadOptions::new(&espeak_data)
    };
    let load_start = std::time::Instant::now();
    let (mut synth, device) =
        Synthesizer::load_planned(&onnx, &optimizer, args.device.is_explicit(), &options)
            .with_context(|| format!("cannot load voice {}", onnx.display()))?;
    synth.set_parallel_sentences(
        optimizer.plan.sentence_threads,
        optimizer.plan.stream_threads,
    );
    if args.verbose {
        // -v prints the stage breakdown: time the stages on any device.
        if let Ok(vits) = synth.vits() {
            vits.model().set_stage_timing(true);
        }
    }
    let load_time = load_start.elapsed();

    // The flags become the family's parameters here, by their JSON names.
    let mut request = Request {
        speaker: args.speaker.clone().map(SpeakerRef::Given),
        seed: args.seed,
        speed: args.speed,
        ..Request::default()
    };
    for (name, value) in [
        ("length_scale", args.length_scale),
        ("noise_scale", args.noise_scale),
        ("noise_w", args.noise_w_scale),
    ] {
        if let Some(v) = value {
            request.overrides.insert(name.into(), v.into());
        }
    }
    chatterbox_overrides(args, &mut request)?;
    if synth.vits().is_ok() {
        // A Piper voice took --language at load (its phonemizer's voice).
        request.overrides.remove("language");
    }
    if let (Some(reference), Some(tone_color)) = (&args.clone, &tone_color) {
        if !synth.voice().capabilities().clones
            || synth.voice().capabilities().family == "chatterbox"
        {
            bail!("--clone re-voices Piper, MMS and Kokoro voices; a Chatterbox voice clones by itself: give it --reference");
        }
        // The reference's tone colour: from a recording, or saved as .npy.
        let target = tone_color.embed_file(reference)?;
        request.speaker = Some(SpeakerRef::Embedding(target));
        request.overrides.insert("tau".into(), args.tau.into());
    }
    let params = synth.params(&request)?;
    if args.sentence_silence > 0.0 && synth.voice().capabilities().family == "kokoro" {
        eprintln!(
            "vivace: warning: --sentence-silence is not used by Kokoro voices, which pause after each batch as kokoro-onnx does"
        );
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
        let line_report = synth
            .speak(
                line,
                &params,
                &plan.post,
                args.sentence_silence,
                sink.as_mut(),
            )
            .map_err(|e| match e {
                SynthError::TooLong(too_long) => anyhow::anyhow!(
                    "{too_long}: lower the length scale (--length-scale), or split the text"
                ),
                other => other.into(),
            })?;
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
        let Ok(vits) = synth.vits() else {
            return Ok(());
        };
        let st = vits.model().stage_times();
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
