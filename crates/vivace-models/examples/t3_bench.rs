//! Times T3 on a checkpoint (real-size random weights from
//! `tools/make_t3_goldens.py --real-size`, or the published file): the
//! conditioning, the prefill and a fixed number of decoded tokens with the
//! reference's default sampling (CFG 0.5, a seeded source).
//!
//!     cargo run --release -p vivace-models --example t3_bench -- DIR [--tokens 250] [--text 60] [--precision bf16] [--runs 3] [--batch N] [--json]
//!
//! `DIR` holds `t3_cfg.safetensors` and `conds.pt`. The text is `--text`
//! fixed token ids. Prints the median prefill time (a voice's first
//! sentence: the whole prompt; a next one: the text after the kept
//! prefix) and decode rate
//! (tokens/s; with `--batch N`, N sequences decoded together, the rate
//! summed over them), and the process's peak resident memory.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;
use vivace_models::chatterbox::t3::timing::{prompt_positions, synthetic_text};
use vivace_models::chatterbox::t3::{DecodeParams, Precision, T3Conditioning, T3};
use vivace_models::nn::sampling::SeededSource;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage =
        "usage: t3_bench DIR [--tokens N] [--text N] [--precision f32|bf16] [--runs N] [--batch N] [--json]";
    let dir = PathBuf::from(args.next().ok_or(usage)?);
    let (mut tokens, mut text_len, mut runs, mut json) = (250usize, 60usize, 1usize, false);
    let mut batch = 1usize;
    let mut precision = Precision::F32;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tokens" => tokens = args.next().ok_or(usage)?.parse()?,
            "--text" => text_len = args.next().ok_or(usage)?.parse()?,
            "--runs" => runs = args.next().ok_or(usage)?.parse()?,
            "--precision" => precision = args.next().ok_or(usage)?.parse()?,
            "--batch" => batch = args.next().ok_or(usage)?.parse::<usize>()?.max(1),
            "--json" => json = true,
            other => return Err(format!("unknown argument {other}; {usage}").into()),
        }
    }
    let t = Instant::now();
    let file = [
        "t3_cfg.safetensors",
        "t3_mtl23ls_v2.safetensors",
        "t3_turbo_v1.safetensors",
    ]
    .iter()
    .map(|f| dir.join(f))
    .find(|p| p.is_file())
    .ok_or("DIR has no t3_cfg.safetensors, t3_mtl23ls_v2.safetensors or t3_turbo_v1.safetensors")?;
    let t3 = T3::load(&file, &Device::Cpu, precision)?;
    let load_s = t.elapsed().as_secs_f64();
    let cond = T3Conditioning::from_conds(&dir.join("conds.pt"))?;
    let text = synthetic_text(t3.config().variant, text_len);
    let params = DecodeParams {
        max_tokens: tokens,
        ..DecodeParams::defaults(t3.config().variant)
    };
    let (mut cond_s, mut prefill_s, mut sentence_s, mut decode_rate, mut generated) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0);
    let mut positions = 0;
    for run in 0..runs {
        let t = Instant::now();
        let conditioning = t3.conditioning(&cond)?;
        cond_s.push(t.elapsed().as_secs_f64());
        positions = prompt_positions(t3.config().variant, conditioning.dim(1)?, text_len);
        // A voice's first sentence: the whole prompt, keeping its prefix.
        let t = Instant::now();
        let mut gens = Vec::with_capacity(batch);
        let mut prefix = None;
        for b in 0..batch {
            let source = Box::new(SeededSource::new((run * batch + b) as u64));
            let (g, p) = t3.start_keeping_prefix(&conditioning, &text, &params, source)?;
            gens.push(g);
            prefix = Some(p);
        }
        prefill_s.push(t.elapsed().as_secs_f64() / batch as f64);
        // Its next sentences: the text after the kept prefix.
        if let Some(prefix) = &prefix {
            let source = Box::new(SeededSource::new(0));
            let t = Instant::now();
            t3.start_after(prefix, &text, &params, source)?;
            sentence_s.push(t.elapsed().as_secs_f64());
        }
        let t = Instant::now();
        loop {
            let mut refs: Vec<&mut _> = gens.iter_mut().collect();
            if t3.step(&mut refs)?.iter().all(Option::is_none) {
                break;
            }
        }
        generated = gens.iter().map(|g| g.generated().len()).sum();
        decode_rate.push(generated as f64 / t.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (cond_s, prefill_s, sentence_s, rate) = (
        median(&mut cond_s),
        median(&mut prefill_s),
        median(&mut sentence_s),
        median(&mut decode_rate),
    );
    let peak_mb = peak_rss_mb();
    if json {
        println!(
            "{{\"load_s\": {load_s:.3}, \"conditioning_s\": {cond_s:.4}, \"prefill_s\": {prefill_s:.4}, \"sentence_prefill_s\": {sentence_s:.4}, \"tokens\": {generated}, \"tokens_per_s\": {rate:.3}, \"peak_rss_mb\": {peak_mb:.0}, \"precision\": \"{precision:?}\", \"batch\": {batch}, \"prefill_positions\": {positions}}}"
        );
    } else {
        println!(
            "load {load_s:.2} s, conditioning {cond_s:.3} s, prefill ({} positions) {prefill_s:.3} s (a next sentence after the voice's kept prefix: {sentence_s:.3} s), decode {generated} tokens ({batch} at once) at {rate:.2} tokens/s, peak RSS {peak_mb:.0} MB ({precision:?})",
            positions
        );
    }
    Ok(())
}

/// The process's peak resident set (Linux `VmHWM`), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
