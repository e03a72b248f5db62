//! Builds espeak-ng's C library with the `cc` crate: a C compiler is all it
//! needs (no cmake, no libclang, no system library).
//!
//! The C sources are those of the crates.io package `espeak-rs-sys` 0.2.0
//! (upstream espeak-ng at d7b26b54), pinned with its checksum in
//! `upstream/Cargo.lock`. cargo itself downloads and unpacks it, through
//! `cargo metadata` on `upstream/Cargo.toml`; that package is never built, so
//! its own build script (cmake and bindgen) never runs. `ESPEAK_NG_SOURCE_DIR`
//! points the build at another copy of the same tree instead.
//!
//! Configuration: what cmake's defaults gave on a Linux machine without
//! mbrola, libsonic or libpcaudio, less what phonemization never uses
//! (asynchronous playback and its thread; the C++ speech-player synthesizer).
//! A failure is one `cargo::error` line that names the missing piece.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Overrides where the espeak-ng source tree is (the folder holding `src/`).
const SOURCE_ENV: &str = "ESPEAK_NG_SOURCE_DIR";
/// The registry package that carries the sources, and its version.
const UPSTREAM_PACKAGE: (&str, &str) = ("espeak-rs-sys", "0.2.0");
/// espeak-ng's version at that commit (its CMakeLists.txt `project` line).
const PACKAGE_VERSION: &str = "1.52.0.1";

/// `src/libespeak-ng` files of the library (its CMakeLists.txt), with Klatt
/// and without the async, mbrola and speech-player parts.
const LIBRARY_FILES: &[&str] = &[
    "common.c",
    "mnemonics.c",
    "error.c",
    "ieee80.c",
    "compiledata.c",
    "compiledict.c",
    "dictionary.c",
    "encoding.c",
    "intonation.c",
    "langopts.c",
    "numbers.c",
    "phoneme.c",
    "phonemelist.c",
    "readclause.c",
    "setlengths.c",
    "soundicon.c",
    "spect.c",
    "ssml.c",
    "synthdata.c",
    "synthesize.c",
    "tr_languages.c",
    "translate.c",
    "translateword.c",
    "voices.c",
    "wavegen.c",
    "speech.c",
    "espeak_api.c",
    "klatt.c",
];

/// `src/ucd-tools/src` files: the Unicode character database espeak-ng uses.
const UCD_FILES: &[&str] = &[
    "case.c",
    "categories.c",
    "ctype.c",
    "proplist.c",
    "scripts.c",
    "tostring.c",
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/abi_check.c");
    println!("cargo::rerun-if-changed=src/piper_compat.c");
    println!("cargo::rerun-if-changed=upstream/Cargo.toml");
    println!("cargo::rerun-if-changed=upstream/Cargo.lock");
    println!("cargo::rerun-if-env-changed={SOURCE_ENV}");
    if let Err(message) = build() {
        // One readable line; cargo fails the build on it, without a backtrace.
        println!("cargo::error={message}");
    }
}

fn build() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let source = match env::var_os(SOURCE_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => registry_source(&manifest_dir)?,
    };
    let library = source.join("src/libespeak-ng");
    if !library.join("translate.c").is_file() {
        return Err(format!(
            "{} is not an espeak-ng source tree (no src/libespeak-ng/translate.c); unset {SOURCE_ENV} or point it at one",
            source.display()
        ));
    }
    println!("cargo::rerun-if-changed={}", library.display());

    let config_dir = out_dir.join("include");
    std::fs::create_dir_all(&config_dir)
        .map_err(|e| format!("cannot write {}: {e}", config_dir.display()))?;
    std::fs::write(config_dir.join("config.h"), config_header())
        .map_err(|e| format!("cannot write config.h in {}: {e}", config_dir.display()))?;

    let mut build = cc::Build::new();
    build
        .include(&config_dir)
        .include(source.join("src/include"))
        .include(source.join("src/include/compat"))
        .include(source.join("src/ucd-tools/src/include"))
        .define("LIBESPEAK_NG_EXPORT", "1")
        .define("NDEBUG", None)
        // Only a last resort: Vivace always passes its own data folder.
        .define("PATH_ESPEAK_DATA", "\"/usr/local/share/espeak-ng-data\"")
        .warnings(false)
        .cargo_warnings(false);

    check_compiler(&build)?;

    // The declarations in src/lib.rs against the headers: compiled, not linked.
    build
        .clone()
        .include(&library)
        .file(manifest_dir.join("src/abi_check.c"))
        .try_compile_intermediates()
        .map_err(|e| {
            format!(
                "src/abi_check.c: the declarations in vivace-espeak-sys/src/lib.rs no longer match espeak-ng's headers: {}",
                first_line(&e.to_string())
            )
        })?;

    build
        .include(&library)
        .files(LIBRARY_FILES.iter().map(|f| library.join(f)))
        // Vivace's own: what Piper's newer espeak-ng does differently.
        .file(manifest_dir.join("src/piper_compat.c"))
        .files(
            UCD_FILES
                .iter()
                .map(|f| source.join("src/ucd-tools/src").join(f)),
        );
    let msvc = build.try_get_compiler().is_ok_and(|c| c.is_like_msvc());
    if !msvc {
        // espeak-ng's own flags (its CMakeLists.txt): signed overflow wraps.
        build.flag("-fwrapv").flag("-fvisibility=hidden");
    }
    build.try_compile("espeak-ng").map_err(|e| {
        format!(
            "compiling espeak-ng's C sources failed: {}",
            first_line(&e.to_string())
        )
    })?;
    Ok(())
}

/// Fails with the fix when there is no C compiler to run.
fn check_compiler(build: &cc::Build) -> Result<(), String> {
    const INSTALL: &str = "install one (Debian/Ubuntu: apt install gcc; Fedora: dnf install gcc; macOS: xcode-select --install) or set CC to one";
    let compiler = build.try_get_compiler().map_err(|e| {
        format!(
            "no C compiler found ({}): {INSTALL}",
            first_line(&e.to_string())
        )
    })?;
    match compiler.to_command().arg("--version").output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "no C compiler found (`{}` could not be started); espeak-ng is C: {INSTALL}",
            compiler.path().display()
        )),
        // MSVC's cl has no --version but runs: only a missing program is fatal.
        _ => Ok(()),
    }
}

/// The unpacked `espeak-rs-sys` package's `espeak-ng` folder, as cargo
/// reports it for `upstream/Cargo.toml` (downloading it on first use).
fn registry_source(manifest_dir: &Path) -> Result<PathBuf, String> {
    let upstream = manifest_dir.join("upstream");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let (name, version) = UPSTREAM_PACKAGE;
    let target = env::var("TARGET").map_err(|e| format!("TARGET: {e}"))?;
    let mut failure = String::new();
    // Offline first, so an unpacked copy is used without touching the network.
    for offline in [true, false] {
        let mut command = Command::new(&cargo);
        command
            .current_dir(&upstream)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--locked",
                "--manifest-path",
            ])
            .arg(upstream.join("Cargo.toml"))
            // Skips other platforms' dependencies of the package's (unused)
            // build script: less to download.
            .args(["--filter-platform", &target]);
        if offline {
            command.arg("--offline");
        }
        let output = command.output().map_err(|e| {
            format!(
                "cannot run cargo ({}) to fetch espeak-ng's sources: {e}",
                Path::new(&cargo).display()
            )
        })?;
        if !output.status.success() {
            failure = String::from_utf8_lossy(&output.stderr).into_owned();
            continue;
        }
        let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("cargo metadata printed something other than JSON: {e}"))?;
        let manifest = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name && p["version"] == version)
            .and_then(|p| p["manifest_path"].as_str())
            .ok_or_else(|| format!("cargo metadata did not list {name} {version}"))?;
        let root = Path::new(manifest).parent().unwrap_or(Path::new(""));
        return Ok(root.join("espeak-ng"));
    }
    Err(format!(
        "cannot download espeak-ng's C sources (crates.io package {name} {version}) with cargo: {}. Connect to crates.io once, or set {SOURCE_ENV} to an espeak-ng source tree at commit d7b26b54",
        last_error_line(&failure)
    ))
}

/// espeak-ng's `config.h` (from its `config.h.in`) for this configuration.
fn config_header() -> String {
    let mkstemp =
        env::var("CARGO_CFG_TARGET_FAMILY").is_ok_and(|f| f.split(',').any(|f| f == "unix"));
    format!(
        "#define HAVE_MKSTEMP {}\n\
         #define USE_ASYNC 0\n\
         #define USE_KLATT 1\n\
         #define USE_LIBPCAUDIO 0\n\
         #define USE_LIBSONIC 0\n\
         #define USE_MBROLA 0\n\
         #define USE_SPEECHPLAYER 0\n\
         #define PACKAGE_VERSION \"{PACKAGE_VERSION}\"\n",
        u8::from(mkstemp)
    )
}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
}

/// cargo's error line (`error: …`), else its last non-empty line.
fn last_error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| l.starts_with("error:"))
        .or(lines.last())
        .copied()
        .unwrap_or("no message")
}
