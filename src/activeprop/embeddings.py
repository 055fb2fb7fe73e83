"""Pretrained embeddings, optional extras that load weights the user already has.

Nothing is ever downloaded here: a model that is neither a folder nor in the local Hugging
Face cache is a one-line error saying how to get it.

* Texts (``pip install 'activeprop[text]'``, ``--text-model``): a sentence-transformers
  model. It is the library people use for sentence embeddings, it loads a model from a
  folder or the cache in one call, and its models give unit vectors whose dot products are
  the cosine similarities a kNN graph wants.
* Images (``pip install 'activeprop[vision]'``, ``--image-model``): any image backbone of
  Hugging Face transformers (DINOv2, CLIP, SigLIP, ViT, ResNet, ConvNeXt, ...), with its own
  image processor. Why transformers and not torchvision, timm or open_clip: those three all
  need torchvision, whose wheel must match one exact torch build (beside the CPU build of
  torch it fails to import, and the matching one here is a 5.5 GB CUDA build), while
  transformers runs on any torch, is already what the text extra installs, and reaches the
  strongest self-supervised backbones for label propagation (DINOv2) and CLIP by name.
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
    try:
        encoder = SentenceTransformer(_folder_or_name(model), device="cpu",
                                      local_files_only=True)
    except (OSError, ValueError) as error:
        raise _cannot_load("sentence", model, error,
                           "from sentence_transformers import SentenceTransformer; "
                           f"SentenceTransformer('{model}')") from None
    vectors = encoder.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                             convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float64)


def image_embeddings(images: list, model: str, batch_size: int = 32) -> np.ndarray:
    """Unit-length embeddings of Pillow ``images`` (any mode and size) from a Hugging Face
    image ``model`` (a folder, or a hub name already in the local cache), one row each.

    The vector is the model's image embedding where it has one (CLIP, SigLIP), the class
    token of a vision transformer's last layer (ViT, DINOv2), or a convolutional network's
    pooled features (ResNet, ConvNeXt).
    """
    try:
        import torch
        from transformers import AutoImageProcessor, AutoModel
        from transformers.utils import logging as transformers_logging
    except ImportError:
        raise UserError("--image-model needs the vision extra: pip install "
                        "'activeprop[vision]'") from None
    transformers_logging.set_verbosity_error()  # not the torchvision fallback notice
    transformers_logging.disable_progress_bar()
    source = _folder_or_name(model)
    try:
        processor = AutoImageProcessor.from_pretrained(source, local_files_only=True)
        network = AutoModel.from_pretrained(source, local_files_only=True).eval()
    except (OSError, ValueError) as error:
        raise _cannot_load("image", model, error, "from transformers import AutoModel, "
                           f"AutoImageProcessor; AutoImageProcessor.from_pretrained('{model}'); "
                           f"AutoModel.from_pretrained('{model}')") from None
    rows = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = [image.convert("RGB") for image in images[start:start + batch_size]]
            pixels = processor(images=batch, return_tensors="pt")["pixel_values"]
            rows.append(_image_vectors(network, pixels).float().numpy())
    vectors = np.concatenate(rows).astype(np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _image_vectors(network, pixels):
    """One flat vector per image of ``network``'s output for a batch of ``pixels``."""
    if hasattr(network, "get_image_features"):  # CLIP, SigLIP: the joint embedding space
        output = network.get_image_features(pixel_values=pixels)
        return (output if hasattr(output, "ndim") else output.pooler_output).flatten(1)
    output = network(pixel_values=pixels)
    hidden = output.last_hidden_state
    if hidden.ndim == 3:  # a transformer's tokens: the class token, as DINO and ViT use it
        return hidden[:, 0]
    return output.pooler_output.flatten(1)  # a CNN's globally pooled feature map


def _folder_or_name(model: str) -> str:
    folder = Path(model).expanduser()
    return str(folder) if folder.is_dir() else model


def _cannot_load(kind: str, model: str, error: Exception, download: str) -> UserError:
    reason = " ".join(str(error).split())[:160]
    return UserError(f"cannot load the {kind} model {model!r} from a folder or the local cache "
                     f"({reason}); get it once on a machine with internet: python -c "
                     f"\"{download}\", or give its folder")
