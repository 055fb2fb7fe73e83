"""The text extra: sentence-transformers embeddings, loaded from a folder or the cache and
never downloaded. The real loading and embedding code runs on a tiny randomly initialised
BERT made here (`.ci/run` installs the extra; elsewhere these tests are skipped)."""

import json
import os

import numpy as np
import pytest

from activeprop.datasets import load_pool
from activeprop.embeddings import text_embeddings

if os.environ.get("CI"):  # CI installs the extra: a missing one is a failure there
    import sentence_transformers  # noqa: F401
else:
    pytest.importorskip("sentence_transformers")

WORDS = "the team won a match with late goal bread butter soup flour bake stir fans".split()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A sentence-transformers model folder: a 1-layer, 32-wide BERT with random weights."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("model")
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                                                + WORDS))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=37,
                        max_position_embeddings=64)
    BertModel(config).save_pretrained(folder / "bert")
    # transformers 5 reads the word list from `vocab` (a `vocab_file` is ignored there)
    BertTokenizerFast(vocab=str(folder / "vocab.txt")).save_pretrained(folder / "bert")
    transformer = Transformer(str(folder / "bert"), max_seq_length=32)
    pooling = Pooling(transformer.get_embedding_dimension())
    SentenceTransformer(modules=[transformer, pooling]).save(str(folder / "sentences"))
    return folder / "sentences"


def test_text_embeddings_from_a_model_folder(tiny_model):
    X = text_embeddings(["the team won", "bake the bread", "the team won"], str(tiny_model))
    assert X.shape == (3, 32) and X.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(X[0], X[2], rtol=1e-6)  # the same text, the same vector
    assert not np.allclose(X[0], X[1])


def test_a_text_dataset_with_a_model(tiny_model, tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"body": f"the team won {w}", "kind": k}) + "\n"
                            for w, k in (("match", "sport"), ("goal", "sport"),
                                         ("bread", "food"), ("soup", "food"))))
    pool = load_pool(str(path), text_column="body", label_column="kind",
                     text_model=str(tiny_model))
    assert pool.X.shape == (4, 32) and pool.texts[0] == "the team won match"


def test_a_model_that_is_not_on_the_machine_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never reach for the network in a test
    with pytest.raises(ValueError, match="cannot load the sentence model 'no-such/model'.*"
                                         "SentenceTransformer\\('no-such/model'\\)"):
        text_embeddings(["a text"], "no-such/model")
