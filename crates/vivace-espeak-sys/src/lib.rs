//! espeak-ng's C library, compiled from source by this crate's build script
//! with the `cc` crate, and the declarations Vivace's phonemizer calls.
//!
//! The declarations are written by hand, not generated (no libclang at
//! build time). `src/abi_check.c` checks each one against espeak-ng's
//! headers at every build, so a mismatch is a compile error, not undefined
//! behaviour. Besides the public API, the phonemizer uses a few internals
//! that the static library links (espeak-ng's `espeak_TextToPhonemesWithTerminator`
//! is newer than the vendored commit and is rebuilt from them).
//!
//! espeak-ng keeps global state and is not thread-safe: callers serialize
//! every call (Vivace's phonemizer holds one process-wide lock).

use std::ffi::{c_char, c_int, c_void};

/// `espeak_AUDIO_OUTPUT::AUDIO_OUTPUT_SYNCHRONOUS`: no audio thread, no playback.
pub const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
/// `espeak_Initialize` option: return an error instead of calling `exit()`.
pub const ESPEAK_INITIALIZE_DONT_EXIT: c_int = 0x8000;
/// `espeak_ERROR::EE_OK`.
pub const EE_OK: c_int = 0;
/// Text encoding flag: UTF-8, or 8-bit when the text is not valid UTF-8.
pub const ESPEAK_CHARS_AUTO: c_int = 0;
/// Phoneme mode bit: write phonemes as IPA rather than ASCII mnemonics.
pub const ESPEAK_PHONEMES_IPA: c_int = 0x02;
/// Text encoding flag: UTF-8 only (`espeakCHARS_UTF8`), as phonemizer passes it.
pub const ESPEAK_CHARS_UTF8: c_int = 1;
/// `espeak_ng_ENCODING::ESPEAKNG_ENCODING_ISO_8859_1`.
pub const ENCODING_ISO_8859_1: c_int = 2;

/// Opaque `espeak_ng_TEXT_DECODER`.
pub type TextDecoder = c_void;
/// Opaque internal `Translator` (the current language's rules).
pub type Translator = c_void;

extern "C" {
    /// Loads the data under `path` (the folder holding `espeak-ng-data`);
    /// returns the sample rate, or a negative error code.
    pub fn espeak_Initialize(
        output: c_int,
        buflength: c_int,
        path: *const c_char,
        options: c_int,
    ) -> c_int;
    /// Frees espeak-ng's data, so that `espeak_Initialize` may load another.
    pub fn espeak_Terminate() -> c_int;
    /// The version string; writes the data folder in use to `path_data`.
    pub fn espeak_Info(path_data: *mut *const c_char) -> *const c_char;
    /// Selects a voice (language) by name, e.g. `en-us`; `EE_OK` on success.
    pub fn espeak_SetVoiceByName(name: *const c_char) -> c_int;

    /// Translates the clause at `*text` (encoded per `text_mode`) and returns
    /// its phonemes in `phoneme_mode` (IPA bit, separator in bits 8..);
    /// advances `*text` past the clause, to NULL at the end of the text. The
    /// returned string lives in a static buffer until the next call.
    pub fn espeak_TextToPhonemes(
        text: *mut *const c_void,
        text_mode: c_int,
        phoneme_mode: c_int,
    ) -> *const c_char;

    /// A new text decoder (public in `encoding.h`).
    pub fn create_text_decoder() -> *mut TextDecoder;
    /// Points the decoder at NUL-terminated `input`; 0 on success.
    pub fn text_decoder_decode_string_multibyte(
        decoder: *mut TextDecoder,
        input: *const c_void,
        encoding: c_int,
        flags: c_int,
    ) -> c_int;
    /// Where the decoder stopped in its input (NULL at the end).
    pub fn text_decoder_get_buffer(decoder: *mut TextDecoder) -> *const c_void;

    /// Internal (`translate.h`): the decoder the translator reads from.
    pub static mut p_decoder: *mut TextDecoder;
    /// Internal (`translate.h`): the current voice's translator.
    pub static mut translator: *mut Translator;
    /// Internal (`translate.h`): translates one clause from `p_decoder`.
    pub fn TranslateClauseWithTerminator(
        tr: *mut Translator,
        tone_out: *mut c_int,
        voice_change: *mut *mut c_char,
        terminator_out: *mut c_int,
    );
    /// Internal (`dictionary.h`): the last translated clause's phonemes in
    /// `phoneme_mode` (IPA bit, separator character in bits 8..).
    pub fn GetTranslatedPhonemeString(phoneme_mode: c_int) -> *const c_char;

    /// Vivace's (`src/piper_compat.c`): the last translated clause's IPA as
    /// espeak-ng 724808c5 (piper-tts 1.8) writes it, into `out`
    /// (NUL-terminated when it fits). Returns the length in bytes without
    /// the NUL: when it is `capacity` or more, nothing was written and the
    /// call must be repeated with a larger buffer.
    pub fn vivace_piper_ipa(out: *mut c_char, capacity: usize) -> usize;
    /// Vivace's (`src/piper_compat.c`): gives the selected language's
    /// translator the options 724808c5 gives it (Hebrew's); call after
    /// every voice selection.
    pub fn vivace_piper_language_options();
}
