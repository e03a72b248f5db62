//! Turbo's text front end against the reference (`tts_turbo.py`'s
//! `punc_norm`, then `AutoTokenizer` on GPT-2's real `vocab.json` and
//! `merges.txt` with two added tokens): goldens from
//! `tools/make_t3_goldens.py --turbo`, in the Turbo T3 fixture.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vivace_frontend::chatterbox_text::{punc_norm_turbo, Gpt2Tokenizer};

#[derive(Deserialize)]
struct Case {
    text: String,
    normalized: String,
    ids: Vec<u32>,
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vivace-models/tests/fixtures/t3_turbo")
}

#[test]
fn every_sentence_tokenizes_as_the_reference() {
    let cases: Vec<Case> = serde_json::from_str(
        &std::fs::read_to_string(fixture().join("tokenizer_cases.json")).expect("cases"),
    )
    .expect("cases parse");
    let tokenizer = Gpt2Tokenizer::from_dir(&fixture()).expect("GPT-2's files");
    assert_eq!(tokenizer.len(), 50259, "GPT-2's 50257 and two added");
    for case in &cases {
        let normalized = punc_norm_turbo(&case.text);
        assert_eq!(normalized, case.normalized, "punc_norm of {:?}", case.text);
        let ids = tokenizer.encode(&normalized).expect("tokenizes");
        assert_eq!(ids, case.ids, "{:?}", case.normalized);
    }
    assert_eq!(cases.len(), 10);
}

#[test]
fn missing_or_gapped_files_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Gpt2Tokenizer::from_dir(dir.path()).expect_err("empty folder");
    assert!(err.to_string().contains("vocab.json"), "{err}");
    for f in ["vocab.json", "merges.txt"] {
        std::fs::copy(fixture().join(f), dir.path().join(f)).expect("copy");
    }
    std::fs::write(
        dir.path().join("added_tokens.json"),
        r#"{"[laugh]": 50300}"#,
    )
    .expect("write");
    let err = Gpt2Tokenizer::from_dir(dir.path()).expect_err("a gap");
    assert!(err.to_string().contains("50257"), "{err}");
}
