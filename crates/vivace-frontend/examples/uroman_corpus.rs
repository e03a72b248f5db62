//! Romanizes the uroman goldens' texts (`crates/vivace/tests/fixtures/
//! uroman/uroman.json`) with uroman's data folder and prints each miss and
//! the agreement per script, then the time per character.
//!
//! Usage: cargo run --release -p vivace-frontend --example uroman_corpus -- GOLDENS.json UROMAN_DATA_DIR

use std::collections::BTreeMap;
use std::time::Instant;

use vivace_frontend::uroman::Uroman;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(goldens), Some(data)) = (args.next(), args.next()) else {
        return Err("usage: uroman_corpus GOLDENS.json UROMAN_DATA_DIR".into());
    };
    let start = Instant::now();
    let uroman = Uroman::load(std::path::Path::new(&data))?;
    println!("loaded in {:.3} s", start.elapsed().as_secs_f64());
    let goldens: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(goldens)?)?;
    let mut per_script: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let cases = goldens["cases"].as_array().ok_or("no cases")?;
    let mut chars = 0;
    let start = Instant::now();
    for case in cases {
        let text = case["text"].as_str().ok_or("no text")?;
        let want = case["romanized"].as_str().ok_or("no romanized")?;
        let got = uroman.romanize(text, case["lcode"].as_str());
        chars += text.chars().count();
        let entry = per_script
            .entry(case["script"].as_str().unwrap_or("?").to_string())
            .or_default();
        entry.1 += 1;
        if got == want {
            entry.0 += 1;
        } else {
            println!("MISS {text}\n   uroman: {want:?}\n   vivace: {got:?}");
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    for (script, (same, all)) in &per_script {
        println!("{script:<16} {same}/{all}");
    }
    println!("{:.1} us per character", elapsed * 1e6 / chars as f64);
    Ok(())
}
