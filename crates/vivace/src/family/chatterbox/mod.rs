//! Chatterbox (Resemble AI): T3 (text to speech tokens) and S3Gen (speech
//! tokens to audio in a reference voice).
//!
//! - [`tts`]: the family that speaks text ([`tts::ChatterboxFamily`]);
//! - [`reference`]: what S3Gen needs from a recording (`embed_ref`);
//! - [`speaker`]: T3's speaker embedding from a recording;
//! - [`voice_conversion`]: voice conversion through S3Gen alone.

pub mod reference;
pub mod speaker;
pub mod tts;
pub mod voice_conversion;
