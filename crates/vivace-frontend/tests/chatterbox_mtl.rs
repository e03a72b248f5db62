//! Chatterbox's multilingual text front end against the reference
//! (`chatterbox-tts` 0.1.7's `punc_norm` and `MTLTokenizer.encode`) on the
//! real `grapheme_mtl_merged_expanded_v1.json`: goldens from
//! `tools/make_mtl_tokenizer_goldens.py`: sentences in 22 languages,
//! Chinese with a synthetic `Cangjie5_TC.json` beside the tokenizer (the
//! real one is on the Hub only) and, as the reference without
//! spacy-pkuseg, no word segmentation.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vivace_frontend::chatterbox_text::{punc_norm_multilingual, MultilingualTokenizer};

#[derive(Deserialize)]
struct Case {
    language: String,
    text: String,
    normalized: String,
    ids: Vec<u32>,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/chatterbox_mtl")
        .join(name)
}

#[test]
fn every_sentence_tokenizes_as_the_reference() {
    let cases: Vec<Case> =
        serde_json::from_str(&std::fs::read_to_string(fixture("cases.json")).expect("cases"))
            .expect("cases parse");
    let tokenizer =
        MultilingualTokenizer::from_file(&fixture("grapheme_mtl_merged_expanded_v1.json"))
            .expect("tokenizer");
    let mut languages = std::collections::BTreeSet::new();
    for case in &cases {
        let normalized = punc_norm_multilingual(&case.text);
        assert_eq!(normalized, case.normalized, "{}: punc_norm", case.language);
        let ids = tokenizer
            .encode(&normalized, &case.language)
            .expect("tokenizes");
        assert_eq!(ids, case.ids, "{}: {:?}", case.language, case.text);
        languages.insert(case.language.as_str());
    }
    assert_eq!(languages.len(), 22);
}

#[test]
fn unknown_languages_and_missing_dictionaries_are_clear_errors() {
    let tokenizer =
        MultilingualTokenizer::from_file(&fixture("grapheme_mtl_merged_expanded_v1.json"))
            .expect("tokenizer");
    let err = tokenizer.encode("Hallo.", "xx").expect_err("unknown");
    let text = err.to_string();
    assert!(
        text.contains("\"xx\"") && text.contains("ar, da, de"),
        "{text}"
    );
    let err = tokenizer
        .encode("こんにちは。", "ja")
        .expect_err("no dictionaries yet");
    assert!(err.to_string().contains("pykakasi"), "{err}");
}
