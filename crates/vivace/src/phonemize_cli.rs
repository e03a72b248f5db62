//! `vivace phonemize`: the text front end alone, as Piper's phonemizer
//! gives it (phonemes and phoneme ids per sentence), to test and debug it
//! without synthesis.

use std::io::Read;

use anyhow::{bail, Context, Result};
use std::sync::Arc;
use vivace::voice_store::VoiceStore;

use vivace_frontend::phonemize::{Phonemizer, TextFilter, ALL_LANGUAGES_DIR};
use vivace_models::piper::{PiperConfig, PiperVoice};
use vivace_models::tashkeel::Diacritizer;

/// Flags of `vivace phonemize`.
#[derive(Debug, clap::Args)]
pub(crate) struct PhonemizeArgs {
    /// The Piper voice whose espeak-ng voice and phoneme map to use: a
    /// .onnx (with its .onnx.json) or an installed name; the default voice
    /// when absent.
    #[arg(long, short = 'm', visible_alias = "model", env = "VIVACE_VOICE")]
    voice: Option<String>,
    /// The espeak-ng voice to phonemize with instead of the voice's own
    /// (`de`, `fr`, `cmn`, `en-gb-x-rp`, ...).
    #[arg(long)]
    language: Option<String>,
    /// Print JSON: {"sentences": [{"phonemes": [...], "ids": [...]}]}, each
    /// phoneme one code point after NFD, as Piper's phonemizer returns it
    /// (Arabic diacritized first, as Piper's voices do).
    #[arg(long)]
    json: bool,
    /// The text (its arguments joined by spaces); read from stdin when absent.
    text: Vec<String>,
}

pub(crate) fn phonemize(args: &PhonemizeArgs) -> Result<()> {
    let text = if args.text.is_empty() {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the text from stdin (it must be UTF-8)")?;
        text
    } else {
        args.text.join(" ")
    };
    let store = VoiceStore::from_env()?;
    let onnx = store.resolve(args.voice.as_deref())?;
    let config_path = PiperVoice::config_path(&onnx);
    if onnx.extension().is_none_or(|e| e != "onnx") || !config_path.is_file() {
        bail!(
            "{} is not a Piper voice (a .onnx with its .onnx.json beside it): only Piper voices phonemize",
            onnx.display()
        );
    }
    let config = PiperConfig::read(&config_path)?;
    config.check_phoneme_type(&config_path)?;
    store.ensure_phonemizer_data(&onnx, args.language.as_deref())?;
    let espeak_voice = args.language.as_deref().unwrap_or(&config.espeak.voice);
    let mut phonemizer = Phonemizer::new(espeak_voice, &store.espeak_data_dir())?
        .with_vowel_clusters(config.vowel_clusters.clone());
    if espeak_voice == "ar" {
        // As an Arabic voice speaks: Piper's diacritizer first.
        let dir = store
            .espeak_data_dir()
            .join(ALL_LANGUAGES_DIR)
            .join("tashkeel");
        let diacritizer = Arc::new(Diacritizer::load(&dir)?);
        phonemizer = phonemizer.with_text_filter(TextFilter(Arc::new(move |part: &str| {
            diacritizer.diacritize(part).map_err(|e| e.to_string())
        })));
    }

    let mut sentences = Vec::new();
    for phonemes in phonemizer.phonemize(&text)? {
        if phonemes.is_empty() {
            continue; // as Piper: nothing to say
        }
        let (ids, missing) = config.phonemes_to_ids(&phonemes);
        if !missing.is_empty() {
            eprintln!(
                "vivace: warning: phonemes missing from {}'s id map were dropped: {}",
                onnx.display(),
                missing.join(" ")
            );
        }
        sentences.push((phonemes, ids));
    }
    if args.json {
        let list: Vec<serde_json::Value> = sentences
            .iter()
            .map(|(phonemes, ids)| serde_json::json!({ "phonemes": phonemes, "ids": ids }))
            .collect();
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({ "sentences": list }))?
        );
    } else {
        for (phonemes, _) in &sentences {
            println!("{}", phonemes.concat());
        }
    }
    Ok(())
}
