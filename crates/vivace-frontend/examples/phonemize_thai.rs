//! Times Piper's Thai front end on the Thai goldens
//! (`crates/vivace/tests/fixtures/thai/goldens.json`) with TLTK's tables
//! in DATA (`vivace download tltk` prints the folder): the load, and the
//! microseconds per input character over the 46 texts (median of ROUNDS
//! passes, each text in a fresh TLTK state as Piper's first text), with the
//! texts identical to piper-tts.
//!
//! Usage: cargo run --release -p vivace-frontend --example phonemize_thai -- GOLDENS.json DATA [ROUNDS]

use std::time::Instant;

use vivace_frontend::thai::ThaiPhonemizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(goldens), Some(data)) = (args.next(), args.next()) else {
        return Err("usage: phonemize_thai GOLDENS.json DATA [ROUNDS]".into());
    };
    let rounds: usize = args.next().map_or(Ok(11), |r| r.parse())?;
    let goldens: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(goldens)?)?;
    let start = Instant::now();
    let thai = ThaiPhonemizer::load(std::path::Path::new(&data))?;
    let load = start.elapsed();
    let cases = goldens["cases"].as_array().ok_or("no cases")?;
    let mut same = 0;
    let mut chars = 0;
    for case in cases {
        let text = case["text"].as_str().ok_or("no text")?;
        chars += text.chars().count();
        let want: Vec<Vec<String>> = case["sentences"]
            .as_array()
            .ok_or("no sentences")?
            .iter()
            .map(|s| {
                s["phonemes"]
                    .as_array()
                    .map(|p| {
                        p.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        if thai.phonemize(text) == want {
            same += 1;
        }
    }
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for case in cases {
            std::hint::black_box(thai.phonemize(case["text"].as_str().unwrap_or_default()));
        }
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"load_s\": {:.3}, \"texts\": {}, \"same\": {same}, \"chars\": {chars}, \"median_s\": {median:.4}, \"us_per_char\": {:.1}}}",
        load.as_secs_f64(),
        cases.len(),
        median * 1e6 / chars as f64
    );
    Ok(())
}
