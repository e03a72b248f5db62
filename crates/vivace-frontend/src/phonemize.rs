//! Text → sentences of IPA phonemes, exactly as Piper 1.8 does it.
//!
//! Piper 1.8 (`piper/voice.py`, `phonemize_espeak.py`, `espeakbridge.c` in
//! [piper1-gpl](https://github.com/OHF-Voice/piper1-gpl)) calls espeak-ng's
//! `espeak_TextToPhonemesWithTerminator` clause by clause, keeps each clause's
//! punctuation, starts a new sentence at each sentence-ending clause, and
//! NFD-decomposes the IPA into code points. Text inside `[[ … ]]` is taken as
//! raw phonemes.
//!
//! espeak-ng is compiled from source by `vivace-espeak-sys` (the C sources of
//! crates.io's `espeak-rs-sys` 0.2.0, upstream commit d7b26b54). Two
//! differences from the espeak-ng Piper links (upstream 724808c5) are bridged
//! here, both verified against piper-tts 1.8 (see `docs/PHONEMIZATION.md`):
//! - d7b26b54 lacks the public `espeak_TextToPhonemesWithTerminator`; its nine
//!   lines are reproduced with the library's exported internals;
//! - upstream 8afe77ba (in Piper's version) stopped consulting the previous
//!   phoneme when writing IPA, so the linking glide `;` is always written `ʲ`
//!   and the flap `*` always `ɾ`; we render each clause's phoneme list both as
//!   ASCII mnemonics and as IPA, align them, and write those two as Piper does.
//!
//! Data: the caller names a root folder. English works out of the box: its
//! phoneme tables and dictionary are embedded from the `espeak-ng-data-*`
//! crates and written under the root once. Every other language reads
//! piper-tts 1.8.0's own copy of espeak-ng's data (all 118 dictionaries),
//! installed under `ROOT/`[`ALL_LANGUAGES_DIR`] by the caller (Vivace's voice
//! store fetches it from PyPI); once it is there, every voice uses it.
//! espeak-ng is not thread-safe: every call holds one lock.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use unicode_normalization::UnicodeNormalization;
use vivace_espeak_sys as sys;

use crate::error::{Error, Result};

// Clause terminator codes (translate.h; the values piper's espeakbridge.c uses).
const CLAUSE_TYPE_CLAUSE: c_int = 0x0004_0000;
const CLAUSE_TYPE_SENTENCE: c_int = 0x0008_0000;
const CLAUSE_PERIOD: c_int = 40 | CLAUSE_TYPE_SENTENCE;
const CLAUSE_COMMA: c_int = 20 | 0x1000 | CLAUSE_TYPE_CLAUSE;
const CLAUSE_QUESTION: c_int = 40 | 0x2000 | CLAUSE_TYPE_SENTENCE;
const CLAUSE_EXCLAMATION: c_int = 45 | 0x3000 | CLAUSE_TYPE_SENTENCE;
const CLAUSE_COLON: c_int = 30 | CLAUSE_TYPE_CLAUSE;
const CLAUSE_SEMICOLON: c_int = 30 | 0x1000 | CLAUSE_TYPE_CLAUSE;

/// Files copied out of the embedded data: the phoneme tables, the language
/// definitions and each bundled dictionary. Voice variants (`voices/`) and
/// MBROLA tables are left out: phonemization never reads them, and with them
/// espeak-ng's voice list overflows (it warns about `N_VOICES_LIST`).
fn embedded_files() -> impl Iterator<Item = &'static (&'static str, &'static [u8])> {
    espeak_ng_data_phonemes::ALL_FILES
        .iter()
        .chain(espeak_ng_data_dict_en::ALL_FILES)
        .filter(|(path, _)| !path.starts_with("voices/") && !path.starts_with("mbrola"))
}

/// Languages whose dictionary this build embeds (`NAME_dict`).
pub const DICTIONARIES: &[&str] = &["en"];

/// The folder under the data root that holds espeak-ng's data for every
/// language (its `espeak-ng-data/`), as piper-tts 1.8.0 ships it.
pub const ALL_LANGUAGES_DIR: &str = "piper-tts-1.8.0";

/// Whether espeak-ng's data for every language is installed under `root`.
pub fn has_all_languages(root: &Path) -> bool {
    root.join(ALL_LANGUAGES_DIR)
        .join("espeak-ng-data/phontab")
        .is_file()
}

/// Whether the espeak-ng voice `voice` (such as `en-gb-x-rp`) can be
/// phonemized with the data built into this binary.
pub fn is_built_in(voice: &str) -> bool {
    let language = voice.split(['-', '_']).next().unwrap_or(voice);
    DICTIONARIES.contains(&language)
}

/// Process-wide espeak-ng state, behind the lock.
struct Espeak {
    /// The folder espeak-ng was initialized with.
    data_dir: Option<PathBuf>,
    /// Whether that folder holds every language's data (it is then kept
    /// for English too, rather than going back to the built-in data).
    all_languages: bool,
}

static ESPEAK: Mutex<Espeak> = Mutex::new(Espeak {
    data_dir: None,
    all_languages: false,
});

/// One clause as espeak-ng returns it.
#[derive(Debug, Clone, PartialEq)]
struct Clause {
    phonemes: String,
    terminator: &'static str,
    end_of_sentence: bool,
}

/// A rewrite of each text part before espeak-ng reads it: Piper diacritizes
/// Arabic this way (its tashkeel model, which lives outside this crate).
#[derive(Clone)]
pub struct TextFilter(pub Arc<FilterFn>);

/// The function a [`TextFilter`] holds: a text part in, the rewritten part
/// or an error message out.
pub type FilterFn = dyn Fn(&str) -> std::result::Result<String, String> + Send + Sync;

impl std::fmt::Debug for TextFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TextFilter")
    }
}

/// A Piper-compatible phonemizer for one espeak-ng voice (`en-us`, …).
#[derive(Debug, Clone)]
pub struct Phonemizer {
    voice: String,
    /// The folder espeak-ng reads this voice's data from (re-selected
    /// before each text, since another phonemizer may have switched it).
    data_dir: PathBuf,
    /// Whether `data_dir` holds every language's data.
    all_languages: bool,
    vowel_clusters: Vec<Vec<String>>,
    filter: Option<TextFilter>,
}

impl Phonemizer {
    /// Prepares espeak-ng with its data under `root` and checks that
    /// `voice` loads: every language's data when installed there, else the
    /// built-in English data (written there on first use).
    pub fn new(voice: &str, root: &Path) -> Result<Self> {
        let mut state = lock();
        let (data_dir, all_languages) = match (&state.data_dir, state.all_languages) {
            _ if has_all_languages(root) => (root.join(ALL_LANGUAGES_DIR), true),
            // Every language's data is loaded already: English included.
            (Some(loaded), true) => (loaded.clone(), true),
            _ if is_built_in(voice) => {
                install_data(root)?;
                (root.to_path_buf(), false)
            }
            _ => {
                return Err(Error::LanguageData {
                    voice: voice.to_string(),
                    dir: root.join(ALL_LANGUAGES_DIR),
                })
            }
        };
        state.initialize(&data_dir, all_languages)?;
        set_voice(voice)?;
        Ok(Self {
            voice: voice.to_string(),
            data_dir,
            all_languages,
            vowel_clusters: Vec::new(),
            filter: None,
        })
    }

    /// Merges these phoneme sequences into single phonemes (Piper's optional
    /// `vowel_clusters` voice setting).
    pub fn with_vowel_clusters(mut self, clusters: Vec<Vec<String>>) -> Self {
        self.vowel_clusters = clusters;
        self
    }

    /// Rewrites each text part (outside `[[ ]]`) with `filter` before
    /// espeak-ng reads it, as Piper does with Arabic's diacritizer.
    pub fn with_text_filter(mut self, filter: TextFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Phonemizes `text` into sentences, each a list of phonemes (one code
    /// point each, spaces and punctuation included), as `PiperVoice.phonemize`.
    pub fn phonemize(&self, text: &str) -> Result<Vec<Vec<String>>> {
        let mut sentences: Vec<Vec<String>> = Vec::new();
        let parts = split_raw_blocks(text);
        let mut prev_raw = false;
        for (i, part) in parts.iter().enumerate() {
            if let Some(raw) = part.strip_prefix("[[").and_then(|p| p.strip_suffix("]]")) {
                prev_raw = true;
                if sentences.is_empty() {
                    sentences.push(Vec::new());
                }
                let current = sentences.last_mut().expect("a sentence was just ensured");
                if i > 0 && parts[i - 1].ends_with(' ') {
                    current.push(" ".into());
                }
                current.extend(raw.trim().chars().map(String::from));
                if i + 1 < parts.len() && parts[i + 1].starts_with(' ') {
                    current.push(" ".into());
                }
                continue;
            }
            let mut part_sentences = match &self.filter {
                Some(filter) => {
                    self.phonemize_part(&(filter.0)(part).map_err(Error::Phonemizer)?)?
                }
                None => self.phonemize_part(part)?,
            };
            if prev_raw && !part_sentences.is_empty() {
                let first = part_sentences.remove(0);
                if let Some(last) = sentences.last_mut() {
                    last.extend(first);
                }
            }
            sentences.extend(part_sentences);
            prev_raw = false;
        }
        if sentences.last().is_some_and(Vec::is_empty) {
            sentences.pop();
        }
        Ok(sentences)
    }

    /// `EspeakPhonemizer.phonemize` of piper 1.8 for text without `[[ ]]`.
    fn phonemize_part(&self, text: &str) -> Result<Vec<Vec<String>>> {
        let clauses = {
            let mut state = lock();
            state.initialize(&self.data_dir, self.all_languages)?;
            set_voice(&self.voice)?;
            clauses(text)
        };
        let mut sentences = Vec::new();
        let mut current: Vec<String> = Vec::new();
        for clause in clauses {
            let mut phonemes = strip_language_flags(&clause.phonemes);
            phonemes.push_str(clause.terminator);
            if matches!(clause.terminator, "," | ":" | ";") {
                phonemes.push(' ');
            }
            current.extend(phonemes.nfd().map(String::from));
            if clause.end_of_sentence {
                sentences.push(merge_clusters(
                    std::mem::take(&mut current),
                    &self.vowel_clusters,
                ));
            }
        }
        if !current.is_empty() {
            sentences.push(merge_clusters(current, &self.vowel_clusters));
        }
        Ok(sentences)
    }
}

fn lock() -> std::sync::MutexGuard<'static, Espeak> {
    // A panic while holding the lock leaves espeak's state as valid as any
    // other interrupted call: keep going.
    ESPEAK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Espeak {
    /// Initializes espeak-ng with the data in `data_dir/espeak-ng-data`,
    /// once; a different folder (every language's data, installed since)
    /// restarts it with that one.
    fn initialize(&mut self, data_dir: &Path, all_languages: bool) -> Result<()> {
        match &self.data_dir {
            Some(current) if current == data_dir => return Ok(()),
            Some(current) => {
                tracing::debug!(
                    from = %current.display(),
                    to = %data_dir.display(),
                    "restarting espeak-ng with other data"
                );
                // SAFETY: under the lock; no espeak-ng buffer is held across it.
                unsafe { sys::espeak_Terminate() };
                self.data_dir = None;
            }
            None => {}
        }
        let path = data_dir
            .to_str()
            .and_then(|p| CString::new(p).ok())
            .ok_or_else(|| {
                Error::Phonemizer(format!(
                    "the espeak-ng data path {} must be valid UTF-8 without NUL",
                    data_dir.display()
                ))
            })?;
        // SAFETY: called once, under the lock; DONT_EXIT makes a data error
        // return an error code instead of exiting the process.
        let rate = unsafe {
            sys::espeak_Initialize(
                sys::AUDIO_OUTPUT_SYNCHRONOUS,
                0,
                path.as_ptr(),
                sys::ESPEAK_INITIALIZE_DONT_EXIT,
            )
        };
        if rate <= 0 {
            return Err(Error::Phonemizer(format!(
                "espeak-ng failed to initialize with data in {} (code {rate})",
                data_dir.display()
            )));
        }
        // espeak-ng silently falls back to other data locations: check it used ours.
        let mut used: *const c_char = std::ptr::null();
        // SAFETY: espeak_Info returns static strings owned by the library.
        let used = unsafe {
            sys::espeak_Info(&mut used);
            if used.is_null() {
                String::new()
            } else {
                CStr::from_ptr(used).to_string_lossy().into_owned()
            }
        };
        let expected = data_dir.join("espeak-ng-data");
        if Path::new(&used) != expected && Path::new(&used) != data_dir {
            // Leave espeak-ng uninitialized, as `data_dir = None` says, so
            // that the next call starts it cleanly.
            // SAFETY: under the lock; no espeak-ng buffer is held across it.
            unsafe { sys::espeak_Terminate() };
            return Err(Error::Phonemizer(format!(
                "espeak-ng loaded its data from {used} instead of {}",
                expected.display()
            )));
        }
        self.data_dir = Some(data_dir.to_path_buf());
        self.all_languages = all_languages;
        Ok(())
    }
}

/// Writes the embedded espeak-ng data under `dir/espeak-ng-data/` unless an
/// identical copy is there; files are written to temporaries and renamed.
pub fn install_data(dir: &Path) -> Result<()> {
    let root = dir.join("espeak-ng-data");
    let write_err = |path: &Path, source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    for (rel, bytes) in embedded_files() {
        let dest = root.join(rel);
        if std::fs::metadata(&dest).is_ok_and(|m| m.len() == bytes.len() as u64) {
            continue;
        }
        let parent = dest.parent().unwrap_or(&root);
        std::fs::create_dir_all(parent).map_err(|e| write_err(parent, e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(|e| write_err(parent, e))?;
        std::io::Write::write_all(&mut tmp, bytes).map_err(|e| write_err(&dest, e))?;
        tmp.persist(&dest).map_err(|e| write_err(&dest, e.error))?;
    }
    Ok(())
}

/// Selects the espeak-ng voice with the translator options Piper's
/// espeak-ng gives it (Piper does this before every text).
fn set_voice(voice: &str) -> Result<()> {
    select_voice(voice)?;
    // SAFETY: called with the lock held; a voice (and so a translator) is selected.
    unsafe { sys::vivace_piper_language_options() };
    Ok(())
}

/// Selects the espeak-ng voice `voice` (a name such as `en-us` or an
/// identifier such as `gmw/en-US`). The caller holds the lock.
fn select_voice(voice: &str) -> Result<()> {
    let name = CString::new(voice)
        .map_err(|_| Error::Phonemizer(format!("bad espeak voice name {voice:?}")))?;
    // SAFETY: called with the lock held, after initialization.
    let status = unsafe { sys::espeak_SetVoiceByName(name.as_ptr()) };
    if status != sys::EE_OK {
        return Err(Error::Phonemizer(format!(
            "espeak-ng has no voice `{voice}` (check `espeak.voice` in the voice's .onnx.json)"
        )));
    }
    Ok(())
}

/// Each text's phonemes as phonemizer 3.4's espeak backend gets them:
/// espeak-ng initialized with the data in `data_dir/espeak-ng-data`, the
/// voice `voice` selected, then `espeak_TextToPhonemes` (UTF-8, IPA, `_`
/// between phonemes) clause by clause until the text is consumed, the
/// non-empty clauses joined with a space. Kokoro's text pipeline reads
/// espeak-ng this way (`vivace_frontend::kokoro_text`).
pub fn espeak_ipa_by_clause(data_dir: &Path, voice: &str, texts: &[String]) -> Result<Vec<String>> {
    let mut state = lock();
    state.initialize(data_dir, false)?;
    select_voice(voice)?;
    Ok(texts.iter().map(|text| phonemizer_clauses(text)).collect())
}

/// phonemizer's `EspeakWrapper.text_to_phonemes` for one text. The caller
/// holds the lock, with espeak-ng initialized and a voice selected.
fn phonemizer_clauses(text: &str) -> String {
    // ctypes would end the C string at a NUL; we keep the rest of the text.
    let Ok(c_text) = CString::new(text.replace('\0', " ")) else {
        return String::new();
    };
    /// IPA, with `_` written between the phonemes of a word.
    const MODE: c_int = (b'_' as c_int) << 8 | sys::ESPEAK_PHONEMES_IPA;
    let mut cursor: *const c_void = c_text.as_ptr().cast();
    let mut clauses = Vec::new();
    while !cursor.is_null() {
        // SAFETY: `cursor` points into `c_text` (or espeak-ng advanced it
        // within it, or set it to NULL at the end, which ends the loop); the
        // lock is held; espeak-ng is initialized and a voice is selected. The
        // returned string is copied before the next call overwrites it.
        let phonemes = unsafe {
            let out = sys::espeak_TextToPhonemes(&mut cursor, sys::ESPEAK_CHARS_UTF8, MODE);
            if out.is_null() {
                break;
            }
            CStr::from_ptr(out).to_string_lossy().into_owned()
        };
        if !phonemes.is_empty() {
            clauses.push(phonemes);
        }
    }
    clauses.join(" ")
}

/// piper's `espeakbridge.get_phonemes`: clauses until the text is consumed.
/// The caller holds the lock.
fn clauses(text: &str) -> Vec<Clause> {
    // A NUL would end the C string early; Piper's bridge would stop there too,
    // but we keep the rest of the text.
    let Ok(c_text) = CString::new(text.replace('\0', " ")) else {
        return Vec::new();
    };
    let mut cursor: *const c_void = c_text.as_ptr().cast();
    let mut out = Vec::new();
    while !cursor.is_null() {
        let mut terminator: c_int = 0;
        // SAFETY: `cursor` points into `c_text` (or is advanced by espeak within
        // it); the lock is held; espeak was initialized and a voice is set.
        let phonemes = unsafe {
            if text_to_phonemes_with_terminator(&mut cursor, &mut terminator) {
                ipa_as_piper()
            } else {
                break;
            }
        };
        let code = terminator & 0x000F_FFFF;
        let terminator = match code {
            CLAUSE_PERIOD => ".",
            CLAUSE_QUESTION => "?",
            CLAUSE_EXCLAMATION => "!",
            CLAUSE_COMMA => ",",
            CLAUSE_COLON => ":",
            CLAUSE_SEMICOLON => ";",
            _ => "",
        };
        out.push(Clause {
            phonemes,
            terminator,
            end_of_sentence: code & CLAUSE_TYPE_SENTENCE == CLAUSE_TYPE_SENTENCE,
        });
    }
    out
}

/// Upstream's `espeak_TextToPhonemesWithTerminator` (speech.c), minus the
/// final phoneme-string call, which the caller makes. English voices decode
/// with ISO-8859-1 as fallback (only used when UTF-8 decoding fails).
///
/// # Safety
/// The espeak lock is held, espeak is initialized with a voice set, and
/// `cursor` points into a live NUL-terminated string (or at its end).
unsafe fn text_to_phonemes_with_terminator(
    cursor: &mut *const c_void,
    terminator: &mut c_int,
) -> bool {
    // SAFETY: the caller's contract (lock held, espeak initialized, a
    // voice set, `cursor` inside a NUL-terminated string).
    unsafe {
        let mut decoder = sys::p_decoder;
        if decoder.is_null() {
            decoder = sys::create_text_decoder();
            sys::p_decoder = decoder;
        }
        let encoding = sys::ENCODING_ISO_8859_1;
        if sys::text_decoder_decode_string_multibyte(
            decoder,
            *cursor,
            encoding,
            sys::ESPEAK_CHARS_AUTO,
        ) != 0
        {
            return false;
        }
        sys::TranslateClauseWithTerminator(
            sys::translator,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            terminator,
        );
        *cursor = sys::text_decoder_get_buffer(decoder);
        true
    }
}

/// The translated clause's IPA as espeak-ng 724808c5 (Piper 1.8) writes it:
/// `vivace_piper_ipa` (in `vivace-espeak-sys`) runs each phoneme's program
/// without the phonemes before it, as upstream 8afe77ba does.
///
/// # Safety
/// The espeak lock is held and a clause has been translated.
unsafe fn ipa_as_piper() -> String {
    let mut buffer = vec![0u8; 4096];
    loop {
        // SAFETY: the caller holds the lock after a clause was translated;
        // `buffer` is writable for its whole length.
        let len = unsafe { sys::vivace_piper_ipa(buffer.as_mut_ptr().cast(), buffer.len()) };
        if len < buffer.len() {
            buffer.truncate(len);
            return String::from_utf8_lossy(&buffer).into_owned();
        }
        buffer.resize(len + 1, 0);
    }
}

/// The most phonemes Vivace speaks as one sentence, about a minute of
/// speech: a longer one (text without sentence punctuation) is cut by
/// [`split_long_sentence`], so that it cannot exhaust memory or stall a
/// stream. Piper speaks such text as one sentence; nothing shorter changes.
pub const MAX_SENTENCE_PHONEMES: usize = 1000;

/// Cuts a sentence of more than [`MAX_SENTENCE_PHONEMES`] phonemes into
/// pieces no longer than that: after its last clause mark (`,` `:` `;` and
/// the space Piper adds after them) before the limit, else at its last word
/// space, else at the limit. Shorter sentences come back whole.
pub fn split_long_sentence(mut phonemes: Vec<String>) -> Vec<Vec<String>> {
    let mut pieces = Vec::new();
    while phonemes.len() > MAX_SENTENCE_PHONEMES {
        let head = &phonemes[..MAX_SENTENCE_PHONEMES];
        let after_clause = head
            .windows(2)
            .rposition(|w| matches!(w[0].as_str(), "," | ":" | ";") && w[1] == " ")
            .map(|i| i + 2);
        let at_space = head.iter().rposition(|p| p == " ").filter(|&i| i > 0);
        let cut = after_clause.or(at_space).unwrap_or(MAX_SENTENCE_PHONEMES);
        let rest = phonemes.split_off(cut);
        pieces.push(phonemes);
        phonemes = rest;
    }
    pieces.push(phonemes);
    pieces
}

/// Splits out `[[ raw phonemes ]]` blocks like Python's
/// `re.split(r"(\[\[.*?\]\])", text)`: text and blocks alternate, the first
/// and last parts are text (possibly empty), a block never spans a newline.
fn split_raw_blocks(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    let mut last_end = 0;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        let line_end = after.find('\n').unwrap_or(after.len());
        match after[..line_end].find("]]") {
            Some(close) => {
                let block_start = offset + start;
                let block_end = block_start + 2 + close + 2;
                parts.push(&text[last_end..block_start]);
                parts.push(&text[block_start..block_end]);
                last_end = block_end;
                offset = block_end;
                rest = &text[block_end..];
            }
            None => {
                offset += start + 1;
                rest = &text[offset..];
            }
        }
    }
    parts.push(&text[last_end..]);
    parts
}

/// `re.sub(r"\([^)]+\)", "", s)`: drops espeak's `(lang)` switch markers.
fn strip_language_flags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(')') {
            Some(close) if close > 0 => rest = &after[close + 1..],
            _ => {
                out.push('(');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Piper's `_merge_known_vowel_clusters`: longest known cluster first.
fn merge_clusters(phonemes: Vec<String>, clusters: &[Vec<String>]) -> Vec<String> {
    let Some(max_len) = clusters.iter().map(Vec::len).max() else {
        return phonemes;
    };
    let mut out = Vec::with_capacity(phonemes.len());
    let mut i = 0;
    while i < phonemes.len() {
        let longest = (2..=max_len.min(phonemes.len() - i))
            .rev()
            .find(|&n| clusters.iter().any(|c| c.as_slice() == &phonemes[i..i + n]));
        match longest {
            Some(n) => {
                out.push(phonemes[i..i + n].concat());
                i += n;
            }
            None => {
                out.push(phonemes[i].clone());
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python: `re.split(r"(\[\[.*?\]\])", "a [[ b ]] c [[d]]")` →
    /// `['a ', '[[ b ]]', ' c ', '[[d]]', '']`.
    #[test]
    fn raw_blocks_split_like_python() {
        assert_eq!(
            split_raw_blocks("a [[ b ]] c [[d]]"),
            vec!["a ", "[[ b ]]", " c ", "[[d]]", ""]
        );
        assert_eq!(split_raw_blocks("no blocks"), vec!["no blocks"]);
        // `.` does not match a newline: `['x [[a\nb]] y']`.
        assert_eq!(split_raw_blocks("x [[a\nb]] y"), vec!["x [[a\nb]] y"]);
    }

    /// Python: `re.sub(r"\([^)]+\)", "", "(en)həlˈoʊ (fr)wˈɜːld()")` → `'həlˈoʊ wˈɜːld()'`.
    #[test]
    fn language_flags_are_removed() {
        assert_eq!(
            strip_language_flags("(en)həlˈoʊ (fr)wˈɜːld()"),
            "həlˈoʊ wˈɜːld()"
        );
    }

    #[test]
    fn long_sentences_are_cut_after_clauses_then_at_spaces() {
        let word = |w: &str| w.chars().map(String::from).collect::<Vec<_>>();
        // 1,000 phonemes of words, a comma, then more words.
        let mut sentence = Vec::new();
        while sentence.len() < 900 {
            sentence.extend(word("abc "));
        }
        sentence.extend(word(", "));
        let clause_end = sentence.len();
        while sentence.len() < 2500 {
            sentence.extend(word("abc "));
        }
        let pieces = split_long_sentence(sentence.clone());
        assert_eq!(
            pieces[0].len(),
            clause_end,
            "cut after the comma and its space"
        );
        assert!(pieces.iter().all(|p| p.len() <= MAX_SENTENCE_PHONEMES));
        assert!(pieces[1..].iter().all(|p| p[0] == " " || p[0] == "a"));
        assert_eq!(pieces.concat(), sentence, "nothing is lost");
        let short = word("abc.");
        assert_eq!(split_long_sentence(short.clone()), vec![short]);
        let unbroken = vec!["a".to_string(); 2100];
        let pieces = split_long_sentence(unbroken);
        assert_eq!(
            pieces.iter().map(Vec::len).collect::<Vec<_>>(),
            [1000, 1000, 100]
        );
    }

    #[test]
    fn clusters_merge_longest_first() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let clusters = vec![s(&["a", "ɪ"]), s(&["a", "ɪ", "ə"])];
        assert_eq!(
            merge_clusters(s(&["h", "a", "ɪ", "ə", "a", "ɪ"]), &clusters),
            s(&["h", "aɪə", "aɪ"])
        );
    }
}
