//! Times the phonemizer per language on the phoneme goldens
//! (`crates/vivace/tests/fixtures/phonemes/piper.json`), with every
//! language's espeak-ng data under DATA_ROOT (`vivace download
//! espeak-ng-data` installs it in `~/.cache/vivace/espeak-ng`), and prints
//! per language the texts identical to piper-tts and the microseconds per
//! input character (median of ROUNDS passes).
//!
//! Usage: cargo run --release -p vivace-frontend --example phonemize_languages -- GOLDENS.json DATA_ROOT [ROUNDS]

use std::collections::BTreeMap;
use std::time::Instant;

use vivace_frontend::phonemize::Phonemizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(goldens), Some(root)) = (args.next(), args.next()) else {
        return Err("usage: phonemize_languages GOLDENS.json DATA_ROOT [ROUNDS]".into());
    };
    let rounds: usize = args.next().map_or(Ok(11), |r| r.parse())?;
    let goldens: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(goldens)?)?;
    let mut by_voice: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for case in goldens["cases"].as_array().ok_or("no cases")? {
        let want = case["sentences"]
            .as_array()
            .ok_or("no sentences")?
            .iter()
            .map(|s| {
                s["phonemes"]
                    .as_array()
                    .map(|p| p.iter().filter_map(|x| x.as_str()).collect::<String>())
                    .unwrap_or_default()
            })
            .collect();
        let voice = case["voice"].as_str().ok_or("no voice")?.to_string();
        let text = case["text"].as_str().ok_or("no text")?.to_string();
        by_voice.entry(voice).or_default().push((text, want));
    }
    println!("voice        same  chars  us/char");
    for (voice, cases) in &by_voice {
        let phonemizer = Phonemizer::new(voice, std::path::Path::new(&root))?;
        let same = cases
            .iter()
            .filter(|(text, want)| {
                phonemizer
                    .phonemize(text)
                    .ok()
                    .is_some_and(|got| got.iter().map(|s| s.concat()).collect::<Vec<_>>() == *want)
            })
            .count();
        let chars: usize = cases.iter().map(|(t, _)| t.chars().count()).sum();
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let start = Instant::now();
            for (text, _) in cases {
                phonemizer.phonemize(text)?;
            }
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{voice:<12} {same}/{:<2} {chars:>5}  {:>7.2}",
            cases.len(),
            median * 1e6 / chars as f64
        );
    }
    Ok(())
}
