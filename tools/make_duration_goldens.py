#!/usr/bin/env python3
"""Record the durations Piper's own ONNX graph gives the golden sentences.

`make_goldens.py` records Piper's waveforms; this adds, for every render at
noise 0, the frames per input id that the graph's duration predictor decides
(the output of its `/Ceil` node, exposed as an extra graph output and run with
onnxruntime). With them Vivace can synthesize a golden sentence on Piper's
alignment (`Vits::synthesize_with_durations`) and compare waveforms sample by
sample even where reduced precision (TF32, bf16, f16-stored weights) rounds a
predicted duration the other way.

Setup (a throwaway venv; nothing here is needed by the Rust build):

    python3 -m venv /tmp/dur-venv
    /tmp/dur-venv/bin/pip install onnxruntime onnx numpy
    /tmp/dur-venv/bin/python tools/make_duration_goldens.py \\
        --model ~/.cache/vivace/voices/en_US-joe-medium/en_US-joe-medium.onnx

Writes `crates/vivace/tests/fixtures/piper_durations.json`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "crates" / "vivace" / "tests" / "fixtures"
CEIL = "/Ceil_output_0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="en_US-joe-medium.onnx")
    parser.add_argument("--out", type=Path, default=FIXTURES / "piper_durations.json")
    args = parser.parse_args()

    goldens = json.loads((FIXTURES / "piper_goldens.json").read_text())
    model = onnx.load(str(args.model))
    if not any(CEIL in n.output for n in model.graph.node):
        raise SystemExit(f"{args.model}: no {CEIL} in the graph: not a Piper VITS export")
    model.graph.output.append(onnx.helper.make_tensor_value_info(CEIL, onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    hop = 256

    cases = []
    for case in goldens["cases"]:
        for s_index, sentence in enumerate(case["sentences"]):
            ids = np.array([sentence["ids"]], dtype=np.int64)
            for render in sentence["renders"]:
                if render["noise_scale"] != 0.0 or render["noise_w"] != 0.0:
                    continue
                scales = np.array(render["scales_input"], dtype=np.float32)
                audio, ceil = session.run(
                    None, {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64), "scales": scales}
                )
                durations = [int(d) for d in ceil.reshape(-1)]
                if sum(durations) * hop != audio.size or audio.size != render["num_samples"]:
                    raise SystemExit(f"{case['id']}: durations do not account for the golden's samples")
                cases.append(
                    {
                        "case": case["id"],
                        "sentence": s_index,
                        "file": render["file"],
                        "length_scale": render["length_scale"],
                        "ids": sentence["ids"],
                        "durations": durations,
                    }
                )
    out = {
        "generator": "tools/make_duration_goldens.py",
        "reference": "Piper's ONNX graph (en_US-joe-medium), output of its /Ceil node",
        "model_sha256": hashlib.sha256(args.model.read_bytes()).hexdigest(),
        "versions": {p: importlib.metadata.version(p) for p in ("onnxruntime", "onnx", "numpy")},
        "hop_length": hop,
        "renders": cases,
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {len(cases)} renders to {args.out}")


if __name__ == "__main__":
    main()
