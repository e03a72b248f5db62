#!/usr/bin/env python3
"""uroman goldens: what the `uroman` package (1.3.1.1, the romanizer Meta's
MMS uses) gives, as a library call (`Uroman().romanize_string(text, lcode)`;
transformers calls it without a language code) and, as `by_token`, as the
`uroman` command romanizes (its cache on, which cuts the text at spaces):

- each text of `corpus.json` (grouped by script), without a language code;
- each line of the package's own `mini-test/multi-script.txt` with the
  language code it names (`::lcode xxx`), and the sentences of
  `mini-test/hin.txt` and `mini-test/fas.txt` with `hin` and `fas`.

Run by hand in a throwaway venv:
    python -m venv /tmp/uromanenv
    /tmp/uromanenv/bin/pip install uroman==1.3.1.1
    /tmp/uromanenv/bin/python tools/make_uroman_goldens.py \\
        crates/vivace/tests/fixtures/uroman/corpus.json \\
        > crates/vivace/tests/fixtures/uroman/uroman.json
"""

import json
import re
import sys
from pathlib import Path

import uroman as ur


def main() -> None:
    corpus = json.load(open(sys.argv[1], encoding="utf-8"))
    romanizer = ur.Uroman()
    by_token = ur.Uroman(cache_size=65536)
    cases = []

    def add(group, text, lcode):
        cases.append(
            {
                "script": group,
                "text": text,
                "lcode": lcode,
                "romanized": romanizer.romanize_string(text, lcode),
                "by_token": by_token.romanize_string(text, lcode),
            }
        )

    for group, texts in corpus.items():
        for text in texts:
            add(group, text, None)
    mini = Path(ur.__file__).parent / "mini-test"
    for line in (mini / "multi-script.txt").read_text(encoding="utf-8").splitlines():
        m = re.match(r"::lcode\s+([a-z]{3})\s+(.*)$", line)
        if m:
            add("mini-test multi-script", m.group(2), m.group(1))
    for lcode in ("hin", "fas"):
        for line in (mini / f"{lcode}.txt").read_text(encoding="utf-8").splitlines():
            if line.strip():
                add(f"mini-test {lcode}", line, lcode)
    json.dump({"uroman": "1.3.1.1", "cases": cases}, sys.stdout, ensure_ascii=False, indent=0)
    print()


if __name__ == "__main__":
    main()
