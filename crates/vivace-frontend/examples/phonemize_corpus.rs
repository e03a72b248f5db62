//! Phonemizes a JSON list of texts, in order, and prints a JSON list of
//! `{"text", "sentences"}` (each sentence's phonemes joined), for comparing
//! with piper-tts on large corpora (`tools/compare_phonemes.py`).
//!
//! Usage: cargo run --release -p vivace-frontend --example phonemize_corpus -- TEXTS.json DATA_DIR

use vivace_frontend::phonemize::Phonemizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(data)) = (args.next(), args.next()) else {
        return Err("usage: phonemize_corpus TEXTS.json DATA_DIR".into());
    };
    let texts: Vec<String> = serde_json::from_str(&std::fs::read_to_string(input)?)?;
    let phonemizer = Phonemizer::new("en-us", std::path::Path::new(&data))?;
    let mut out = Vec::with_capacity(texts.len());
    for text in texts {
        let sentences: Vec<String> = phonemizer
            .phonemize(&text)?
            .into_iter()
            .map(|s| s.concat())
            .collect();
        out.push(serde_json::json!({ "text": text, "sentences": sentences }));
    }
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
