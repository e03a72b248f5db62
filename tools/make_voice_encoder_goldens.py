#!/usr/bin/env python3
"""Golden values of resemblyzer's voice encoder (the GE2E encoder Chatterbox
uses) for Vivace's port, on short speech files committed beside them.

The speech comes from Vivace itself (the default Piper voice), so no
recordings need licensing: two sentences resampled to 16 kHz 16-bit mono
(the encoder's own rate: the mel frames can then be compared exactly) and one
left at 22050 Hz (to exercise resampling, compared by embedding only).

For every file it records, with resemblyzer 0.1.4 (librosa 0.11, webrtcvad):
the preprocessed waveform's length (after resampling, volume normalisation
and silence trimming), the mel spectrogram the encoder saw (frames × 40,
float32; of the waveform zero-padded to the end of the last window), the
partial-utterance embeddings (n × 256, windows of 160 frames every 77) and the
utterance embedding (256); for `speech_16k_a.wav` also the preprocessed, padded
waveform the mel frames were computed from.

    /tmp/mms-venv/bin/pip install resemblyzer==0.1.4 "setuptools<81"
    cargo build --release
    /tmp/mms-venv/bin/python tools/make_voice_encoder_goldens.py
"""

import json
import subprocess
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
from resemblyzer import VoiceEncoder, preprocess_wav
from resemblyzer.audio import wav_to_mel_spectrogram

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "vivace-models" / "tests" / "fixtures" / "voice_encoder"
VIVACE = ROOT / "target" / "release" / "vivace"

TEXTS = {
    "a": "The translation service received a long document this morning, and every paragraph had to be read aloud.",
    "b": "Visitors often ask where the lighthouse keeper lived. His house still stands at the end of the road.",
}


def speak(text: str, path: Path) -> None:
    subprocess.run([str(VIVACE), "say", text, "-f", str(path)], check=True)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, text in TEXTS.items():
        raw = OUT / f"raw_{key}.wav"
        speak(text, raw)
        wav, sr = librosa.load(raw, sr=None)
        raw.unlink()
        if key == "a":
            files["speech_22k.wav"] = (wav, sr)
        files[f"speech_16k_{key}.wav"] = (librosa.resample(wav, orig_sr=sr, target_sr=16000), 16000)
    encoder = VoiceEncoder("cpu", verbose=False)
    goldens = []
    for name, (wav, sr) in sorted(files.items()):
        sf.write(OUT / name, wav, sr, subtype="PCM_16")
        pre = preprocess_wav(OUT / name)
        embed, partials, slices = encoder.embed_utterance(pre, return_partials=True)
        # The frames the encoder saw: of the waveform zero-padded to the end
        # of the last window, as embed_utterance pads it.
        padded = np.pad(pre, (0, max(0, slices[-1].stop - len(pre))), "constant")
        mel = wav_to_mel_spectrogram(padded)
        stem = name.removesuffix(".wav")
        mel.astype("<f4").tofile(OUT / f"{stem}.mel.f32")
        if name == "speech_16k_a.wav":
            # The preprocessed, padded waveform itself, for the mel front end's test.
            padded.astype("<f4").tofile(OUT / f"{stem}.padded.f32")
        partials.astype("<f4").tofile(OUT / f"{stem}.partials.f32")
        embed.astype("<f4").tofile(OUT / f"{stem}.embed.f32")
        goldens.append({
            "file": name,
            "sample_rate": sr,
            "preprocessed_samples": int(len(pre)),
            "mel_frames": int(mel.shape[0]),
            "partials": int(partials.shape[0]),
            "partial_starts": [int(s.start) for s in slices],
        })
        print(name, goldens[-1])
    (OUT / "goldens.json").write_text(json.dumps(goldens, indent=1) + "\n")


if __name__ == "__main__":
    main()
