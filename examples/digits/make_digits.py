"""Write scikit-learn's handwritten digits (``load_digits``: 1,797 images of 8×8 pixels, 10 classes, shipped inside
scikit-learn, so nothing is downloaded) as an image folder: ``OUT/<digit>/<index>.png``, 8-bit grayscale.

Usage: python examples/digits/make_digits.py [OUT] [--per-class N]
  OUT          the folder to write (default: images/ beside this script)
  --per-class  only the first N images of each digit (a small subset, e.g. for tests)

The 17 gray levels (0-16) become 0-255 (×255/16, rounded); the file name is the image's index in
``load_digits``, so every image can be traced back to its row there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def write_digits(out: Path, per_class: int | None = None) -> int:
    """Write the digits (the first ``per_class`` of each, or all) under ``out``; return how many were written."""
    digits = load_digits()
    written: dict[int, int] = {}
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        label = int(target)
        if per_class is not None and written.get(label, 0) >= per_class:
            continue
        path = out / str(label) / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(pixels * 255 / 16).astype(np.uint8), "L").save(path)
        written[label] = written.get(label, 0) + 1
    return sum(written.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path(__file__).with_name("images"))
    parser.add_argument("--per-class", type=int, default=None)
    args = parser.parse_args()
    print(f"wrote {write_digits(args.out, args.per_class)} images to {args.out}")


if __name__ == "__main__":
    main()
