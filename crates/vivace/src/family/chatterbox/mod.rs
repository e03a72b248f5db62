//! Chatterbox (Resemble AI): T3 (text to speech tokens) and S3Gen (speech
//! tokens to audio in a reference voice). The voice family that speaks text
//! comes with T3; here so far is what S3Gen needs from a recording
//! ([`reference`]) and voice conversion through S3Gen alone
//! ([`voice_conversion`]).

pub mod reference;
pub mod voice_conversion;
