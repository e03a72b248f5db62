//! Times MeCab (OpenJTalk's dictionary in DICT, `vivace`'s store keeps it
//! in `~/.cache/vivace/weights/pyopenjtalk-plus-0.4.1.post9-dictionary`)
//! on the MeCab goldens' inputs (`crates/vivace/tests/fixtures/japanese/mecab.json`):
//! the dictionary's load and the microseconds per input character (median
//! of ROUNDS passes).
//!
//! Usage: cargo run --release -p vivace-frontend --example mecab_corpus -- GOLDENS.json DICT [ROUNDS]

use std::time::Instant;

use vivace_frontend::japanese::mecab::Mecab;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(goldens), Some(dict)) = (args.next(), args.next()) else {
        return Err("usage: mecab_corpus GOLDENS.json DICT [ROUNDS]".into());
    };
    let rounds: usize = args.next().map_or(Ok(11), |r| r.parse())?;
    let goldens: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(goldens)?)?;
    let inputs: Vec<String> = goldens["cases"]
        .as_array()
        .ok_or("no cases")?
        .iter()
        .filter_map(|c| c["input"].as_str().map(String::from))
        .collect();
    let start = Instant::now();
    let mecab = Mecab::open(std::path::Path::new(&dict))?;
    let load = start.elapsed().as_secs_f64();
    let chars: usize = inputs.iter().map(|t| t.chars().count()).sum();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for text in &inputs {
            std::hint::black_box(mecab.parse(text));
        }
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"load_s\": {load:.3}, \"texts\": {}, \"chars\": {chars}, \"median_s\": {median:.5}, \"us_per_char\": {:.2}}}",
        inputs.len(),
        median * 1e6 / chars as f64
    );
    Ok(())
}
