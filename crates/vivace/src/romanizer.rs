//! The process's uroman (for `is_uroman` MMS voices and `vivace
//! romanize`): its data fetched into the voice store once, its tables
//! loaded once (about 0.1 s) and shared.

use std::sync::{Arc, Mutex};

use vivace_frontend::uroman::Uroman;

use crate::synth::SynthError;
use crate::voice_store::VoiceStore;

static SHARED: Mutex<Option<Arc<Uroman>>> = Mutex::new(None);

/// uroman with its data from the voice store (fetched on first use).
pub fn shared() -> Result<Arc<Uroman>, SynthError> {
    let mut shared = SHARED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(uroman) = shared.as_ref() {
        return Ok(uroman.clone());
    }
    let dir = VoiceStore::from_env()?.ensure_uroman_data()?;
    let uroman = Arc::new(Uroman::load(&dir)?);
    *shared = Some(uroman.clone());
    Ok(uroman)
}
