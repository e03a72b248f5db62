//! The one error type of the front-end crate.

use std::path::PathBuf;

/// What can go wrong turning text into phonemes or samples into files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An output file could not be created, written or moved into place.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file the user asked for.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The WAV encoder failed.
    #[error("cannot encode WAV {path}: {source}")]
    Wav {
        /// The file the user asked for.
        path: PathBuf,
        /// hound's reason.
        #[source]
        source: hound::Error,
    },
    /// The phonemizer (espeak-ng) could not start or failed on the text.
    #[error("phonemizer: {0}")]
    Phonemizer(String),
    /// The espeak-ng voice needs a language's dictionary that is not
    /// installed (only English is built in).
    #[error("espeak-ng voice `{voice}` needs espeak-ng's data for every language, which is not installed in {dir}: run `vivace download espeak-ng-data` (piper-tts 1.8.0's copy, about 34 MB from PyPI)")]
    LanguageData {
        /// The espeak-ng voice, e.g. `de`.
        voice: String,
        /// Where the data was looked for.
        dir: PathBuf,
    },
    /// A tokenizer file is missing or malformed.
    #[error("{path}: {reason}")]
    TokenizerFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An audio file given as input is unreadable or unusable.
    #[error("{path}: {reason}")]
    BadAudio {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A recording could not be resampled (a rate of 0, or a ratio the
    /// resampler refuses).
    #[error("cannot resample audio from {from} Hz to {to} Hz: {reason}")]
    Resample {
        /// The recording's rate.
        from: u32,
        /// The rate asked for.
        to: u32,
        /// The resampler's message.
        reason: String,
    },
    /// The text cannot be tokenized for this voice.
    #[error("{0}")]
    Untokenizable(String),
    /// TLTK's data (Thai) is missing or unreadable.
    #[error("Thai phonemizer data {path}: {reason} (run `vivace download tltk` to fetch TLTK 1.10's tables, a 20 MB wheel from PyPI)")]
    ThaiData {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// OpenJTalk's dictionary (Japanese) is missing or unreadable.
    #[error("Japanese dictionary {path}: {reason}")]
    JapaneseData {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// uroman's data is missing or unreadable.
    #[error("romanizer: {0}")]
    Romanizer(String),
}

/// Result with the front end's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
