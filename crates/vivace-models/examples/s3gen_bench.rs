//! Times S3Gen stage by stage on a checkpoint (real-size random weights from
//! `tools/make_s3gen_goldens.py --real-size`, or the published file) and,
//! when the directory holds the goldens, checks the output against them.
//!
//!     cargo run --release -p vivace-models --example s3gen_bench -- DIR [--runs 3] [--steps N] [--meanflow] [--json] [--stages]
//!
//! `DIR` holds `config.json`, `s3gen.safetensors` (or
//! `s3gen_meanflow.safetensors` with `--meanflow`) and
//! `*_goldens.safetensors` (the prompt, tokens and flow noise). Prints the
//! median wall time of the encoder, the flow (all steps) and the vocoder;
//! `--stages` prints each stage's relative L2 against the goldens instead.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use vivace_models::chatterbox::s3gen::{Prompt, S3Gen, S3GenConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: s3gen_bench DIR [--runs N] [--steps N] [--meanflow] [--json]")?,
    );
    let (mut runs, mut steps, mut meanflow, mut json, mut stages) =
        (3usize, None, false, false, false);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().ok_or("--runs N")?.parse()?,
            "--steps" => steps = Some(args.next().ok_or("--steps N")?.parse()?),
            "--meanflow" => meanflow = true,
            "--json" => json = true,
            "--stages" => stages = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let name = if meanflow { "s3gen_meanflow" } else { "s3gen" };
    let cfg: S3GenConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let t = Instant::now();
    let model = S3Gen::load(
        &dir.join(format!("{name}.safetensors")),
        &cfg,
        &Device::Cpu,
        DType::F32,
    )?;
    let load_s = t.elapsed().as_secs_f64();
    let g = candle_core::safetensors::load(
        dir.join(format!("{name}_goldens.safetensors")),
        &Device::Cpu,
    )?;
    let tokens = |k: &str| -> Result<Vec<u32>, Box<dyn std::error::Error>> {
        let v: Vec<i64> = g.get(k).ok_or(k.to_string())?.to_vec1()?;
        Ok(v.into_iter().map(|t| t as u32).collect())
    };
    let prompt = Prompt {
        tokens: tokens("prompt_token")?,
        mel: g["prompt_feat"].clone(),
        embedding: g["embedding"].clone(),
    };
    let speech = tokens("speech_tokens")?;
    let steps = steps.unwrap_or(model.default_steps());
    let rel = |got: &Tensor, want: &Tensor| -> Result<f32, candle_core::Error> {
        let diff = (got - want)?.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt();
        Ok(diff / want.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt())
    };
    if stages {
        // Relative L2 of each stage against the reference's.
        let mu = model.encode(&prompt, &speech)?.squeeze(0)?.t()?;
        println!("mu: {:.2e}", rel(&mu, &g["mu"])?);
        let states = &g["euler_states"];
        let mel = model.flow(&prompt, &speech, &g["noise"], steps, &mut |k, x| {
            if let (Ok(x), Ok(want)) = (x.squeeze(0), states.get(k)) {
                println!("step {k}: {:.2e}", rel(&x, &want).unwrap_or(f32::NAN));
            }
        })?;
        println!("mel: {:.2e}", rel(&mel.squeeze(0)?, &g["mel"])?);
        let want_mel = g["mel"].unsqueeze(0)?;
        println!(
            "f0: {:.2e}",
            rel(&model.f0(&want_mel)?.squeeze(0)?, &g["f0"])?
        );
        println!(
            "vocoder alone: {:.2e}",
            rel(&model.vocode(&want_mel, None)?, &g["wav"])?
        );
        // The vocoder from the reference's F0 too: what is left is the decoder's.
        let source = model.vocoder().source(&g["f0"].unsqueeze(0)?, None)?;
        let source_err = rel(&source.flatten_all()?, &g["source"])?;
        println!("source from the reference's F0: {source_err:.2e}");
        let raw = model.vocoder().decode(&want_mel, &source)?.squeeze(0)?;
        let raw_err = rel(&raw, &g["raw_wav"])?;
        println!("vocoder from the reference's mel and F0 (before the fade-in): {raw_err:.2e}");
        println!(
            "end to end: {:.2e}",
            rel(&model.vocode(&mel, None)?, &g["wav"])?
        );
        return Ok(());
    }
    let (mut enc, mut flow, mut voc) = (vec![], vec![], vec![]);
    let mut wav = Tensor::zeros(1, DType::F32, &Device::Cpu)?;
    for _ in 0..runs {
        let t = Instant::now();
        model.encode(&prompt, &speech)?;
        enc.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mel = model.flow(&prompt, &speech, &g["noise"], steps, &mut |_, _| {})?;
        flow.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        wav = model.vocode(&mel, None)?;
        voc.push(t.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let audio_s = wav.dim(0)? as f64 / 24000.0;
    let (enc, flow, voc) = (median(&mut enc), median(&mut flow), median(&mut voc));
    let err = if steps == model.default_steps() {
        Some(rel(&wav, &g["wav"])?)
    } else {
        None
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "load_s": load_s, "audio_s": audio_s, "steps": steps,
                "encoder_s": enc, "flow_s": flow, "vocoder_s": voc,
                "total_s": flow + voc, "rtf": (flow + voc) / audio_s,
                "relative_l2_vs_reference": err,
            })
        );
    } else {
        println!("load {load_s:.2} s; {audio_s:.2} s of audio, {steps} steps, median of {runs}:");
        println!("  encoder {enc:.3} s (inside the flow too)");
        println!("  flow    {flow:.3} s");
        println!("  vocoder {voc:.3} s");
        println!(
            "  total   {:.3} s, RTF {:.3}",
            flow + voc,
            (flow + voc) / audio_s
        );
        if let Some(e) = err {
            println!("  waveform vs reference: relative L2 {e:.2e}");
        }
    }
    Ok(())
}
