//! Chatterbox's text front end: the reference's punctuation clean-up
//! (`punc_norm` in `tts.py`), its English tokenizer (`EnTokenizer`: a
//! Hugging Face `tokenizer.json`, spaces written as `[SPACE]`) and its
//! multilingual one (`MTLTokenizer`).
//!
//! The tokenizer file is read with the `tokenizers` crate, the Rust core of
//! the Python package the reference calls, so ids are the reference's.

use std::path::{Path, PathBuf};

use crate::cangjie::{CangjieTable, CANGJIE_FILE};
use crate::kakasi::Kakasi;
use crate::{Error, Result};

/// The token that starts a text.
pub const START: &str = "[START]";
/// The token that ends it.
pub const STOP: &str = "[STOP]";
/// What a space is written as before tokenizing.
pub const SPACE: &str = "[SPACE]";

/// The reference's `punc_norm`: an empty text becomes its stock sentence;
/// the first letter is capitalized; runs of white space collapse; LLM-style
/// punctuation (ellipses, colons, semicolons, dashes, curly quotes) becomes
/// what the model saw in training; a sentence without an ending gets a
/// full stop.
pub fn punc_norm(text: &str) -> String {
    normalize_punctuation(text, &['.', '!', '?', '-', ','])
}

/// Turbo's `punc_norm` (`tts_turbo.py`): as [`punc_norm`] but with fewer
/// replacements (ellipses `...`, spaced dashes and semicolons stay).
pub fn punc_norm_turbo(text: &str) -> String {
    let kept: Vec<(&str, &str)> = REPLACEMENTS
        .into_iter()
        .filter(|(from, _)| !TURBO_KEEPS.contains(from))
        .collect();
    normalize_with(text, &kept, &['.', '!', '?', '-', ','])
}

/// What Turbo's `punc_norm` leaves as written.
const TURBO_KEEPS: [&str; 3] = ["...", " - ", ";"];

/// The multilingual model's `punc_norm` (`mtl_tts.py`): as [`punc_norm`],
/// with the CJK sentence endings `、，。？！` also taken as endings.
pub fn punc_norm_multilingual(text: &str) -> String {
    normalize_punctuation(
        text,
        &['.', '!', '?', '-', ',', '、', '，', '。', '？', '！'],
    )
}

/// The replacements of `tts.py` and `mtl_tts.py`.
const REPLACEMENTS: [(&str, &str); 12] = [
    ("...", ", "),
    ("…", ", "),
    (":", ","),
    (" - ", ", "),
    (";", ", "),
    ("—", "-"),
    ("–", "-"),
    (" ,", ","),
    ("“", "\""),
    ("”", "\""),
    ("‘", "'"),
    ("’", "'"),
];

fn normalize_punctuation(text: &str, endings: &[char]) -> String {
    normalize_with(text, &REPLACEMENTS, endings)
}

fn normalize_with(text: &str, replacements: &[(&str, &str)], endings: &[char]) -> String {
    if text.is_empty() {
        return "You need to add some text for me to talk.".to_string();
    }
    let mut chars = text.chars();
    let mut text: String = match chars.next() {
        Some(first) if first.is_lowercase() => first.to_uppercase().chain(chars).collect(),
        _ => text.to_string(),
    };
    text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for (from, to) in replacements {
        text = text.replace(from, to);
    }
    let mut text = text.trim_end_matches(' ').to_string();
    if !text.ends_with(endings) {
        text.push('.');
    }
    text
}

/// Chatterbox's English tokenizer (`tokenizer.json`).
#[derive(Debug)]
pub struct EnglishTokenizer(TokenizerFile);

impl EnglishTokenizer {
    /// Reads `path`; it must have the start, stop and space tokens.
    pub fn from_file(path: &Path) -> Result<Self> {
        TokenizerFile::read(path).map(Self)
    }

    /// The ids of `text` (already normalized with [`punc_norm`]), without
    /// start and stop tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.0.encode(text)
    }

    /// The token of `id`, for reports.
    pub fn token(&self, id: u32) -> String {
        self.0
            .tokenizer
            .id_to_token(id)
            .unwrap_or_else(|| format!("<{id}>"))
    }
}

/// The languages of the multilingual model (`SUPPORTED_LANGUAGES` in
/// `mtl_tts.py`): ISO 639-1 code and name.
/// Turbo's tokenizer: GPT-2's byte-level BPE, as `AutoTokenizer` loads it
/// from the checkpoint folder: `tokenizer.json` when there is one, else
/// `vocab.json` and `merges.txt` with the tokens of `added_tokens.json`
/// (Turbo adds its own after GPT-2's 50257). No start or stop token is
/// added, as the reference adds none.
#[derive(Debug)]
pub struct Gpt2Tokenizer {
    tokenizer: tokenizers::Tokenizer,
}

/// GPT-2's end-of-text token, special in its vocabulary.
const GPT2_END_OF_TEXT: &str = "<|endoftext|>";

impl Gpt2Tokenizer {
    /// Reads the tokenizer files of the folder `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let json = dir.join("tokenizer.json");
        let vocab = dir.join("vocab.json");
        let merges = dir.join("merges.txt");
        let bad = |path: &Path, reason: String| Error::TokenizerFile {
            path: path.to_path_buf(),
            reason,
        };
        let tokenizer = if json.is_file() {
            tokenizers::Tokenizer::from_file(&json)
                .map_err(|e| bad(&json, format!("not a Hugging Face tokenizer.json: {e}")))?
        } else {
            for f in [&vocab, &merges] {
                if !f.is_file() {
                    return Err(bad(
                        f,
                        "no such file: Turbo's tokenizer is tokenizer.json, or vocab.json with merges.txt"
                            .into(),
                    ));
                }
            }
            let as_str = |p: &Path| {
                p.to_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(p, "the path is not UTF-8".into()))
            };
            let bpe = tokenizers::models::bpe::BPE::from_file(&as_str(&vocab)?, &as_str(&merges)?)
                .build()
                .map_err(|e| {
                    bad(
                        &vocab,
                        format!("not GPT-2's vocab.json and merges.txt: {e}"),
                    )
                })?;
            let mut tokenizer = tokenizers::Tokenizer::new(bpe);
            let byte_level =
                tokenizers::pre_tokenizers::byte_level::ByteLevel::new(false, true, true);
            tokenizer.with_pre_tokenizer(Some(byte_level));
            tokenizer.with_decoder(Some(byte_level));
            let vocab_size = tokenizer.get_vocab_size(false);
            let mut added = vec![tokenizers::AddedToken::from(GPT2_END_OF_TEXT, true)];
            let added_path = dir.join("added_tokens.json");
            if added_path.is_file() {
                let text = std::fs::read_to_string(&added_path)
                    .map_err(|e| bad(&added_path, e.to_string()))?;
                let map: std::collections::BTreeMap<String, u32> = serde_json::from_str(&text)
                    .map_err(|e| bad(&added_path, format!("not a {{token: id}} map: {e}")))?;
                let mut by_id: Vec<(u32, String)> = map.into_iter().map(|(t, i)| (i, t)).collect();
                by_id.sort();
                let mut next = vocab_size as u32;
                for (id, token) in by_id {
                    if tokenizer.token_to_id(&token).is_some() {
                        continue;
                    }
                    if id != next {
                        return Err(bad(
                            &added_path,
                            format!("token {token:?} has id {id}, expected {next} (added tokens follow the vocabulary without gaps)"),
                        ));
                    }
                    added.push(tokenizers::AddedToken::from(token, false));
                    next += 1;
                }
            }
            tokenizer
                .add_tokens(added)
                .map_err(|e| bad(&vocab, format!("cannot add GPT-2's added tokens: {e}")))?;
            tokenizer
        };
        Ok(Self { tokenizer })
    }

    /// Token ids of `text` (already through [`punc_norm_turbo`]).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| Error::Untokenizable(format!("cannot tokenize {text:?}: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of token `id`, for reports.
    pub fn token(&self, id: u32) -> String {
        self.tokenizer
            .id_to_token(id)
            .unwrap_or_else(|| format!("<{id}>"))
    }

    /// Tokens in all.
    pub fn len(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Whether it has no tokens (never, once read).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub const LANGUAGES: [(&str, &str); 23] = [
    ("ar", "Arabic"),
    ("da", "Danish"),
    ("de", "German"),
    ("el", "Greek"),
    ("en", "English"),
    ("es", "Spanish"),
    ("fi", "Finnish"),
    ("fr", "French"),
    ("he", "Hebrew"),
    ("hi", "Hindi"),
    ("it", "Italian"),
    ("ja", "Japanese"),
    ("ko", "Korean"),
    ("ms", "Malay"),
    ("nl", "Dutch"),
    ("no", "Norwegian"),
    ("pl", "Polish"),
    ("pt", "Portuguese"),
    ("ru", "Russian"),
    ("sv", "Swedish"),
    ("sw", "Swahili"),
    ("tr", "Turkish"),
    ("zh", "Chinese"),
];

/// The multilingual model's tokenizer (`grapheme_mtl_merged_expanded_v1.json`)
/// with the reference's `MTLTokenizer.encode`: lower case, NFKD, the
/// language's own step, the language token first, spaces as `[SPACE]`.
///
/// Language steps: Korean syllables become jamo (NFKD already does it; the
/// reference then strips the ends). Hebrew diacritics and Russian stress
/// marks come from optional packages the reference skips when missing, and
/// so does Vivace, with a warning. Japanese (kanji to hiragana) and Chinese
/// (segmentation and Cangjie codes) are not ported yet: an error says so.
#[derive(Debug)]
pub struct MultilingualTokenizer {
    file: TokenizerFile,
    /// `Cangjie5_TC.json` beside the tokenizer, for Chinese.
    cangjie: Option<CangjieTable>,
    /// pykakasi's dictionaries, for Japanese (set once fetched).
    japanese: std::sync::OnceLock<Kakasi>,
}

impl MultilingualTokenizer {
    /// Reads `grapheme_mtl_merged_expanded_v1.json`, and the Cangjie table
    /// (`Cangjie5_TC.json`) beside it when there is one.
    pub fn from_file(path: &Path) -> Result<Self> {
        let file = TokenizerFile::read(path)?;
        let table = path.with_file_name(CANGJIE_FILE);
        let cangjie = match table.is_file() {
            true => Some(CangjieTable::from_file(&table)?),
            false => None,
        };
        Ok(Self {
            file,
            cangjie,
            japanese: std::sync::OnceLock::new(),
        })
    }

    /// Gives it pykakasi's dictionaries, which Japanese needs (a second
    /// call keeps the first).
    pub fn set_japanese(&self, kakasi: Kakasi) {
        let _ = self.japanese.set(kakasi);
    }

    /// Whether Japanese can be tokenized.
    pub fn has_japanese(&self) -> bool {
        self.japanese.get().is_some()
    }

    pub fn encode(&self, text: &str, language: &str) -> Result<Vec<u32>> {
        use unicode_normalization::UnicodeNormalization;
        let language = language.to_ascii_lowercase();
        if !LANGUAGES.iter().any(|(code, _)| *code == language) {
            let known: Vec<&str> = LANGUAGES.iter().map(|(code, _)| *code).collect();
            return Err(Error::Untokenizable(format!(
                "Chatterbox does not speak language {language:?}: use one of {}",
                known.join(", ")
            )));
        }
        let mut text: String = text.to_lowercase().nfkd().collect();
        match language.as_str() {
            "ko" => text = text.chars().flat_map(hangul_jamo).collect::<String>().trim().to_string(),
            "zh" => {
                static SEGMENTATION: std::sync::Once = std::sync::Once::new();
                SEGMENTATION.call_once(|| tracing::warn!("Chinese text is not segmented into words (the reference's spacy-pkuseg model is not available; the reference also skips this without it)"));
                match &self.cangjie {
                    Some(table) => text = table.convert(&text),
                    None => tracing::warn!("no {CANGJIE_FILE} beside the tokenizer: Chinese characters are not converted to Cangjie codes (as the reference without it); download it with `vivace download chatterbox-multilingual`"),
                }
            }
            "ja" => match self.japanese.get() {
                Some(kakasi) => text = kakasi.hiragana_normalize(&text),
                None => {
                    return Err(Error::Untokenizable(
                        "Japanese needs pykakasi's dictionaries (kanji to hiragana): they are fetched from PyPI on first use; give them with set_japanese".into(),
                    ))
                }
            },
            "he" => tracing::warn!("Hebrew diacritics are not added (the reference skips them too without dicta_onnx)"),
            "ru" => tracing::warn!("Russian stress marks are not added (the reference skips them too without russian_text_stresser)"),
            _ => {}
        }
        self.file.encode(&format!("[{language}]{text}"))
    }
}

/// A precomposed Hangul syllable as its leading consonant, vowel and
/// (optional) trailing consonant jamo; any other character unchanged.
fn hangul_jamo(c: char) -> Vec<char> {
    let code = c as u32;
    if !(0xAC00..=0xD7AF).contains(&code) {
        return vec![c];
    }
    let base = code - 0xAC00;
    let mut out = vec![
        char::from_u32(0x1100 + base / (21 * 28)).unwrap_or(c),
        char::from_u32(0x1161 + (base % (21 * 28)) / 28).unwrap_or(c),
    ];
    if !base.is_multiple_of(28) {
        out.push(char::from_u32(0x11A7 + base % 28).unwrap_or(c));
    }
    out
}

/// A Hugging Face tokenizer file with Chatterbox's special tokens: what
/// both tokenizers read and how both encode (spaces as `[SPACE]`).
struct TokenizerFile {
    tokenizer: tokenizers::Tokenizer,
    path: PathBuf,
}

impl std::fmt::Debug for TokenizerFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenizerFile")
            .field("path", &self.path)
            .finish()
    }
}

impl TokenizerFile {
    fn read(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::TokenizerFile {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(bad("no such file (Chatterbox's tokenizer file)".into()));
        }
        let tokenizer = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| bad(format!("not a Hugging Face tokenizer.json: {e}")))?;
        for special in [START, STOP, SPACE] {
            if tokenizer.token_to_id(special).is_none() {
                return Err(bad(format!(
                    "has no {special} token: not Chatterbox's tokenizer"
                )));
            }
        }
        Ok(Self {
            tokenizer,
            path: path.to_path_buf(),
        })
    }

    /// The ids of `text` with its spaces written as `[SPACE]`.
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text.replace(' ', SPACE).as_str(), false)
            .map_err(|e| Error::Untokenizable(format!("cannot tokenize {text:?}: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punc_norm_follows_the_reference() {
        // Expected strings from chatterbox-tts 0.1.7's punc_norm.
        assert_eq!(punc_norm(""), "You need to add some text for me to talk.");
        assert_eq!(
            punc_norm("the quick brown fox... jumps over the lazy dog; twice"),
            "The quick brown fox,  jumps over the lazy dog,  twice."
        );
        assert_eq!(
            punc_norm("Wait — what? “Quoted” text, 42 times!"),
            "Wait - what? \"Quoted\" text, 42 times!"
        );
        assert_eq!(punc_norm("a  b\t c : d"), "A b c, d.");
        assert_eq!(punc_norm("Ends with a comma ,"), "Ends with a comma,");
        assert_eq!(punc_norm("élan"), "Élan.");
        assert_eq!(punc_norm("你好。"), "你好。.");
        assert_eq!(punc_norm_multilingual("你好。"), "你好。");
        assert_eq!(punc_norm_multilingual("안녕"), "안녕.");
    }

    #[test]
    fn a_file_without_the_special_tokens_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, "{}").expect("write");
        let err = EnglishTokenizer::from_file(&path).expect_err("not a tokenizer");
        assert!(err.to_string().contains("tokenizer.json"), "{err}");
        let err =
            EnglishTokenizer::from_file(&dir.path().join("missing.json")).expect_err("missing");
        assert!(err.to_string().contains("no such file"), "{err}");
    }
}
