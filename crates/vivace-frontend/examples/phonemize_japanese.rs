//! Times Piper's Japanese front end (OpenJTalk's dictionary in DICT, where
//! `vivace` keeps it: `~/.cache/vivace/weights/pyopenjtalk-plus-0.4.1.post9-dictionary`)
//! on the texts of the Japanese goldens' `piper` section
//! (`crates/vivace/tests/fixtures/japanese/njd.json`): the load and the
//! microseconds per character of `phonemize` (median of ROUNDS passes),
//! with Sudachi from SUDACHI (`~/.cache/vivace/weights/sudachidict_core-20261015`)
//! when given, as Piper reads. The 「何」 model is not loaded here (it lives
//! in `vivace-models`); it runs only on a standalone 何.
//!
//! Usage: cargo run --release -p vivace-frontend --example phonemize_japanese -- GOLDENS.json DICT [ROUNDS [SUDACHI]]

use std::time::Instant;

use vivace_frontend::japanese::sudachi::Sudachi;
use vivace_frontend::japanese::JapanesePhonemizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(goldens), Some(dict)) = (args.next(), args.next()) else {
        return Err("usage: phonemize_japanese GOLDENS.json DICT [ROUNDS]".into());
    };
    let rounds: usize = args.next().map_or(Ok(11), |r| r.parse())?;
    let sudachi = args.next();
    let goldens: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(goldens)?)?;
    let texts: Vec<String> = goldens["piper"]
        .as_array()
        .ok_or("no piper texts")?
        .iter()
        .filter_map(|c| c["text"].as_str().map(String::from))
        .collect();
    let start = Instant::now();
    let mut japanese = JapanesePhonemizer::load(std::path::Path::new(&dict))?;
    if let Some(dir) = sudachi {
        japanese = japanese.with_sudachi(Sudachi::open(std::path::Path::new(&dir))?);
    }
    let load = start.elapsed().as_secs_f64();
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for text in &texts {
            std::hint::black_box(japanese.phonemize(text));
        }
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"load_s\": {load:.3}, \"texts\": {}, \"chars\": {chars}, \"median_s\": {median:.5}, \"us_per_char\": {:.2}}}",
        texts.len(),
        median * 1e6 / chars as f64
    );
    Ok(())
}
