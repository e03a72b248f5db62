#!/usr/bin/env python3
"""A small random voice encoder saved the way Chatterbox saves its own
(`ve.safetensors`: `lstm.*` of a batch-first `nn.LSTM`, `proj.*` of the
output `nn.Linear`), with the embeddings PyTorch computes for a random batch
of mel windows, for the `VoiceEncoder::from_chatterbox` test. Chatterbox's
real `ve.safetensors` cannot be fetched here; its forward pass is
`normalize(relu(proj(h_last)))` (`ve_final_relu = True`), written out below
with PyTorch's own LSTM. The sizes are small (hidden 32, embedding 16); the
loader reads them from the tensors.

    /tmp/mms-venv/bin/python tools/make_chatterbox_encoder_fixture.py
"""

from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "crates" / "vivace-models" / "tests" / "fixtures" / "chatterbox_ve"


def main() -> None:
    torch.manual_seed(5)
    lstm = torch.nn.LSTM(40, 32, 3, batch_first=True)
    proj = torch.nn.Linear(32, 16)
    mels = torch.rand(3, 24, 40)
    with torch.no_grad():
        _, (hidden, _) = lstm(mels)
        raw = torch.relu(proj(hidden[-1]))
        embeds = raw / torch.linalg.norm(raw, dim=1, keepdim=True)
    OUT.mkdir(parents=True, exist_ok=True)
    tensors = {f"lstm.{k}": v.contiguous() for k, v in lstm.state_dict().items()}
    tensors.update({f"proj.{k}": v.contiguous() for k, v in proj.state_dict().items()})
    save_file(tensors, OUT / "ve.safetensors")
    mels.numpy().astype("<f4").tofile(OUT / "mels.f32")
    embeds.numpy().astype("<f4").tofile(OUT / "embeds.f32")
    print(sorted(tensors), tuple(embeds.shape))


if __name__ == "__main__":
    main()
