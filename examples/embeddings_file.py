"""Write an embeddings file for an image folder, the way you would with your own model: one
row per image and its path, as an .npz with arrays X and path. Here the "model" is a PCA of
the HOG descriptors (a stand-in for a network's embedding, so that the example runs offline).

Run: python examples/embeddings_file.py FOLDER emb.npz
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.decomposition import PCA

from activeprop.features import image_features


def main(folder: str, out: str) -> None:
    paths = sorted(p for p in Path(folder).rglob("*.png"))
    images = [Image.open(p) for p in paths]
    X = PCA(64, random_state=0).fit_transform(image_features(images, "hog"))
    np.savez(out, X=X, path=np.array([p.relative_to(folder).as_posix() for p in paths]))
    print(f"Wrote {out}: {X.shape[0]} rows of {X.shape[1]} numbers, keyed by path")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
