"""The vision extra: image embeddings from Hugging Face image models, loaded from a folder or
the cache and never downloaded. The real loading and embedding code runs on tiny randomly
initialised models made here: a vision transformer, a ResNet and a CLIP (`.ci/run` installs
the extra; elsewhere these tests are skipped)."""

import os

import numpy as np
import pytest
from PIL import Image

from activeprop.datasets import load_pool
from activeprop.embeddings import image_embeddings

if os.environ.get("CI"):  # CI installs the extra: a missing one is a failure there
    import transformers  # noqa: F401
else:
    pytest.importorskip("transformers")
    pytest.importorskip("torch")

SIZE = 32  # pixels the tiny models take


def _vit(folder):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    ViTModel(ViTConfig(image_size=SIZE, patch_size=8, hidden_size=24, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=37)).save_pretrained(folder)
    ViTImageProcessor(size={"height": SIZE, "width": SIZE}).save_pretrained(folder)
    return 24


def _resnet(folder):
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetModel

    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                             layer_type="basic")).save_pretrained(folder)
    ConvNextImageProcessor(size={"shortest_edge": SIZE}).save_pretrained(folder)
    return 16


def _clip(folder):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    text = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 20, "max_position_embeddings": 16,
            "bos_token_id": 0, "eos_token_id": 1}
    vision = {"image_size": SIZE, "patch_size": 8, "hidden_size": 16, "num_hidden_layers": 1,
              "num_attention_heads": 2, "intermediate_size": 20}
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision,
                         projection_dim=12)).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": SIZE},
                       crop_size={"height": SIZE, "width": SIZE}).save_pretrained(folder)
    return 12


@pytest.fixture(scope="module", params=[_vit, _resnet, _clip], ids=["vit", "resnet", "clip"])
def tiny_model(request, tmp_path_factory):
    """(folder, embedding width) of a tiny model with random weights and its processor."""
    import torch

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp(request.param.__name__.strip("_"))
    return folder, request.param(folder)


def _pictures():
    """Colour and grey images of several sizes and aspect ratios; the last repeats the first."""
    gradient = np.linspace(0, 255, 48 * 64, dtype=np.uint8).reshape(48, 64)
    red = Image.fromarray(np.stack([gradient, gradient // 3, 255 - gradient], axis=2))
    return [red, Image.new("L", (20, 90), 200), Image.new("RGBA", (70, 30), (0, 120, 0, 255)),
            red.copy()]


def test_image_embeddings_from_a_model_folder(tiny_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder, width = tiny_model
    X = image_embeddings(_pictures(), str(folder), batch_size=3)  # two batches
    assert X.shape == (4, width) and X.dtype == np.float64 and np.isfinite(X).all()
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(X[0], X[3], atol=1e-6)  # the same picture, the same vector
    assert not np.allclose(X[0], X[1])


def test_an_image_folder_with_a_model(tiny_model, tmp_path):
    folder, width = tiny_model
    root = tmp_path / "photos"
    for index, picture in enumerate(_pictures()):
        (root / ("cats" if index % 2 else "dogs")).mkdir(parents=True, exist_ok=True)
        picture.convert("RGB").save(root / ("cats" if index % 2 else "dogs") / f"{index}.png")
    pool = load_pool(str(root), image_model=str(folder))
    assert pool.X.shape == (4, width) and pool.class_names == ["cats", "dogs"]
    assert pool.paths == ["cats/1.png", "cats/3.png", "dogs/0.png", "dogs/2.png"]


def test_a_model_that_is_not_on_the_machine_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never reach for the network in a test
    with pytest.raises(ValueError, match="cannot load the image model 'no-such/model'.*"
                                         "AutoModel.from_pretrained\\('no-such/model'\\)"):
        image_embeddings([Image.new("RGB", (8, 8))], "no-such/model")


def test_features_and_a_model_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--image-features or --image-model, not both"):
        load_pool(str(tmp_path), image_features="hog", image_model="any")
