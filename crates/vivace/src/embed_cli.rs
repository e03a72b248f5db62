//! `vivace embed` and `vivace similarity`: speaker embeddings of WAV
//! recordings from the command line (resemblyzer's GE2E voice encoder).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vivace::bench::{Variant, Workload};
use vivace::speaker::{cosine_similarity, Embedding, SpeakerEncoder};
use vivace::voice_store::{VoiceStore, RESEMBLYZER_ENCODER};
use vivace_perf::DeviceKind;

use crate::DeviceArg;

/// `--encoder` and `--device`, shared by `embed` and `similarity`.
#[derive(Debug, clap::Args)]
pub struct EncoderArgs {
    /// Voice-encoder weights: resemblyzer's pretrained.pt or Chatterbox's
    /// ve.safetensors; default resemblyzer 0.1.4's, fetched on first use.
    #[arg(long, env = "VIVACE_VOICE_ENCODER")]
    encoder: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

impl EncoderArgs {
    /// Plans the device, finds the weights and loads the encoder.
    pub fn load(&self) -> Result<SpeakerEncoder> {
        Ok(load_planned(&self.device, self.encoder.as_deref())?.0)
    }
}

/// The encoder weights: `given`, or resemblyzer's, fetched on first use.
fn encoder_weights(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(path) => Ok(path.to_path_buf()),
        None => VoiceStore::from_env()?
            .ensure_weights(&RESEMBLYZER_ENCODER)
            .context("cannot fetch the voice encoder's weights"),
    }
}

/// Plans `device`, loads the encoder there and sets its planned batch;
/// returns it with the device it runs on.
fn load_planned(
    device: &DeviceArg,
    weights: Option<&Path>,
) -> Result<(SpeakerEncoder, DeviceKind)> {
    let optimizer = device.optimizer()?;
    let weights = encoder_weights(weights)?;
    let (mut encoder, kind) =
        SpeakerEncoder::load_planned(&weights, &optimizer, device.is_explicit())?;
    let batch = encoder.plan_batch(&optimizer, &VoiceStore::from_env()?.batch_cache_path())?;
    tracing::info!("voice encoder on {kind}, batch {batch}");
    Ok((encoder, kind))
}

#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// WAV recordings (8/16/24/32-bit PCM or 32-bit float, any rate, mono or stereo).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print JSON: one object per file with its embedding.
    #[arg(long)]
    json: bool,
    /// Write the embeddings to this .npy file (float32; shape (256,) for one
    /// file, (files, 256) for several) instead of printing them.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    #[command(flatten)]
    encoder: EncoderArgs,
}

#[derive(Debug, clap::Args)]
pub struct SimilarityArgs {
    /// The first recording.
    a: PathBuf,
    /// The second recording.
    b: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    encoder: EncoderArgs,
}

/// `vivace embed`.
pub fn embed(args: &EmbedArgs) -> Result<()> {
    if let Some(out) = &args.output {
        if out.extension().and_then(|e| e.to_str()) != Some("npy") {
            anyhow::bail!(
                "{}: -o writes NumPy's format: give a file name ending in .npy",
                out.display()
            );
        }
    }
    let encoder = args.encoder.load()?;
    let embeddings = encoder.embed_files(&args.files)?;
    if let Some(out) = &args.output {
        write_npy(out, &embeddings)?;
        if args.json {
            let summary: Vec<_> = embeddings
                .iter()
                .map(|e| serde_json::json!({"file": e.file, "windows": e.windows, "speech_seconds": e.speech_seconds}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&embeddings)?)?;
    } else {
        for e in &embeddings {
            let numbers: Vec<String> = e.embedding.iter().map(|v| format!("{v:.7}")).collect();
            writeln!(stdout, "{}\t{}", e.file.display(), numbers.join(" "))?;
        }
    }
    Ok(())
}

/// `vivace similarity`.
pub fn similarity(args: &SimilarityArgs) -> Result<()> {
    let encoder = args.encoder.load()?;
    let both = encoder.embed_files(&[args.a.clone(), args.b.clone()])?;
    let cosine = cosine_similarity(&both[0].embedding, &both[1].embedding);
    if args.json {
        let report = serde_json::json!({
            "a": args.a,
            "b": args.b,
            "cosine_similarity": cosine,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{cosine:.4}");
    }
    Ok(())
}

/// Writes embeddings as a little-endian float32 `.npy` (format 1.0), via a
/// temporary file so a failed write leaves nothing behind.
fn write_npy(path: &Path, embeddings: &[Embedding]) -> Result<()> {
    let width = embeddings.first().map_or(0, |e| e.embedding.len());
    let shape = match embeddings.len() {
        1 => format!("({width},)"),
        n => format!("({n}, {width})"),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n', padded to 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + embeddings.len() * width * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&u16::try_from(header.len())?.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for e in embeddings {
        for v in &e.embedding {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.write_all(&bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct BenchEmbedRunArgs {
    /// Weights (default resemblyzer's, fetched on first use).
    #[arg(long)]
    encoder: Option<PathBuf>,
    #[arg(long)]
    device: String,
    #[arg(long, value_enum)]
    variant: Variant,
    #[arg(long)]
    runs: usize,
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// The second recording the default voice speaks when `bench --embed` gets
/// none (the first is the synthesis benchmark's medium paragraph).
const BENCH_LONG_TEXT: &str = "Visitors often ask where the lighthouse keeper lived. His house still stands at the end of the road, and on clear evenings you can see the lamp turning from the harbour.";

/// `vivace bench --embed`: baseline against the plan, in fresh processes.
pub fn bench_embed(
    device: &DeviceArg,
    audio: &[PathBuf],
    encoder: Option<&Path>,
    runs: usize,
    json: Option<&Path>,
) -> Result<()> {
    use vivace::embed_bench::{EmbedRunResult, EmbedSummary};
    let optimizer = device.optimizer()?;
    let exe =
        std::env::current_exe().context("cannot find the vivace executable to run measurements")?;
    let weights = encoder_weights(encoder)?;
    let spoken = tempfile::tempdir().context("cannot create a temporary directory")?;
    let files: Vec<PathBuf> = if audio.is_empty() {
        [
            ("medium", Workload::Medium.text()),
            ("long", BENCH_LONG_TEXT),
        ]
        .iter()
        .map(|(name, text)| {
            let path = spoken.path().join(format!("{name}.wav"));
            let status = std::process::Command::new(&exe)
                .args(["say", text, "-f"])
                .arg(&path)
                .status()
                .context("cannot start vivace say")?;
            anyhow::ensure!(
                status.success(),
                "speaking the benchmark text failed ({status})"
            );
            Ok(path)
        })
        .collect::<Result<_>>()?
    } else {
        audio.to_vec()
    };
    let mut summaries = Vec::new();
    for variant in [Variant::Baseline, Variant::Optimized] {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("bench-embed-run")
            .arg("--encoder")
            .arg(&weights)
            .args(["--device", &device.device])
            .args(["--runs", &runs.to_string()])
            .args(&files);
        let run: EmbedRunResult =
            crate::bench_cli::run_measurement(cmd, variant, &format!("embedding {variant:?}"))?;
        summaries.push(EmbedSummary::of(run));
    }
    println!(
        "{:<10} {:>5} {:>6} {:>8} {:>8} {:>15} {:>12} {:>11} {:>9}",
        "variant",
        "files",
        "batch",
        "cold s",
        "p50 s",
        "min-max s",
        "embeds/s",
        "audio s/s",
        "peak MiB"
    );
    for s in &summaries {
        println!(
            "{:<10} {:>5} {:>6} {:>8.3} {:>8.4} {:>15} {:>12.1} {:>11.1} {:>9.0}",
            format!("{:?}", s.run.variant).to_lowercase(),
            s.run.files,
            s.run.batch,
            s.run.cold_start_s,
            s.p50_s,
            format!("{:.4}-{:.4}", s.min_s, s.max_s),
            s.embeddings_per_s,
            s.audio_per_s,
            s.run
                .peak_rss
                .map_or(f64::NAN, |b| b as f64 / (1u64 << 20) as f64),
        );
    }
    let speedup = match summaries.as_slice() {
        [base, opt] => Some(opt.embeddings_per_s / base.embeddings_per_s),
        _ => None,
    };
    if let Some(x) = speedup {
        println!("\nspeedup (optimized / baseline embeddings per second): {x:.2}x");
    }
    if let Some(path) = json {
        let report = serde_json::json!({
            "hardware": optimizer.hardware,
            "plan": optimizer.plan,
            "encoder": weights,
            "files": files,
            "runs": runs,
            "results": summaries,
            "speedup": speedup,
        });
        crate::bench_cli::write_report(path, &report)?;
    }
    Ok(())
}

/// One variant of `bench --embed` in this (fresh) process; prints its JSON.
pub fn bench_embed_run(args: &BenchEmbedRunArgs, started: std::time::Instant) -> Result<()> {
    let (encoder, kind) = match args.variant {
        Variant::Optimized => {
            // The parent's precision reaches this process as its variable.
            let device = DeviceArg {
                device: args.device.clone(),
                precision: std::env::var("VIVACE_PRECISION").ok(),
            };
            load_planned(&device, args.encoder.as_deref())?
        }
        Variant::Baseline => {
            let chosen = vivace_perf::device::open(args.device.parse()?)?;
            let weights = encoder_weights(args.encoder.as_deref())?;
            let mut encoder = SpeakerEncoder::load(&weights, &chosen.device)?;
            encoder.set_batch_size(1);
            (encoder, chosen.kind)
        }
    };
    let result = vivace::embed_bench::measure_embeddings(
        &encoder,
        &args.files,
        args.variant,
        kind.to_string(),
        args.runs,
        started,
    )?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}
