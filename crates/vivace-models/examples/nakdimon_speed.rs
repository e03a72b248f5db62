//! Times Nakdimon (Piper's Hebrew diacritizer) on the Hebrew goldens' texts
//! (`crates/vivace/tests/fixtures/hebrew/goldens.json`, their `input_ids`),
//! with piper-tts's `nakdimon.onnx` (installed by `vivace download
//! espeak-ng-data` under `~/.cache/vivace/espeak-ng/piper-tts-1.8.0/hebrew/`):
//! load time, then microseconds per character, median of ROUNDS passes.
//!
//! Usage: cargo run --release -p vivace-models --example nakdimon_speed -- GOLDENS.json NAKDIMON.onnx [ROUNDS]

use std::time::Instant;

use vivace_models::nakdimon::Nakdimon;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(goldens), Some(model)) = (args.next(), args.next()) else {
        return Err("usage: nakdimon_speed GOLDENS.json NAKDIMON.onnx [ROUNDS]".into());
    };
    let rounds: usize = args.next().map_or(Ok(11), |r| r.parse())?;
    let start = Instant::now();
    let nakdimon = Nakdimon::load(std::path::Path::new(&model))?;
    println!("loaded in {:.3} s", start.elapsed().as_secs_f64());
    let goldens: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(goldens)?)?;
    let inputs: Vec<Vec<usize>> = goldens["cases"]
        .as_array()
        .ok_or("no cases")?
        .iter()
        .map(|c| {
            c["input_ids"]
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .filter_map(|v| v.as_u64())
                        .map(|v| v as usize)
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let chars: usize = inputs.iter().map(Vec::len).sum();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for ids in &inputs {
            nakdimon.predict(ids)?;
        }
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{:.1} us per character ({chars} characters, median of {rounds})",
        times[rounds / 2] * 1e6 / chars as f64
    );
    Ok(())
}
