#!/usr/bin/env python3
"""Write a small checkpoint in PyTorch's legacy (pre-1.6, non-zip) format,
the format of resemblyzer's `pretrained.pt`, with the values it holds in JSON,
for the loader's tests (`crates/vivace-models/src/torch_legacy.rs`).

It covers what real legacy checkpoints contain: a dict with a nested
`OrderedDict` state dict, float32 parameters (`nn.Parameter` and plain
tensors), an int64 tensor, a non-contiguous view sharing its storage with
another tensor (a transpose), a view with a storage offset, a scalar, and a
non-tensor entry.

    /tmp/mms-venv/bin/python tools/make_torch_legacy_fixture.py
"""

import json
from collections import OrderedDict
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent.parent / "crates" / "vivace-models" / "tests" / "fixtures"


def main() -> None:
    torch.manual_seed(0)
    base = torch.randn(3, 4)
    state = OrderedDict()
    state["lstm.weight_ih_l0"] = torch.nn.Parameter(torch.randn(8, 2))
    state["linear.weight"] = base
    state["linear.weight_t"] = base.t()  # shares base's storage, strides (1, 4)
    state["tail"] = base.view(-1)[5:9]  # storage offset 5
    state["counts"] = torch.arange(6, dtype=torch.int64).view(2, 3)
    state["scale"] = torch.tensor(2.5)
    checkpoint = {"step": 1234, "model_state": state}
    OUT.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, OUT / "legacy.pt", _use_new_zipfile_serialization=False)
    expected = {
        name: {"shape": list(t.shape), "values": t.detach().flatten().tolist()}
        for name, t in state.items()
    }
    (OUT / "legacy.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {OUT / 'legacy.pt'}: {sorted(expected)}")


if __name__ == "__main__":
    main()
