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
    /// .onnx (with its .onnx.json) or an installed name; or a Kokoro voice
    /// (`kokoro:af_heart`: kokoro-onnx's pipeline in the voice's language);
    /// the default voice when absent.
    #[arg(long, short = 'm', visible_alias = "model", env = "VIVACE_VOICE")]
    voice: Option<String>,
    /// The espeak-ng voice to phonemize with instead of the voice's own
    /// (`de`, `fr`, `cmn`, `en-gb-x-rp`, ...); for a Kokoro voice, one of
    /// Kokoro's languages (`en-us`, `en-gb`, `es`, `fr-fr`, `hi`, `it`,
    /// `ja`, `pt-br`, `cmn`).
    #[arg(long)]
    language: Option<String>,
    /// Print JSON: {"sentences": [{"phonemes": [...], "ids": [...]}]}, each
    /// phoneme one code point after NFD, as Piper's phonemizer returns it
    /// (Arabic diacritized first, as Piper's voices do); for Kokoro, one
    /// sentence per batch, its ids with the pads, `style_row` and
    /// `pause_after` (seconds).
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
    if vivace::family::kokoro::is_voice_pack(&onnx) {
        return kokoro(&store, &onnx, args, &text);
    }
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

/// `vivace phonemize` for a Kokoro voice: kokoro-onnx's batches.
fn kokoro(
    store: &VoiceStore,
    pack: &std::path::Path,
    args: &PhonemizeArgs,
    text: &str,
) -> Result<()> {
    use vivace_frontend::kokoro_text::{KokoroText, Language, Vocab};
    let name = pack
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let language = match &args.language {
        Some(code) => Language::from_code(code)?,
        None => Language::for_voice(name)
            .with_context(|| format!("{name} is not named like a Kokoro voice"))?,
    };
    // Beside the pack or in the store (a store name was fetched whole).
    let model = vivace::family::kokoro::model_dir(pack).with_context(|| {
        format!(
            "Kokoro's model is not beside {}: run `vivace download kokoro`",
            pack.display()
        )
    })?;
    let espeak = store.ensure_kokoro_espeak_data()?;
    let front = KokoroText::new(&espeak, Vocab::load(&model.join("vocab.json"))?);
    let batches = front.batches(text, language)?;
    if args.json {
        let list: Vec<serde_json::Value> = batches
            .iter()
            .map(|b| {
                serde_json::json!({
                    "phonemes": b.phonemes.chars().map(String::from).collect::<Vec<_>>(),
                    "ids": b.model_input(),
                    "style_row": b.style_row(510),
                    "pause_after": (f64::from(b.pause_seconds) * 1e3).round() / 1e3,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string(
                &serde_json::json!({ "language": language.code, "sentences": list })
            )?
        );
    } else {
        for batch in &batches {
            println!("{}", batch.phonemes);
        }
    }
    Ok(())
}
