//! Every language a translator needs: espeak-ng's phonemes in 45 languages
//! against piper-tts 1.8 (`tools/make_phoneme_goldens.py` over
//! `fixtures/phonemes/corpus.json`), through the library and the CLI, and
//! the default voice speaking another language's phonemes.

use std::collections::BTreeMap;

use vivace::voice_store::VoiceStore;
use vivace_frontend::phonemize::Phonemizer;
use vivace_models::piper::{PiperConfig, PiperVoice};

use crate::util::{default_voice, fixtures, scratch, stderr, vivace};

fn phoneme_goldens() -> serde_json::Value {
    let path = fixtures().join("phonemes/piper.json");
    let text = std::fs::read_to_string(&path).expect("read the phoneme goldens");
    serde_json::from_str(&text).expect("parse the phoneme goldens")
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

/// The store's espeak-ng data folder, with every language installed.
fn all_languages() -> std::path::PathBuf {
    let store = VoiceStore::from_env().expect("a cache directory");
    store
        .ensure_espeak_languages()
        .unwrap_or_else(|e| panic!("the tests need espeak-ng's data: {e}"));
    store.espeak_data_dir()
}

#[test]
fn phonemes_and_ids_match_piper_in_every_language() {
    let root = all_languages();
    let config = PiperConfig::read(&PiperVoice::config_path(default_voice())).expect("config");
    // English from the built-in data first (a fresh root), then every
    // language: a process that starts with English switches data.
    let english_only = scratch();
    let english = Phonemizer::new("en-us", english_only.path()).expect("built-in English");
    let goldens = phoneme_goldens();
    let cases = goldens["cases"].as_array().expect("cases");
    let mut agreement: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for case in cases {
        let voice = case["voice"].as_str().expect("voice");
        let text = case["text"].as_str().expect("text");
        let phonemizer = Phonemizer::new(voice, &root).expect("every language's data");
        let got = phonemizer.phonemize(text).expect("phonemize");
        let want = case["sentences"].as_array().expect("sentences");
        let same = got.len() == want.len()
            && got.iter().zip(want).all(|(g, w)| {
                *g == strings(&w["phonemes"])
                    && config.phonemes_to_ids(g).0
                        == w["ids"]
                            .as_array()
                            .expect("ids")
                            .iter()
                            .map(|v| v.as_i64().expect("an id"))
                            .collect::<Vec<_>>()
            });
        let entry = agreement.entry(voice).or_default();
        entry.1 += 1;
        if same {
            entry.0 += 1;
        } else {
            misses.push(format!(
                "{voice}: {text}\n  piper:  {want:?}\n  vivace: {got:?}"
            ));
        }
    }
    // The English phonemizer made before the switch still agrees.
    let first_english = cases
        .iter()
        .find(|c| c["voice"] == "en-us")
        .expect("an en-us case");
    let got = english
        .phonemize(first_english["text"].as_str().expect("text"))
        .expect("phonemize after the switch");
    assert_eq!(got[0], strings(&first_english["sentences"][0]["phonemes"]));

    let report: Vec<String> = agreement
        .iter()
        .map(|(voice, (same, all))| format!("{voice} {same}/{all}"))
        .collect();
    eprintln!("agreement with piper-tts 1.8: {}", report.join(", "));
    assert!(agreement.len() >= 30, "{} languages", agreement.len());
    assert!(misses.is_empty(), "{}", misses.join("\n"));
}

/// `vivace phonemize --json` prints what piper-tts gives, per sentence.
#[test]
fn phonemize_cli_prints_piper_phonemes_and_ids() {
    all_languages();
    let goldens = phoneme_goldens();
    for voice in ["de", "ru", "cmn"] {
        let case = goldens["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| c["voice"] == voice)
            .expect("a case");
        let out = vivace()
            .args(["phonemize", "--json", "--language", voice])
            .arg(case["text"].as_str().expect("text"))
            .output()
            .expect("run vivace phonemize");
        assert!(out.status.success(), "{}", stderr(&out));
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(printed["sentences"], case["sentences"], "{voice}");
    }
    // An espeak-ng voice that does not exist is a clear error.
    let out = vivace()
        .args(["phonemize", "--language", "xx-nowhere", "text"])
        .output()
        .expect("run vivace phonemize");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no voice `xx-nowhere`"),
        "{}",
        stderr(&out)
    );
}

/// The default (English) voice speaks German phonemes end to end: the
/// whole path runs, and the audio differs from the English reading.
#[test]
fn the_default_voice_speaks_another_languages_phonemes() {
    all_languages();
    let dir = scratch();
    let text = "Am 1. Mai kostete das Brot drei Euro.";
    let mut lengths = Vec::new();
    for language in ["de", "en-us"] {
        let wav = dir.path().join(format!("{language}.wav"));
        let out = vivace()
            .args(["say", "--seed", "1", "--language", language, "-f"])
            .arg(&wav)
            .arg(text)
            .output()
            .expect("run vivace say");
        assert!(out.status.success(), "{language}: {}", stderr(&out));
        let reader = hound::WavReader::open(&wav).expect("a WAV");
        let samples: Vec<i16> = reader.into_samples().map(|s| s.expect("sample")).collect();
        assert!(
            samples.len() > 22_050,
            "{language}: {} samples",
            samples.len()
        );
        assert!(
            samples.iter().any(|s| s.unsigned_abs() > 1000),
            "{language}: silent"
        );
        lengths.push(samples.len());
    }
    assert_ne!(
        lengths[0], lengths[1],
        "German and English readings are the same length"
    );
}
