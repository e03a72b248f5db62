//! Vivace's front end, around the models:
//!
//! - [`phonemize`]: text → sentences of IPA phonemes, identical to Piper 1.8
//!   (espeak-ng built from source, its data embedded);
//! - [`vits_tokenizer`]: text → character ids for MMS-TTS voices, with the
//!   rules of `transformers`' `VitsTokenizer`;
//! - [`chatterbox_text`]: Chatterbox's text normalization (`punc_norm`) and
//!   its `tokenizer.json` (Hugging Face `tokenizers`);
//! - [`sentences`]: long text split into sentences;
//! - [`mel`]: mel spectrograms as librosa computes them (the voice
//!   encoder's input);
//! - [`speaker_audio`]: reference recordings read and prepared for the voice
//!   encoder as resemblyzer prepares them, with [`resample`] (to 16 kHz) and
//!   [`silence`] (long pauses trimmed by a WebRTC VAD);
//! - [`trim`]: leading and trailing silence trimmed as librosa does it;
//! - [`audio`]: Piper's post-processing (peak normalization, volume, clipping,
//!   16-bit conversion, sentence silence) and WAV / raw PCM output that never
//!   leaves a partial file behind.

pub mod audio;
pub mod cangjie;
pub mod chatterbox_text;
pub mod error;
pub mod hebrew;
pub mod japanese;
pub mod kakasi;
pub mod kaldi_fbank;
pub mod kokoro_text;
pub mod loudness;
pub mod mel;
pub mod phonemize;
pub mod resample;
pub mod sentences;
pub mod silence;
pub mod speaker_audio;
#[cfg(test)]
mod test_fixtures;
pub mod thai;
pub mod trim;
pub mod uroman;
pub mod vits_tokenizer;

pub use error::{Error, Result};
