//! The process's front ends that read data from the voice store (uroman,
//! TLTK for Thai, OpenJTalk's dictionary for Japanese): each fetched on
//! first use, loaded once and shared by every voice and request.

use std::sync::{Arc, Mutex, PoisonError};

use vivace_frontend::japanese::njd::Feature;
use vivace_frontend::japanese::postprocess::NaniReading;
use vivace_frontend::japanese::sudachi::Sudachi;
use vivace_frontend::japanese::JapanesePhonemizer;
use vivace_frontend::thai::ThaiPhonemizer;
use vivace_frontend::uroman::Uroman;
use vivace_models::nani::NaniModel;

use crate::synth::SynthError;
use crate::voice_store::VoiceStore;

/// One lazily loaded, shared front end.
struct Shared<T>(Mutex<Option<Arc<T>>>);

impl<T> Shared<T> {
    const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// The loaded front end, loading it first if no call has yet.
    fn get(
        &self,
        load: impl FnOnce(&VoiceStore) -> Result<T, SynthError>,
    ) -> Result<Arc<T>, SynthError> {
        let mut shared = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(loaded) = shared.as_ref() {
            return Ok(loaded.clone());
        }
        let loaded = Arc::new(load(&VoiceStore::from_env()?)?);
        *shared = Some(loaded.clone());
        Ok(loaded)
    }
}

static UROMAN: Shared<Uroman> = Shared::new();
static THAI: Shared<ThaiPhonemizer> = Shared::new();
static JAPANESE: Shared<JapanesePhonemizer> = Shared::new();

/// uroman (for `is_uroman` MMS voices and `vivace romanize`), its tables
/// loaded once (about 0.1 s).
pub fn uroman() -> Result<Arc<Uroman>, SynthError> {
    UROMAN.get(|store| Ok(Uroman::load(&store.ensure_uroman_data()?)?))
}

/// Piper's Thai phonemizer with TLTK's tables.
pub fn thai() -> Result<Arc<ThaiPhonemizer>, SynthError> {
    THAI.get(|store| Ok(ThaiPhonemizer::load(&store.ensure_tltk_data()?)?))
}

/// Piper's Japanese phonemizer with OpenJTalk's dictionary,
/// pyopenjtalk-plus's 「何」 model and Sudachi.
pub fn japanese() -> Result<Arc<JapanesePhonemizer>, SynthError> {
    JAPANESE.get(|store| {
        let dir = store.ensure_openjtalk_dictionary()?;
        let sudachi = Sudachi::open(&store.ensure_sudachi_dictionary()?)?;
        let nani = NaniModel::load(&dir.join("nani_enc.onnx"), &dir.join("nani_model.onnx"))?;
        Ok(JapanesePhonemizer::load(&dir)?
            .with_nani(Box::new(Nani(nani)))
            .with_sudachi(sudachi))
    })
}

/// The 「何」 model as the front end asks for it.
struct Nani(NaniModel);

impl NaniReading for Nani {
    fn reads_nan(&self, next: &Feature) -> bool {
        self.0.reads_nan(&[
            &next.pos,
            &next.pos_group1,
            &next.pos_group2,
            &next.pron,
            &next.ctype,
            &next.cform,
        ])
    }
}
