//! The process's Thai phonemizer (for `phoneme_type: thai` Piper voices):
//! TLTK's tables fetched into the voice store once, loaded once and shared.

use std::sync::{Arc, Mutex};

use vivace_frontend::thai::ThaiPhonemizer;

use crate::synth::SynthError;
use crate::voice_store::VoiceStore;

static SHARED: Mutex<Option<Arc<ThaiPhonemizer>>> = Mutex::new(None);

/// Piper's Thai phonemizer with TLTK's data from the voice store (fetched
/// on first use).
pub fn shared() -> Result<Arc<ThaiPhonemizer>, SynthError> {
    let mut shared = SHARED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(thai) = shared.as_ref() {
        return Ok(thai.clone());
    }
    let dir = VoiceStore::from_env()?.ensure_tltk_data()?;
    let thai = Arc::new(ThaiPhonemizer::load(&dir)?);
    *shared = Some(thai.clone());
    Ok(thai)
}
