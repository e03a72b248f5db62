//! Times Piper's Arabic diacritizer on the tashkeel goldens' texts
//! (`crates/vivace/tests/fixtures/tashkeel/goldens.json`), with piper-tts's
//! `tashkeel/` folder (installed by `vivace download espeak-ng-data` under
//! `~/.cache/vivace/espeak-ng/piper-tts-1.8.0/tashkeel`): load time, then
//! microseconds per character, median of ROUNDS passes.
//!
//! Usage: cargo run --release -p vivace-models --example tashkeel_speed -- GOLDENS.json TASHKEEL_DIR [ROUNDS]

use std::time::Instant;

use vivace_models::tashkeel::Diacritizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(goldens), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: tashkeel_speed GOLDENS.json TASHKEEL_DIR [ROUNDS]".into());
    };
    let rounds: usize = args.next().map_or(Ok(11), |r| r.parse())?;
    let start = Instant::now();
    let diacritizer = Diacritizer::load(std::path::Path::new(&dir))?;
    println!("loaded in {:.3} s", start.elapsed().as_secs_f64());
    let goldens: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(goldens)?)?;
    let texts: Vec<&str> = goldens["cases"]
        .as_array()
        .ok_or("no cases")?
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect();
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for text in &texts {
            diacritizer.diacritize(text)?;
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
