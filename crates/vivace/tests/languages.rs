//! Every language a translator needs: espeak-ng's phonemes in 45 languages
//! against piper-tts 1.8 (`tools/make_phoneme_goldens.py` over
//! `fixtures/phonemes/corpus.json`), through the library and the CLI, and
//! the default voice speaking another language's phonemes.

use std::collections::BTreeMap;

use vivace::voice_store::VoiceStore;
use vivace_frontend::phonemize::Phonemizer;
use vivace_models::piper::{PiperConfig, PiperVoice};

use crate::util::{default_voice, fixtures, say_samples, scratch, stderr, vivace};

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

fn uroman_goldens() -> serde_json::Value {
    let path = fixtures().join("uroman/uroman.json");
    let text = std::fs::read_to_string(&path).expect("read the uroman goldens");
    serde_json::from_str(&text).expect("parse the uroman goldens")
}

/// uroman in Rust against the `uroman` package (1.3.1.1) on 138 texts in
/// more than 20 scripts, numbers included (`tools/make_uroman_goldens.py`): as a
/// library call and as the command romanizes (cut at spaces).
#[test]
fn uroman_matches_the_python_package_in_every_script() {
    let uroman = vivace::front_ends::uroman().expect("uroman's data");
    let goldens = uroman_goldens();
    let mut groups: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for case in goldens["cases"].as_array().expect("cases") {
        let text = case["text"].as_str().expect("text");
        let lcode = case["lcode"].as_str();
        let whole = uroman.romanize(text, lcode);
        let by_token = uroman.romanize_by_token(text, lcode);
        let entry = groups
            .entry(case["script"].as_str().expect("script"))
            .or_default();
        entry.1 += 1;
        if whole == case["romanized"] && by_token == case["by_token"] {
            entry.0 += 1;
        } else {
            misses.push(format!(
                "{text} ({lcode:?})\n  uroman: {} / {}\n  vivace: {whole} / {by_token}",
                case["romanized"], case["by_token"]
            ));
        }
    }
    let report: Vec<String> = groups
        .iter()
        .map(|(g, (s, a))| format!("{g} {s}/{a}"))
        .collect();
    eprintln!("agreement with uroman 1.3.1.1: {}", report.join(", "));
    assert!(groups.len() >= 15, "{} groups", groups.len());
    assert!(misses.is_empty(), "{}", misses.join("\n"));
}

/// An `is_uroman` MMS voice reads native-script text: the ids are those of
/// transformers' `VitsTokenizer` with uroman installed
/// (`tools/make_mms_uroman_goldens.py`), and `vivace say` speaks it.
#[test]
fn is_uroman_mms_voices_read_native_script_as_transformers_does() {
    let dir = scratch();
    let voice = dir.path().join("mms-uroman");
    std::fs::create_dir(&voice).expect("voice folder");
    let source = fixtures().join("mms/tiny-sdp");
    for entry in std::fs::read_dir(&source).expect("fixture") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("golden") {
            continue;
        }
        std::fs::copy(entry.path(), voice.join(&name)).expect("copy");
    }
    let config_path = voice.join("tokenizer_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("config"))
            .expect("json");
    config["is_uroman"] = true.into();
    config["language"] = "hin".into();
    std::fs::write(&config_path, config.to_string()).expect("write config");

    let goldens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("mms/uroman_ids.json")).expect("goldens"),
    )
    .expect("json");
    let tokenizer = vivace_frontend::vits_tokenizer::VitsTokenizer::from_dir(&voice)
        .expect("tokenizer")
        .with_uroman(vivace::front_ends::uroman().expect("uroman's data"));
    for case in goldens["cases"].as_array().expect("cases") {
        let text = case["text"].as_str().expect("text");
        let want: Vec<i64> = case["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_i64().expect("an id"))
            .collect();
        assert_eq!(tokenizer.encode(text).expect("encode"), want, "{text}");
    }

    let samples = say_samples(&voice, "Привет, мир! नमस्ते।", dir.path());
    assert!(samples.iter().any(|s| s.unsigned_abs() > 100), "silent");
}

/// `vivace romanize` prints one line per text, and reads `::lcode` lines
/// from stdin, as the `uroman` command does.
#[test]
fn romanize_cli_prints_uromans_lines() {
    vivace::front_ends::uroman().expect("uroman's data");
    let goldens = uroman_goldens();
    let cases: Vec<&serde_json::Value> = goldens["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["lcode"].is_null())
        .take(20)
        .collect();
    let out = vivace()
        .arg("romanize")
        .args(cases.iter().map(|c| c["text"].as_str().expect("text")))
        .output()
        .expect("run vivace romanize");
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).expect("UTF-8");
    let want: Vec<&str> = cases
        .iter()
        .map(|c| c["by_token"].as_str().expect("by_token"))
        .collect();
    assert_eq!(printed.lines().collect::<Vec<_>>(), want);

    use std::io::Write;
    let mut child = vivace()
        .arg("romanize")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run vivace romanize");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all("::lcode ukr Київ — столиця\nこんにちは\n".as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).expect("UTF-8"),
        "::lcode ukr Kyiv — stolytsya\nkonnichiha\n"
    );
}

/// Piper's Arabic diacritizer (libtashkeel's model) against piper-tts 1.8
/// with onnxruntime (`tools/make_tashkeel_goldens.py`): each character's
/// class probabilities within 1e-4, the same predictions, the same text.
#[test]
fn arabic_diacritization_matches_piper() {
    let dir = all_languages().join("piper-tts-1.8.0/tashkeel");
    let model =
        vivace_models::tashkeel::TashkeelModel::load(&dir.join("model.onnx")).expect("model");
    let diacritizer = vivace_models::tashkeel::Diacritizer::load(&dir).expect("diacritizer");
    let goldens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("tashkeel/goldens.json")).expect("goldens"),
    )
    .expect("json");
    let ids = |v: &serde_json::Value| -> Vec<usize> {
        v.as_array()
            .expect("ids")
            .iter()
            .map(|x| x.as_u64().expect("an id") as usize)
            .collect()
    };
    let mut worst = 0f32;
    for case in goldens["cases"].as_array().expect("cases") {
        let text = case["text"].as_str().expect("text");
        let probs = model
            .probabilities(&ids(&case["input_ids"]), &ids(&case["hint_ids"]))
            .expect("run");
        let want: Vec<f32> = case["probabilities"]
            .as_array()
            .expect("probabilities")
            .iter()
            .map(|v| v.as_f64().expect("a number") as f32)
            .collect();
        assert_eq!(probs.len(), want.len(), "{text}");
        for (a, b) in probs.iter().zip(&want) {
            worst = worst.max((a - b).abs());
        }
        assert_eq!(
            diacritizer.diacritize(text).expect("diacritize"),
            case["diacritized"],
            "{text}"
        );
    }
    eprintln!("tashkeel: worst probability difference {worst:.2e}");
    assert!(worst < 1e-4, "worst probability difference {worst}");
}

/// An Arabic voice's phonemes: Piper diacritizes, then espeak-ng reads
/// (`PiperVoice.phonemize`), through `vivace phonemize --language ar`.
#[test]
fn arabic_is_diacritized_before_espeak_as_piper_does() {
    all_languages();
    let goldens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("tashkeel/goldens.json")).expect("goldens"),
    )
    .expect("json");
    for case in goldens["cases"].as_array().expect("cases").iter().take(4) {
        let out = vivace()
            .args(["phonemize", "--json", "--language", "ar"])
            .arg(case["text"].as_str().expect("text"))
            .output()
            .expect("run vivace phonemize");
        assert!(out.status.success(), "{}", stderr(&out));
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(printed["sentences"], case["sentences"], "{}", case["text"]);
    }
}

/// Piper's Hebrew front end (`phoneme_type: hebrew`) against piper-tts 1.8
/// (`tools/make_hebrew_goldens.py`): Nakdimon's three heads (argmax, and
/// the niqqud logits within 1e-3), the restored points, and the phonemes of
/// the rules in `hebrew_ipa.py`.
#[test]
fn hebrew_matches_pipers_phonemizer() {
    use vivace_frontend::hebrew;
    let dir = all_languages().join("piper-tts-1.8.0/hebrew");
    let model = vivace_models::nakdimon::Nakdimon::load(&dir.join("nakdimon.onnx")).expect("model");
    let goldens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("hebrew/goldens.json")).expect("goldens"),
    )
    .expect("json");
    let usizes = |v: &serde_json::Value| -> Vec<usize> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_u64().expect("int") as usize)
            .collect()
    };
    let mut worst = 0f32;
    for case in goldens["cases"].as_array().expect("cases") {
        let text = case["text"].as_str().expect("text");
        let ids = hebrew::nakdimon_ids(text);
        assert_eq!(ids, usizes(&case["input_ids"]), "{text}: ids");
        let [n, _, _] = model.logits(&ids).expect("run");
        let want: Vec<f32> = case["niqqud_logits"]
            .as_array()
            .expect("logits")
            .iter()
            .map(|v| v.as_f64().expect("a number") as f32)
            .collect();
        for (a, b) in n.iter().zip(&want) {
            worst = worst.max((a - b).abs());
        }
        let [n, d, s] = model.predict(&ids).expect("predict");
        assert_eq!(n, usizes(&case["niqqud"]), "{text}: niqqud");
        assert_eq!(d, usizes(&case["dagesh"]), "{text}: dagesh");
        assert_eq!(s, usizes(&case["sin"]), "{text}: sin");
        assert_eq!(
            hebrew::restore_points(text, &n, &d, &s),
            case["pointed"],
            "{text}: points"
        );
        let pointed = if hebrew::has_niqqud(text) {
            text.to_string()
        } else {
            hebrew::restore_points(text, &n, &d, &s)
        };
        let phonemes: Vec<String> = hebrew::to_ipa(&pointed).chars().map(String::from).collect();
        assert_eq!(phonemes, strings(&case["phonemes"]), "{text}: phonemes");
    }
    eprintln!("nakdimon: worst niqqud logit difference {worst:.2e}");
    assert!(worst < 1e-3, "{worst}");
}

/// A `phoneme_type: hebrew` Piper voice (the default voice's weights with a
/// Hebrew config) reads Hebrew through Nakdimon and the rules: its phonemes
/// are piper-tts's, and it speaks.
#[test]
fn a_hebrew_voice_phonemizes_and_speaks_as_piper() {
    all_languages();
    let (dir, onnx) = default_voice_as("he_IL-test-medium.onnx", "hebrew", "he");

    let goldens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("hebrew/goldens.json")).expect("goldens"),
    )
    .expect("json");
    for case in goldens["cases"].as_array().expect("cases").iter().take(2) {
        let out = vivace()
            .args(["phonemize", "--json", "--voice"])
            .arg(&onnx)
            .arg(case["text"].as_str().expect("text"))
            .output()
            .expect("run vivace phonemize");
        assert!(out.status.success(), "{}", stderr(&out));
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(
            printed["sentences"][0]["phonemes"], case["phonemes"],
            "{}",
            case["text"]
        );
    }
    let samples = say_samples(&onnx, "שלום עולם. מה שלומך?", dir.path());
    assert!(samples.iter().any(|s| s.unsigned_abs() > 1000), "silent");
}

/// The default voice's weights under `name` in a scratch folder, with its
/// config's `phoneme_type` and `espeak.voice` set: a voice of another
/// front end to run end to end.
fn default_voice_as(
    name: &str,
    phoneme_type: &str,
    espeak_voice: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = scratch();
    let onnx = dir.path().join(name);
    std::os::unix::fs::symlink(default_voice(), &onnx).expect("link the weights");
    let mut config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(PiperVoice::config_path(default_voice())).expect("config"),
    )
    .expect("json");
    config["phoneme_type"] = phoneme_type.into();
    config["espeak"]["voice"] = espeak_voice.into();
    std::fs::write(PiperVoice::config_path(&onnx), config.to_string()).expect("write config");
    (dir, onnx)
}

/// TLTK's Thai tables from the voice store (fetched once from PyPI).
fn tltk_data() -> std::path::PathBuf {
    VoiceStore::from_env()
        .expect("a cache directory")
        .ensure_tltk_data()
        .unwrap_or_else(|e| panic!("the tests need TLTK's tables: {e}"))
}

fn thai_goldens() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("thai/goldens.json")).expect("goldens"),
    )
    .expect("json")
}

/// Piper's Thai front end (`phoneme_type: thai`) against piper-tts 1.8 with
/// TLTK 1.10 and unicode-rbnf 2.4 (`tools/make_thai_goldens.py`): the
/// normalized text, TLTK's `th2ipa` of every Thai run, each sentence's
/// phonemes and ids, `th2ipa` of 240 random runs (including those TLTK
/// raises on), and the spelling of 63 numbers.
#[test]
fn thai_matches_pipers_phonemizer() {
    use vivace_frontend::thai::{numbers, ThaiPhonemizer};
    let thai = ThaiPhonemizer::load(&tltk_data()).expect("TLTK's tables");
    let config = PiperConfig::read(&PiperVoice::config_path(default_voice())).expect("config");
    let goldens = thai_goldens();
    let mut misses = Vec::new();
    let cases = goldens["cases"].as_array().expect("cases");
    for case in cases {
        let text = case["text"].as_str().expect("text");
        for run in case["runs"].as_array().expect("runs") {
            let got = thai.th2ipa(run[0].as_str().expect("run"));
            if got.as_deref() != run[1].as_str() {
                misses.push(format!("th2ipa {}: {got:?} != {}", run[0], run[1]));
            }
        }
        let got = thai.phonemize(text);
        let want = case["sentences"].as_array().expect("sentences");
        let same = got.len() == want.len()
            && got.iter().zip(want).all(|(g, w)| {
                *g == strings(&w["phonemes"])
                    && config.phonemes_to_ids(g).0
                        == w["ids"]
                            .as_array()
                            .expect("ids")
                            .iter()
                            .map(|v| v.as_i64().expect("id"))
                            .collect::<Vec<_>>()
            });
        if !same {
            misses.push(format!("{text}: {got:?}"));
        }
    }
    let runs = goldens["random_runs"].as_array().expect("random runs");
    for run in runs {
        let got = thai.th2ipa(run[0].as_str().expect("run"));
        if got.as_deref() != run[1].as_str() {
            misses.push(format!("th2ipa {}: {got:?} != {}", run[0], run[1]));
        }
    }
    let numbers_list = goldens["numbers"].as_array().expect("numbers");
    for n in numbers_list {
        let got = numbers::spell(n[0].as_str().expect("number"));
        if got.as_deref() != n[1].as_str() {
            misses.push(format!("number {}: {got:?} != {}", n[0], n[1]));
        }
    }
    eprintln!(
        "thai: {} texts, {} random runs, {} numbers; {} misses",
        cases.len(),
        runs.len(),
        numbers_list.len(),
        misses.len()
    );
    assert!(misses.is_empty(), "{}", misses.join("\n"));
}

/// A `phoneme_type: thai` Piper voice (the default voice's weights with a
/// Thai config) reads Thai through TLTK: its phonemes and ids are
/// piper-tts's, and it speaks.
#[test]
fn a_thai_voice_phonemizes_and_speaks_as_piper() {
    tltk_data();
    let (dir, onnx) = default_voice_as("th_TH-test-medium.onnx", "thai", "th");

    let goldens = thai_goldens();
    for case in goldens["cases"].as_array().expect("cases").iter().take(4) {
        let out = vivace()
            .args(["phonemize", "--json", "--voice"])
            .arg(&onnx)
            .arg(case["text"].as_str().expect("text"))
            .output()
            .expect("run vivace phonemize");
        assert!(out.status.success(), "{}", stderr(&out));
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(printed["sentences"], case["sentences"], "{}", case["text"]);
    }
    let samples = say_samples(&onnx, "สวัสดีครับ วันนี้อากาศดีมาก", dir.path());
    assert!(samples.iter().any(|s| s.unsigned_abs() > 1000), "silent");
}

/// A `phoneme_type: japanese` Piper voice (the default voice's weights with
/// a Japanese config): `vivace phonemize` prints piper-tts 1.8's phonemes
/// for golden texts, and the voice speaks.
#[test]
fn a_japanese_voice_phonemizes_and_speaks_as_piper() {
    let (dir, onnx) = default_voice_as("ja_JP-test-medium.onnx", "japanese", "ja");
    let goldens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("japanese/njd.json")).expect("goldens"),
    )
    .expect("json");
    let texts = [
        "東京タワーに行きました。",
        "すみません、これはいくらですか？はい、そうです！",
    ];
    for case in goldens["piper"].as_array().expect("piper") {
        let text = case["text"].as_str().expect("text");
        if !texts.contains(&text) {
            continue;
        }
        let out = vivace()
            .args(["phonemize", "--json", "--voice"])
            .arg(&onnx)
            .arg(text)
            .output()
            .expect("run vivace phonemize");
        assert!(out.status.success(), "{}", stderr(&out));
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let phonemes: Vec<&serde_json::Value> = printed["sentences"]
            .as_array()
            .expect("sentences")
            .iter()
            .map(|s| &s["phonemes"])
            .collect();
        let want: Vec<&serde_json::Value> = case["phonemes"]
            .as_array()
            .expect("phonemes")
            .iter()
            .collect();
        assert_eq!(phonemes, want, "{text}");
    }
    let samples = say_samples(&onnx, "今日は良い天気ですね。", dir.path());
    assert!(samples.iter().any(|s| s.unsigned_abs() > 1000), "silent");
}

/// A `phoneme_type: text` Piper voice reads code points after NFD as its
/// phonemes (piper-tts 1.8: `list(unicodedata.normalize("NFD", text))`,
/// the expected list below printed by Python), sentence by sentence, and
/// speaks; a `pinyin` voice (g2pW is in no registry) is a clear error.
#[test]
fn a_text_voice_reads_code_points_and_a_pinyin_voice_is_refused() {
    let (dir, onnx) = default_voice_as("xx-text-medium.onnx", "text", "en-us");
    let out = vivace()
        .args(["phonemize", "--json", "--voice"])
        .arg(&onnx)
        .arg("Ça, déjà vu? Ω")
        .output()
        .expect("run vivace phonemize");
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let sentences: Vec<&serde_json::Value> = printed["sentences"]
        .as_array()
        .expect("sentences")
        .iter()
        .map(|s| &s["phonemes"])
        .collect();
    let want: Vec<serde_json::Value> = vec![
        serde_json::json!([
            "C", "\u{327}", "a", ",", " ", "d", "e", "\u{301}", "j", "a", "\u{300}", " ", "v", "u",
            "?"
        ]),
        serde_json::json!(["Ω"]),
    ];
    assert_eq!(sentences, want.iter().collect::<Vec<_>>());
    let samples = say_samples(&onnx, "hello there.", dir.path());
    assert!(samples.iter().any(|s| s.unsigned_abs() > 1000), "silent");

    let (dir, onnx) = default_voice_as("zh_CN-test-medium.onnx", "pinyin", "cmn");
    let out = vivace()
        .args(["say", "--voice"])
        .arg(&onnx)
        .arg("-f")
        .arg(dir.path().join("x.wav"))
        .arg("你好")
        .output()
        .expect("run vivace say");
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("pinyin") && message.contains("not supported yet"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
}

/// Sudachi's folder from the voice store (fetched once from PyPI).
fn sudachi_dir() -> std::path::PathBuf {
    VoiceStore::from_env()
        .expect("a cache directory")
        .ensure_sudachi_dictionary()
        .unwrap_or_else(|e| panic!("the tests need Sudachi's dictionary: {e}"))
}

/// Sudachi against SudachiPy 0.7.0 with `sudachidict_core` 20261015
/// (`tools/make_sudachi_goldens.py`), split mode C: every word's surface
/// and reading on 1,069 texts (the Japanese corpus, kanji with several
/// readings in context, yomigana, prolonged marks, full- and half-width
/// forms, emoji, 400 random character soups and 400 random runs of
/// dictionary words), and the kanji readings pyopenjtalk-plus takes
/// (`sudachi_analyze`).
#[test]
fn sudachi_matches_sudachipy() {
    use vivace_frontend::japanese::postprocess::kanji_yomi::sudachi_analyze;
    use vivace_frontend::japanese::sudachi::Sudachi;
    let sudachi = Sudachi::open(&sudachi_dir()).expect("Sudachi's dictionary");
    let goldens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("japanese/sudachi.json")).expect("goldens"),
    )
    .expect("json");
    let cases = goldens["cases"].as_array().expect("cases");
    let mut misses = Vec::new();
    let (mut words, mut kanji) = (0, 0);
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let want: Vec<(String, String)> =
            serde_json::from_value(case["words"].clone()).expect("words");
        let got: Vec<(String, String)> = sudachi
            .tokenize(text)
            .expect("a short text")
            .into_iter()
            .map(|m| (m.surface, m.reading))
            .collect();
        words += want.len();
        if got != want {
            misses.push(format!("words {text:?}: {got:?} != {want:?}"));
        }
        let want: Vec<(String, String)> =
            serde_json::from_value(case["kanji"].clone()).expect("kanji");
        kanji += want.len();
        if sudachi_analyze(&sudachi, text) != Some(want.clone()) {
            misses.push(format!("kanji {text:?}: {want:?}"));
        }
    }
    eprintln!(
        "sudachi: {} texts, {words} words, {kanji} kanji readings; {} differ",
        cases.len(),
        misses.len()
    );
    assert!(
        misses.is_empty(),
        "{}",
        misses[..misses.len().min(10)].join("\n")
    );
    // Past SudachiPy's limit, a refusal, not a panic.
    assert!(sudachi.tokenize(&"あ".repeat(20_000)).is_err());
    assert!(sudachi.tokenize("").expect("empty").is_empty());
}

/// The first stage of Piper's Japanese front end: MeCab over OpenJTalk's
/// dictionary (fetched from the pyopenjtalk-plus wheel) against
/// pyopenjtalk-plus's `run_mecab_detailed` (`tools/make_mecab_goldens.py`):
/// every morph of the best path, its surface, feature, context ids, word
/// cost, path cost and unknown-word flag, on 20 sentences and 120 random
/// strings of kana, kanji, digits, Latin letters and punctuation; and
/// OpenJTalk's `text2mecab` before it, on those texts and 319 probes of
/// every ASCII and half-width katakana character.
#[test]
fn mecab_matches_pyopenjtalk_plus() {
    use vivace_frontend::japanese::mecab::{Mecab, Origin};
    let dir = VoiceStore::from_env()
        .expect("a cache directory")
        .ensure_openjtalk_dictionary()
        .unwrap_or_else(|e| panic!("the tests need OpenJTalk's dictionary: {e}"));
    let mecab = Mecab::open(&dir).expect("the dictionary");
    let goldens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("japanese/mecab.json")).expect("goldens"),
    )
    .expect("json");
    let cases = goldens["cases"].as_array().expect("cases");
    let mut misses = Vec::new();
    for case in cases {
        let input = case["input"].as_str().expect("input");
        let got: Vec<serde_json::Value> = mecab
            .parse(input)
            .iter()
            .map(|m| {
                serde_json::json!({
                    "surface": &input[m.span.clone()],
                    "feature": mecab.feature(m),
                    "left": m.token.left,
                    "right": m.token.right,
                    "pos": m.token.pos,
                    "word_cost": m.token.cost,
                    "path_cost": m.path_cost,
                    "unknown": m.origin == Origin::Unknown,
                })
            })
            .collect();
        if got != *case["morphs"].as_array().expect("morphs") {
            misses.push(format!("{input}: {got:?}"));
        }
    }
    use vivace_frontend::japanese::text2mecab::text2mecab;
    for case in cases {
        let (text, input) = (case["text"].as_str().expect("text"), &case["input"]);
        if text2mecab(text) != *input {
            misses.push(format!(
                "text2mecab {text:?}: {:?} != {input}",
                text2mecab(text)
            ));
        }
    }
    let probes = goldens["text2mecab"].as_array().expect("probes");
    for probe in probes {
        let (text, want) = (probe[0].as_str().expect("text"), &probe[1]);
        if text2mecab(text) != *want {
            misses.push(format!(
                "text2mecab {text:?}: {:?} != {want}",
                text2mecab(text)
            ));
        }
    }
    eprintln!(
        "mecab: {} texts and {} text2mecab probes, {} misses",
        cases.len(),
        probes.len(),
        misses.len()
    );
    assert!(misses.is_empty(), "{}", misses.join("\n"));
}

/// Any text is phonemized without a panic by the Thai and Japanese front
/// ends (seeded random strings over Thai, kana, kanji, digits, Latin,
/// punctuation, combining marks, controls, emoji and unpaired marks).
#[test]
fn thai_and_japanese_front_ends_take_any_text() {
    use vivace_frontend::japanese::{mecab::Mecab, text2mecab::text2mecab};
    use vivace_frontend::thai::ThaiPhonemizer;
    let thai = ThaiPhonemizer::load(&tltk_data()).expect("TLTK's tables");
    let dir = VoiceStore::from_env()
        .expect("a cache directory")
        .ensure_openjtalk_dictionary()
        .expect("OpenJTalk's dictionary");
    let mecab = Mecab::open(&dir).expect("the dictionary");
    let japanese = vivace::front_ends::japanese().expect("the Japanese front end");
    let pools: [&[(u32, u32)]; 4] = [
        &[(0x0e01, 0x0e5b)],
        &[
            (0x3000, 0x3020),
            (0x3041, 0x30ff),
            (0x4e00, 0x4e80),
            (0xff61, 0xff9f),
        ],
        &[
            (0x20, 0x7e),
            (0x00, 0x1f),
            (0x2000, 0x206f),
            (0x0300, 0x036f),
        ],
        &[(0x1f600, 0x1f64f), (0x10000, 0x10100), (0xfff0, 0xfffd)],
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u32| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % u64::from(n)) as u32
    };
    let long_digits = "1".repeat(90);
    let commas = "1,".repeat(500);
    let long_sentence = "あ".repeat(20_000);
    for text in [
        long_digits.as_str(),
        commas.as_str(),
        "．．．１．",
        "〇〇〇〇",
        "二十四日間",
        "ｰ’’ー？！",
    ] {
        let _ = japanese.phonemize(text);
    }
    let pieces = japanese.phonemize(&long_sentence);
    assert_eq!(
        pieces.len(),
        5,
        "a sentence over OpenJTalk's buffer is read in pieces, not dropped"
    );
    for _ in 0..1000 {
        let len = 1 + next(24);
        let text: String = (0..len)
            .filter_map(|_| {
                let pool = pools[next(4) as usize];
                let (lo, hi) = pool[next(pool.len() as u32) as usize];
                char::from_u32(lo + next(hi - lo + 1))
            })
            .collect();
        let _ = thai.phonemize(&text);
        let _ = japanese.phonemize(&text);
        let input = text2mecab(&text);
        let morphs = mecab.parse(&input);
        let covered: usize = morphs.iter().map(|m| m.span.len()).sum();
        assert!(covered <= input.len(), "{text:?}");
    }
}

/// The rest of Piper's Japanese front end against pyopenjtalk-plus 0.4.1.post9
/// and piper-tts 1.8 (`tools/make_njd_goldens.py`), stage by stage, each on
/// the reference's own input: MeCab's features for NJD (`run_mecab`), NJD
/// (`run_njd_from_mecab`), the post-processing rules (Sudachi's kanji
/// readings and the iteration marks 々 ゝ included; the 「何」 model checked
/// on its own against onnxruntime), the full-context labels (`make_label`)
/// and Piper's reading of them; then Piper's whole `phonemize` on 109 texts.
#[test]
fn japanese_front_end_matches_pyopenjtalk_plus_and_piper() {
    use vivace_frontend::japanese::njd::{self, Feature};
    use vivace_frontend::japanese::sudachi::Sudachi;
    use vivace_frontend::japanese::{labels, prosody, JapanesePhonemizer};
    let dir = VoiceStore::from_env()
        .expect("a cache directory")
        .ensure_openjtalk_dictionary()
        .unwrap_or_else(|e| panic!("the tests need OpenJTalk's dictionary: {e}"));
    let japanese = JapanesePhonemizer::load(&dir)
        .expect("the dictionary")
        .with_sudachi(Sudachi::open(&sudachi_dir()).expect("Sudachi's dictionary"));
    let piper_front_end = vivace::front_ends::japanese().expect("the Japanese front end");
    let goldens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("japanese/njd.json")).expect("goldens"),
    )
    .expect("json");
    let mut misses = Vec::new();
    let cases = goldens["cases"].as_array().expect("cases");
    let mut labelled = 0;
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let mecab: Vec<String> = serde_json::from_value(case["mecab"].clone()).expect("mecab");
        let want: Vec<Feature> = serde_json::from_value(case["njd"].clone()).expect("njd");
        if japanese.mecab_features(text).as_ref() != Some(&mecab) {
            misses.push(format!(
                "run_mecab {text:?}: {:?}",
                japanese.mecab_features(text)
            ));
        }
        let got = njd::run(&mecab);
        if got != want {
            misses.push(format!("NJD {text:?}: {got:?}"));
        }
        let mut want_post = case
            .get("post_njd")
            .cloned()
            .unwrap_or_else(|| serde_json::to_value(&want).expect("features"));
        for change in case
            .get("post")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            let index = change[0].as_u64().expect("node") as usize;
            want_post[index][change[1].as_str().expect("field")] = change[2].clone();
        }
        let want_post: Vec<Feature> = serde_json::from_value(want_post).expect("features");
        let mut got_post = want.clone();
        japanese.postprocess(text, &mut got_post);
        if got_post != want_post {
            misses.push(format!("post-processing {text:?}: {got_post:?}"));
        }
        if let Some(want_labels) = case.get("labels") {
            labelled += 1;
            let want_labels: Vec<String> =
                serde_json::from_value(want_labels.clone()).expect("labels");
            if labels::make_label(&want) != want_labels {
                misses.push(format!("labels {text:?}: {:?}", labels::make_label(&want)));
            }
            let want_phones: Vec<String> =
                serde_json::from_value(case["phones"].clone()).expect("phones");
            if prosody::phones_from_labels(&want_labels) != want_phones {
                misses.push(format!(
                    "Piper's reading {text:?}: {:?}",
                    prosody::phones_from_labels(&want_labels)
                ));
            }
        }
    }
    // The 「何」 model against onnxruntime.
    let nani = vivace_models::nani::NaniModel::load(
        &dir.join("nani_enc.onnx"),
        &dir.join("nani_model.onnx"),
    )
    .expect("the 「何」 model");
    let rows = goldens["nani"].as_array().expect("nani");
    let mut worst = 0f32;
    for case in rows {
        let row: Vec<String> = serde_json::from_value(case["row"].clone()).expect("row");
        let row: Vec<&str> = row.iter().map(String::as_str).collect();
        let want: Vec<f32> =
            serde_json::from_value(case["probabilities"].clone()).expect("probabilities");
        let got = nani.probabilities(&row);
        worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs())
            .fold(worst, f32::max);
        if nani.reads_nan(&row) != (want[1] > want[0]) {
            misses.push(format!("「何」 model {row:?}: {got:?} != {want:?}"));
        }
    }
    assert!(worst < 1e-5, "「何」 model probabilities differ by {worst}");
    // Piper's whole front end.
    let piper = goldens["piper"].as_array().expect("piper");
    let mut same = 0;
    for case in piper {
        let text = case["text"].as_str().expect("text");
        let want: Vec<Vec<String>> =
            serde_json::from_value(case["phonemes"].clone()).expect("phonemes");
        let got = piper_front_end.phonemize(text);
        if got == want {
            same += 1;
        } else {
            misses.push(format!("Piper {text:?}: {got:?} != {want:?}"));
        }
    }
    eprintln!(
        "japanese: {} texts through NJD and post-processing, {labelled} through labels, \
         {} rows through the 「何」 model (worst probability difference {worst:e}); \
         Piper's phonemes identical on {same} of {}",
        cases.len(),
        rows.len(),
        piper.len()
    );
    assert!(misses.is_empty(), "{}", misses.join("\n"));
}
