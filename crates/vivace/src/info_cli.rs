//! `vivace info` (the hardware and the plan for it) and `vivace validate`
//! (the performance layer's checks and the output's).

use anyhow::{bail, Result};
use vivace::voice_store::VoiceStore;

use crate::DeviceArg;

#[derive(Debug, clap::Args)]
pub(crate) struct InfoArgs {
    #[command(flatten)]
    device: DeviceArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    #[command(flatten)]
    info: InfoArgs,
    /// Voice to run the checks with: a Piper .onnx, a compact voice
    /// (.safetensors), an MMS checkpoint directory or an installed voice name;
    /// the default voice when absent (fetched if missing).
    #[arg(long, short = 'm', visible_alias = "model", env = "VIVACE_VOICE")]
    voice: Option<String>,
}

pub(crate) fn info(args: &InfoArgs) -> Result<()> {
    use vivace_models::nn::cpu_kernel;
    let optimizer = args.device.optimizer()?;
    if args.json {
        let report = serde_json::json!({
            "hardware": optimizer.hardware,
            "cpu_kernel": {"active": cpu_kernel::active().name(), "widest": cpu_kernel::detected().name()},
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
        "kernels      {} (widest here: {}; {} forces another path this CPU runs)",
        cpu_kernel::active(),
        cpu_kernel::detected(),
        cpu_kernel::ENV
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

pub(crate) fn validate(args: &ValidateArgs) -> Result<()> {
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
    let (passed, skipped, warned, failed) = (
        count(Status::Pass),
        count(Status::Skip),
        count(Status::Warn),
        count(Status::Fail),
    );
    if args.info.json {
        let report = serde_json::json!({
            "device": optimizer.device.kind,
            "checks": checks,
            "passed": passed,
            "skipped": skipped,
            "warned": warned,
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
        println!("\n{passed} passed, {skipped} skipped, {warned} warned, {failed} failed");
    }
    if failed > 0 {
        bail!("{failed} validation check(s) failed");
    }
    Ok(())
}
