//! `vivace convert`: a Piper voice to a compact voice file, with the
//! conversion's fidelity measured on a test sentence.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use vivace::convert::{self, ConvertReport};
use vivace::voice_store::VoiceStore;
use vivace_models::compact;

#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// Piper voice: NAME.onnx (NAME.onnx.json beside it) or an installed voice
    /// name; the default voice when absent.
    voice: Option<String>,
    /// Output file (default: NAME.safetensors beside the .onnx).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Weight storage: f16 (half the size of the .onnx) or f32 (lossless).
    #[arg(long, default_value = "f16")]
    dtype: String,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
    /// Skip speaking a test sentence with both voices to measure the difference.
    #[arg(long)]
    no_check: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn convert(args: &ConvertArgs) -> Result<()> {
    let dtype = match args.dtype.parse::<candle_core::DType>() {
        Ok(d) if compact::storable(d) => d,
        _ => bail!(
            "--dtype {}: a compact voice stores f16 or f32 weights (bf16's 8-bit mantissa was measured to move the waveform by 36 %)",
            args.dtype
        ),
    };
    let store = VoiceStore::from_env()?;
    let source = store.resolve(args.voice.as_deref())?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| convert::default_output(&source));
    let mut report: ConvertReport = convert::convert(&source, &output, dtype, args.force)
        .with_context(|| format!("cannot convert {}", source.display()))?;
    if !args.no_check {
        report.fidelity = Some(
            convert::fidelity(&source, &output, &store.espeak_data_dir()).with_context(|| {
                format!(
                    "{} was written, but its fidelity check failed (--no-check skips it)",
                    output.display()
                )
            })?,
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    println!(
        "{} ({:.1} MiB) → {} ({:.1} MiB, {} weights, {:.0} % of the size)",
        report.source.display(),
        mib(report.source_bytes),
        report.output.display(),
        mib(report.output_bytes),
        report.stored_dtype,
        100.0 * report.output_bytes as f64 / report.source_bytes.max(1) as f64
    );
    if let Some(f) = &report.fidelity {
        println!(
            "fidelity: \"{}\" (noise off, on the original's durations) differs from the original by relative L2 {:.1e}; predicted durations differ for {} of {} ids",
            f.text,
            f.comparison.relative_l2,
            f.comparison.durations_differing,
            f.comparison.ids
        );
    }
    Ok(())
}
