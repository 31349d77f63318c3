"""fmhub train --task image-classification: a model pretrained from a config, or fine-tuned from a hub model, is
published with its image processor so transformers.pipeline loads it as is; augmentation is training-only and
resumable; image options are refused for other tasks and text options for images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import fmhub
from fmhub.cards import parse_card
from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.train import TrainConfig, train


def _config(data: str, output: str, **overrides) -> TrainConfig:
    options = dict(task="image-classification", architecture="resnet", hidden_size=8, layers=2, image_size=16,
                   data=data, output=output, epochs=2, batch_size=16, learning_rate=0.01, threads=1, seed=0)
    return TrainConfig.from_flat({**options, **overrides})


def test_a_scratch_model_loads_in_transformers_pipeline_as_is(image_classifier: str, tiny_images: str) -> None:
    from transformers import pipeline

    with Hub.open() as hub:
        folder = hub.download(image_classifier)
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "training_args.json"} <= names
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    assert processor["size"] == {"height": 16, "width": 16}
    card = parse_card((folder / "README.md").read_text()).metadata
    assert card["pipeline_tag"] == "image-classification" and "base_model" not in card
    loaded = fmhub.load(image_classifier)
    assert loaded.task.name == "image-classification" and loaded.labels == [str(d) for d in range(10)]
    test = fmhub.data.load(tiny_images, split="test")
    images = [row["image"] for row in test]
    offline = loaded.logits(loaded.task.encode_batch(loaded.preprocessor, images, 0))
    classify = pipeline("image-classification", model=str(folder))
    answers = [classify(image, top_k=1)[0]["label"] for image in images]  # PIL images, converted to RGB by it
    assert answers == [loaded.labels[i] for i in offline.argmax(-1)]


def test_fine_tuning_a_hub_model_with_augmentation(tiny_images: str, tmp_path: Path) -> None:
    from transformers import ViTConfig, ViTModel

    from fmhub.tasks.image_classification import image_processor

    folder = tmp_path / "tiny-vit"
    torch.manual_seed(0)
    ViTModel(ViTConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32)).save_pretrained(folder)
    image_processor(16).save_pretrained(folder)
    with Hub.open() as hub:
        hub.create_repo("acme/tiny-vit")
        hub.upload(folder, "acme/tiny-vit")
    outcome = train(TrainConfig.from_flat(dict(
        task="image-classification", model="acme/tiny-vit", data=tiny_images, output="acme/digits-vit", epochs=2,
        batch_size=16, learning_rate=0.003, threads=1, random_crop=0.8, random_flip=True, random_rotation=10)))
    assert outcome is not None and {"eval_accuracy", "eval_f1_macro", "eval_loss"} <= set(outcome.result.metrics)
    loaded = fmhub.load("acme/digits-vit")
    assert type(loaded.model).__name__ == "ViTForImageClassification" and loaded.config.num_labels == 10
    with Hub.open() as hub:
        card = parse_card((hub.download("acme/digits-vit") / "README.md").read_text()).metadata
    assert card["base_model"] == "acme/tiny-vit"
    args = json.loads((hub_folder("acme/digits-vit") / "training_args.json").read_text())
    assert (args["random_crop"], args["random_flip"], args["random_rotation"]) == (0.8, True, 10)


def hub_folder(repo: str) -> Path:
    with Hub.open() as hub:
        return hub.download(repo)


def test_augmented_training_resumes_to_the_same_weights(tiny_images: str) -> None:
    from safetensors.torch import load_file

    options = dict(epochs=3, random_crop=0.7, random_rotation=15, random_flip=True, save_steps=3, eval_split=None)
    assert train(_config(tiny_images, "acme/whole", **options)) is not None
    assert train(_config(tiny_images, "acme/resumed", **options), stop_after=4) is None  # "killed" after step 4
    assert train(_config(tiny_images, "acme/resumed", **options), resume=True) is not None  # from step 3
    whole, resumed = (load_file(str(hub_folder(r) / "model.safetensors")) for r in ("acme/whole", "acme/resumed"))
    assert whole.keys() == resumed.keys()
    for name in whole:
        torch.testing.assert_close(whole[name], resumed[name], rtol=1e-5, atol=1e-6)


def test_augmentation_changes_training_batches_only(tiny_images: str) -> None:
    from fmhub.train._loop import prepare

    config = _config(tiny_images, "acme/x", random_crop=0.5, random_rotation=30)
    with Hub.open() as hub:
        prepared = prepare(config, hub)
    rows = np.arange(8)
    torch.manual_seed(0)
    trained = prepared.task.collate(prepared.train, rows, 0, train=True)["pixel_values"]
    seen = prepared.task.collate(prepared.train, rows, 0)["pixel_values"]
    again = prepared.task.collate(prepared.train, rows, 0)["pixel_values"]
    assert trained.shape == seen.shape == (8, 3, 16, 16)
    assert torch.equal(seen, again) and not torch.equal(trained, seen)


def test_options_that_do_not_fit_the_task_are_refused(tiny_images: str, tiny_data: str) -> None:
    with pytest.raises(InvalidInputError, match="--random-flip does not apply to text-classification"):
        TrainConfig.from_flat(dict(task="text-classification", model="acme/m", data=tiny_data, output="acme/x",
                                   random_flip=True))
    with pytest.raises(InvalidInputError, match="--architecture bert does not fit image-classification"):
        _config(tiny_images, "acme/x", architecture="bert")
    with pytest.raises(InvalidInputError, match="pretraining from scratch is for masked-lm, causal-lm, image-classification, not text"):
        TrainConfig.from_flat(dict(task="text-classification", architecture="resnet", data=tiny_data,
                                   output="acme/x"))
    with pytest.raises(InvalidInputError, match="--teacher distills"):
        _config(tiny_images, "acme/x", architecture=None, model="acme/m", teacher="acme/t")
    with pytest.raises(InvalidInputError, match="--image-size 4"):
        _config(tiny_images, "acme/x", image_size=4)
