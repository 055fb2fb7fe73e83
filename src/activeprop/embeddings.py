"""Pretrained embeddings, an optional extra that loads weights the user already has.

Texts: a sentence-transformers model (``pip install 'activeprop[text]'``), named as on the
Hugging Face hub and already in the user's cache, or given as a folder. Nothing is ever
downloaded here: a model that is not on the machine is a one-line error saying how to get
it. Why sentence-transformers: it is the library people use for sentence embeddings, it
loads a model from a folder or the cache in one call, and its models give unit vectors whose
dot products are the cosine similarities a kNN graph wants.

Images: no pretrained extra yet (torchvision, timm and open_clip all need torchvision,
which on the machines this project is built on is a 5.5 GB CUDA build); the built-in HOG
descriptor (:mod:`activeprop.features`) is the default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UserError


def text_embeddings(texts: list[str], model: str, batch_size: int = 64) -> np.ndarray:
    """Unit-length sentence embeddings of ``texts`` from the sentence-transformers
    ``model`` (a folder, or a hub name already in the local cache)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise UserError("--text-model needs the text extra: pip install "
                        "'activeprop[text]'") from None
    folder = Path(model).expanduser()
    try:
        encoder = SentenceTransformer(str(folder) if folder.is_dir() else model, device="cpu",
                                      local_files_only=True)
    except (OSError, ValueError) as error:
        reason = " ".join(str(error).split())[:160]
        raise UserError(f"cannot load the sentence model {model!r} from a folder or the local "
                        f"cache ({reason}); get it once on a machine with internet: python -c "
                        f"\"from sentence_transformers import SentenceTransformer; "
                        f"SentenceTransformer('{model}')\", or give its folder") from None
    vectors = encoder.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                             convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float64)
