"""Export scikit-learn's bundled digits (no download) as the example's committed data files.

Run once; the output is committed, and the recipe reads only the committed files, so a rebuild
never depends on scikit-learn's copy. Each line is one record: the 8x8 image as 64 base-17
digits (pixel values 0..16) and its label. The split is fixed by record position so that the
files, not a random state, decide which images are held out.

    python examples/digits/export_data.py
"""

from __future__ import annotations

import json
from pathlib import Path

from sklearn.datasets import load_digits

DIGITS = "0123456789abcdefg"
HERE = Path(__file__).resolve().parent
TEST_EVERY = 5  # every fifth record is held out for evaluation


def main() -> None:
    digits = load_digits()
    train, test = [], []
    for index, (image, label) in enumerate(zip(digits.data, digits.target, strict=True)):
        pixels = "".join(DIGITS[int(v)] for v in image)
        line = json.dumps({"pixels": pixels, "label": int(label)}, separators=(",", ":"))
        (test if index % TEST_EVERY == TEST_EVERY - 1 else train).append(line)
    out = HERE / "data"
    out.mkdir(exist_ok=True)
    (out / "digits-train.jsonl").write_text("\n".join(train) + "\n")
    (out / "digits-test.jsonl").write_text("\n".join(test) + "\n")
    print(f"wrote {len(train)} training and {len(test)} test records to {out}")


if __name__ == "__main__":
    main()
