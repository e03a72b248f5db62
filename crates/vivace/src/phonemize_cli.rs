//! `vivace phonemize`: the text front end alone, as Piper's phonemizer
//! gives it (phonemes and phoneme ids per sentence), to test and debug it
//! without synthesis.

use std::io::Read;

use anyhow::{bail, Context, Result};
use vivace::voice_store::VoiceStore;

use vivace::family::vits::PiperPhonemes;
use vivace_models::piper::{PiperConfig, PiperVoice};

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
    let phonemizer =
        PiperPhonemes::load(&config, args.language.as_deref(), &store.espeak_data_dir())?;

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
