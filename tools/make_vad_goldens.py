#!/usr/bin/env python3
"""Goldens for Silero VAD and OpenVoice's voice-activity split of a reference.

References, all from PyPI:
- `silero-vad` 6.2.3: the model (`load_silero_vad()`, its TorchScript file,
  the default) and `get_speech_timestamps`;
- `whisper-timestamped` 1.15.9's `get_vad_segments(method="silero")`, which
  OpenVoice's `se_extractor.split_audio_vad` calls: its body is repeated
  below (volume normalization, the call, 0.5 s dilatation and merging),
  because importing the module needs openai-whisper and numba, and it
  loads Silero through `torch.hub` (the network) where this uses the
  package's copy of the same model;
- `openvoice-cli` 0.0.5's `split_audio_vad` (repeated below with pydub, as
  the module imports faster-whisper) and `ToneColorConverter.extract_se`
  over the pieces, with the converter fixture of
  `tools/make_openvoice_goldens.py`.

Run by hand in the environment of `tools/make_openvoice_goldens.py` plus
`pip install --no-deps silero-vad==6.2.3` and `pip install pydub`:

    /tmp/ovenv/bin/python tools/make_vad_goldens.py crates/vivace/tests/fixtures/vad

Files:
- `speech_16k.wav`: 16-bit, 16 kHz: two of the voice-encoder fixtures'
  Piper sentences and the first again, with pauses of 0.8–1.6 s and quiet
  seeded noise throughout;
- `probs.npy`: Silero's speech probability of each 512-sample window of the
  normalized recording;
- `vad.json`: the speech timestamps (samples), the dilated and merged
  segments, and OpenVoice's pieces (ms, as pydub cuts them);
- `se_vad.npy`: `extract_se` over those pieces, averaged (256 values).
"""

import json
import os
import sys
import tempfile

import numpy as np
import soundfile
import torch
from pydub import AudioSegment
from silero_vad import get_speech_timestamps, load_silero_vad

sys.path.insert(0, os.path.dirname(__file__))
from make_openvoice_goldens import extract_se, build, SMALL_MODEL  # noqa: E402

RATE = 16000
ROOT = os.path.join(os.path.dirname(__file__), "..")
SPEECH = os.path.join(ROOT, "crates/vivace-models/tests/fixtures/voice_encoder")


def recording():
    a, _ = soundfile.read(os.path.join(SPEECH, "speech_16k_a.wav"), dtype="float32")
    b, _ = soundfile.read(os.path.join(SPEECH, "speech_16k_b.wav"), dtype="float32")
    gap = lambda s: np.zeros(int(s * RATE), dtype=np.float32)  # noqa: E731
    y = np.concatenate([gap(0.8), a, gap(1.6), b, gap(1.2), a, gap(1.0)])
    y += 0.003 * np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
    return y


def get_vad_segments(audio, model, min_speech_duration=0.1, min_silence_duration=1, dilatation=0.5):
    # whisper_timestamped.transcribe.get_vad_segments, method "silero",
    # output_sample=True.
    audio = audio / max(0.1, audio.abs().max())
    segments = get_speech_timestamps(
        audio,
        model,
        sampling_rate=RATE,
        min_speech_duration_ms=round(min_speech_duration * 1000),
        min_silence_duration_ms=round(min_silence_duration * 1000),
        return_seconds=False,
    )
    raw = [dict(s) for s in segments]
    dilatation = round(dilatation * RATE)
    merged = []
    for seg in segments:
        new = {"start": max(0, seg["start"] - dilatation), "end": min(len(audio), seg["end"] + dilatation)}
        if merged and merged[-1]["end"] >= new["start"]:
            merged[-1]["end"] = new["end"]
        else:
            merged.append(new)
    return raw, [{"start": round(s["start"]), "end": round(s["end"])} for s in merged]


def split_audio_vad(path, segments, split_seconds=10.0):
    # openvoice_cli.se_extractor.split_audio_vad after its VAD call.
    segments = [(float(s["start"]) / RATE, float(s["end"]) / RATE) for s in segments]
    active = AudioSegment.silent(duration=0)
    audio = AudioSegment.from_file(path)
    for start, end in segments:
        active += audio[int(start * 1000) : int(end * 1000)]
    duration = active.duration_seconds
    num_splits = int(np.round(duration / split_seconds))
    assert num_splits > 0, "input audio is too short"
    interval = duration / num_splits
    pieces, files, start = [], [], 0.0
    out = tempfile.mkdtemp()
    for i in range(num_splits):
        end = min(start + interval, duration)
        if i == num_splits - 1:
            end = duration
        piece = active[int(start * 1000) : int(end * 1000)]
        name = os.path.join(out, f"seg{i}.wav")
        piece.export(name, format="wav")
        pieces.append([int(start * 1000), int(end * 1000)])
        files.append(name)
        start = end
    return duration, pieces, files


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "speech_16k.wav")
    soundfile.write(path, recording(), RATE, subtype="PCM_16")
    audio, _ = soundfile.read(path, dtype="float32")
    audio = torch.from_numpy(audio)

    model = load_silero_vad()
    normalized = audio / max(0.1, audio.abs().max())
    model.reset_states()
    probs = []
    for i in range(0, len(normalized), 512):
        chunk = normalized[i : i + 512]
        if len(chunk) < 512:
            chunk = torch.nn.functional.pad(chunk, (0, 512 - len(chunk)))
        probs.append(model(chunk, RATE).item())
    np.save(os.path.join(out, "probs.npy"), np.array(probs, dtype=np.float32))

    model.reset_states()
    raw, segments = get_vad_segments(audio, model)
    duration, pieces, files = split_audio_vad(path, segments)
    converter = build(SMALL_MODEL)
    ses = [extract_se(converter, f) for f in files]
    se = torch.stack(ses).mean(0)
    np.save(os.path.join(out, "se_vad.npy"), se.reshape(-1).numpy().astype(np.float32))
    with open(os.path.join(out, "vad.json"), "w") as f:
        json.dump({"speech": raw, "segments": segments, "active_seconds": duration, "pieces_ms": pieces}, f, indent=1)
    print(f"{len(probs)} windows, {len(raw)} speech runs, {len(segments)} segments, {duration:.2f} s active, {len(pieces)} pieces")


if __name__ == "__main__":
    main()
