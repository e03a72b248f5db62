#!/usr/bin/env python3
"""Token ids of native-script text for an `is_uroman` MMS voice, from
transformers' `VitsTokenizer` with uroman installed (it romanizes
automatically: `Uroman().romanize_string` after lower-casing, then keeps
the vocabulary's characters).

The vocabulary is the `tiny-sdp` fixture's (MMS's Latin letters); the
config is that fixture's with `is_uroman` true, as Hindi's, Russian's or
Arabic's MMS checkpoints have it.

Run by hand in a throwaway venv:
    /tmp/venv/bin/pip install transformers uroman==1.3.1.1
    /tmp/venv/bin/python tools/make_mms_uroman_goldens.py \\
        > crates/vivace/tests/fixtures/mms/uroman_ids.json
"""

import json
import sys
from pathlib import Path

import transformers
from transformers import VitsTokenizer

FIXTURE = Path(__file__).resolve().parent.parent / "crates/vivace/tests/fixtures/mms/tiny-sdp"
TEXTS = [
    "नमस्ते, आप कैसे हैं?",
    "Привет, мир! Как дела?",
    "مرحبا بالعالم",
    "你好，世界",
    "안녕하세요",
    "こんにちは",
    "ሰላም ነው",
    "Γεια σου κόσμε",
    "Київ — столиця України.",
    "१२३४ रुपये",
    "Hello, plain ASCII stays.",
]


def main() -> None:
    tokenizer = VitsTokenizer(
        vocab_file=str(FIXTURE / "vocab.json"),
        language="hin",
        add_blank=True,
        normalize=True,
        phonemize=False,
        is_uroman=True,
    )
    cases = [{"text": t, "ids": tokenizer(t).input_ids} for t in TEXTS]
    json.dump({"transformers": transformers.__version__, "uroman": "1.3.1.1", "cases": cases},
              sys.stdout, ensure_ascii=False, indent=0)
    print()


if __name__ == "__main__":
    main()
