"""Image classification: an image column (the Hugging Face ``Image`` feature) and a class label →
``AutoModelForImageClassification`` (ViT, ConvNeXt, ResNet, ... from the hub, or pretrained from a config).

Inputs go through the model's own image processor (transformers' Pillow backend: resize, rescale, normalize)
after :func:`~fmhub.tasks._images.to_rgb`, as ``transformers.pipeline("image-classification")`` feeds them, so a
trained model answers the same there and here. Images are kept encoded until a batch needs them: the training
split holds each image's stored bytes, decoded (and, for training batches only, augmented: random resized crop,
left-right flip, rotation) per batch.

Report card: the classifier's sections (:mod:`fmhub.tasks._classification`), robustness under image
corruptions (noise, blur, brightness, rotation, JPEG), slices by pixel count, and logistic regression on
16×16 RGB pixels as the baseline; ``predictions.parquet`` keeps each image's stored path beside its row.
Serving: ``/v1/classify-image`` — JSON with base64 images (the Hugging Face inference convention), a raw body
with an image content type, or multipart file uploads.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fmhub.errors import FmhubError, InvalidInputError
from fmhub.tasks import _metrics
from fmhub.tasks._base import Endpoint, Forward, OnRows, Scored, Task
from fmhub.tasks._batches import TokenizedSplit
from fmhub.tasks._classification import SingleLabelClassification
from fmhub.tasks._images import (
    CORRUPTIONS,
    MAX_IMAGE_PIXELS,
    augment,
    corrupt,
    decode_base64,
    image_bytes,
    open_image,
    to_rgb,
)
from fmhub.tasks._predict import softmax
from fmhub.tasks._scratch import config_from_file
from fmhub.tasks._serving import Item, ServingContext, unicode_text

__all__ = ["ImageClassification", "CLASSIFY_IMAGE", "image_processor"]

_READ_ROWS = 1024
_BASELINE_SIDE = 16  # the baseline's images: 16×16 RGB, 768 features
_MEAN = _STD = [0.5, 0.5, 0.5]  # a scratch model's normalization: pixels to [-1, 1]


def image_processor(size: int) -> Any:
    """The image processor of a model pretrained from scratch: resize to ``size``×``size``, scale to [-1, 1]."""
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil(size={"height": size, "width": size}, image_mean=_MEAN, image_std=_STD,
                                do_resize=True, do_rescale=True, do_normalize=True)


def _image(value: Any) -> Any:
    """An RGB Pillow image from a stored value (``{"bytes", "path"}``, bytes) or an image already decoded."""
    if hasattr(value, "mode") and hasattr(value, "size"):
        return to_rgb(value)
    data, path = image_bytes(value)
    if data is None:
        raise InvalidInputError(f"an image value holds no bytes (path {path!r})",
                                hint="import the images with fmhub data import, which stores their bytes")
    return to_rgb(open_image(data, MAX_IMAGE_PIXELS, what=f"the image {path}" if path else "an image"))


def _pixels(processor: Any, images: list[Any]) -> np.ndarray:
    return np.asarray(processor(images=images, return_tensors="np")["pixel_values"], dtype=np.float32)


# -- serving ----------------------------------------------------------------------------------------------


class ImageParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    top_k: int | None = Field(None, ge=1, description="Labels per image, best first (default: all).")


class ImageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    inputs: str | list[str] = Field(description="One image as base64 (or a data:image/...;base64, URI), or a list "
                                                "of them.")
    parameters: ImageParameters = ImageParameters()

    _unicode = field_validator("inputs")(unicode_text)


def _from_uploads(files: list[bytes], fields: dict[str, str]) -> dict[str, Any]:
    """A raw image body or multipart file parts → the JSON body they stand for (one input per file)."""
    return {"inputs": [base64.b64encode(f).decode("ascii") for f in files],
            "parameters": {key: _form_value(value) for key, value in fields.items()}}


def _form_value(text: str) -> Any:
    """A form field or query parameter as the JSON value it spells ("3" → 3, "true" → true), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _classify_images(context: ServingContext, items: list[Item]) -> list[Any]:
    """Labels with scores, best first, per image; a bad image fails only its own request (4xx naming it)."""
    results: list[Any] = [None] * len(items)
    images, good = [], []
    for i, item in enumerate(items):
        try:
            data = decode_base64(item.text)
            images.append(to_rgb(open_image(data, context.max_pixels, what="an input image",
                                             hint="send a smaller image (this server's --max-image-pixels)")))
            good.append(i)
        except FmhubError as exc:
            results[i] = exc
    if images:
        logits = context.model.logits({"pixel_values": _pixels(context.preprocessor, images)})
        for i, row in zip(good, logits, strict=True):
            scores = softmax(row[None])[0]
            top = int(items[i].parameters.get("top_k") or len(context.labels))
            best = np.argsort(-scores, kind="stable")[:top]
            results[i] = [{"label": context.labels[j], "score": float(scores[j])} for j in best]
    return results


CLASSIFY_IMAGE = Endpoint("classify-image", "Labels and scores of each image (image classification): JSON with "
                                            "base64 images, a raw image body, or multipart file uploads",
                          ImageRequest, _classify_images, uploads=("image/*",), from_uploads=_from_uploads)


# -- the task ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class ImageClassification(SingleLabelClassification):
    """Single-label image classification; :meth:`bind` gives it the image processor and the augmentation."""

    processor: Any = dataclasses.field(default=None, compare=False, repr=False)
    crop: float = 0.0  # random resized crop: least share of the area kept (0: off)
    flip: bool = False
    rotation: float = 0.0  # degrees

    name = "image-classification"
    title = "Image Classification"
    pipeline_tag = "image-classification"
    auto_class = "AutoModelForImageClassification"
    head_suffixes = ("ForImageClassification",)
    input_column = "image"
    endpoints = (CLASSIFY_IMAGE,)
    explains = "pixels"
    distillable = False  # distillation reads tokenizers and transformer layer lists
    scratch_architectures = ("resnet", "convnext", "vit")
    option_groups = frozenset({"augment"})
    perturbations = CORRUPTIONS
    size_unit = "pixels"
    preprocessor_files: ClassVar[tuple[str, ...]] = ("preprocessor_config.json",)

    # -- inputs --------------------------------------------------------------------------------------------

    def load_preprocessor(self, folder: Any) -> Any:
        """The model's image processor, on transformers' Pillow backend (torchvision is not needed)."""
        from transformers import AutoImageProcessor

        try:
            return AutoImageProcessor.from_pretrained(folder, backend="pil")
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"{folder}: no image processor could be loaded ({exc})",
                                    hint="save the model's image processor beside it (preprocessor_config.json)"
                                    ) from None

    def read_inputs(self, rows: Any, column: str) -> list[Any]:
        """The images undecoded (``{"bytes", "path"}``): decoded a batch at a time, their paths kept."""
        from datasets import Image

        if isinstance(rows.features.get(column), Image):
            rows = rows.cast_column(column, Image(decode=False))
        return list(rows[column])

    def input_axes(self) -> dict[str, dict[int, str]]:
        return {"pixel_values": {0: "batch"}}

    def describe_input(self, inputs: Mapping[str, np.ndarray]) -> str:
        shape = inputs["pixel_values"].shape
        return f"{shape[1]}×{shape[2]}×{shape[3]} pixel values"

    def encode_batch(self, preprocessor: Any, values: list[Any], max_length: int) -> dict[str, np.ndarray]:
        return {"pixel_values": _pixels(preprocessor, [_image(v) for v in values])}

    def example_inputs(self, preprocessor: Any) -> dict[str, np.ndarray]:
        from PIL import Image

        return self.encode_batch(preprocessor, [Image.new("RGB", (32, 32)), Image.new("RGB", (48, 40), "white")], 0)

    # -- training ------------------------------------------------------------------------------------------

    def bind(self, tokenizer: Any, *, num_labels: int, options: Mapping[str, Any]) -> Task:
        return dataclasses.replace(self, processor=tokenizer, crop=float(options.get("random_crop") or 0.0),
                                   flip=bool(options.get("random_flip")),
                                   rotation=float(options.get("random_rotation") or 0.0))

    def tokenize(self, dataset: Any, tokenizer: Any, input_column: str, label_column: str | None,
                 max_length: int) -> tuple[list[bytes], list[Any]]:
        """Each row's stored image bytes (checked to decode once, here) and label."""
        images: list[bytes] = []
        labels: list[Any] = []
        values = self.read_inputs(dataset, input_column)
        for start in range(0, len(dataset), _READ_ROWS):
            labels += list(dataset[start:start + _READ_ROWS][label_column])
        for row, value in enumerate(values):
            data, path = image_bytes(value)
            if data is None:
                raise InvalidInputError(f"row {row} of the split holds no image bytes (path {path!r})",
                                        hint="import the images with fmhub data import, which stores their bytes")
            images.append(data)
        return images, labels

    def collate(self, split: TokenizedSplit, rows: np.ndarray, pad_id: int, generator: Any = None, *,
                train: bool = False) -> dict[str, Any]:
        import torch

        if self.processor is None:
            raise RuntimeError("ImageClassification.collate needs a bound task (Task.bind with the image processor)")
        images = [_image(split.input_ids[i]) for i in rows]
        if train and (self.crop or self.flip or self.rotation):
            images = [augment(image, crop=self.crop, flip=self.flip, rotation=self.rotation) for image in images]
        labels = np.asarray([split.labels[i] for i in rows], dtype=np.int64)
        return {"pixel_values": torch.from_numpy(_pixels(self.processor, images)), "labels": torch.from_numpy(labels)}

    # -- pretraining from scratch --------------------------------------------------------------------------

    def scratch_preprocessor(self, options: Mapping[str, Any], rows: Any, input_column: str, cache: Path,
                             key: Mapping[str, Any]) -> Path:
        """An image processor resizing to ``--image-size`` squares, scaling pixels to [-1, 1]."""
        size = int(options.get("image_size") or 224)
        folder = cache / "image-processors" / hashlib.sha256(json.dumps({"size": size}).encode()).hexdigest()[:24]
        if not (folder / "preprocessor_config.json").is_file():
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder.parent))
            image_processor(size).save_pretrained(tmp)
            try:
                tmp.rename(folder)
            except OSError:  # another rank saved it first
                shutil.rmtree(tmp, ignore_errors=True)
        return folder

    def scratch_config(self, options: Mapping[str, Any], preprocessor: Any) -> Any:
        """A small ResNet, ConvNeXt or ViT (``--architecture``; ``--hidden-size`` channels in the first stage,
        doubling per stage, ``--layers`` stages; ViT: ``--layers`` blocks of ``--heads`` heads on 8×8 patches of
        the image), or any ``--from-config``."""
        from transformers import ConvNextConfig, ResNetConfig, ViTConfig

        size = int(options.get("image_size") or 224)
        if options.get("from_config"):
            built = config_from_file(options["from_config"])
            if hasattr(built, "image_size"):
                built.image_size = size
            return built
        hidden, layers, heads = int(options.get("hidden_size") or 128), int(options.get("layers") or 2), \
            int(options.get("heads") or 2)
        widths = [hidden * 2 ** i for i in range(layers)]
        architecture = options.get("architecture")
        if architecture == "resnet":
            return ResNetConfig(num_channels=3, embedding_size=hidden, hidden_sizes=widths, depths=[1] * layers,
                                layer_type="basic", downsample_in_first_stage=False)
        if architecture == "convnext":
            return ConvNextConfig(num_channels=3, hidden_sizes=widths, depths=[1] * layers, image_size=size)
        patch = max(1, size // 8)
        return ViTConfig(image_size=size, patch_size=patch, num_channels=3, hidden_size=hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=4 * hidden)

    # -- evaluation ----------------------------------------------------------------------------------------

    def score(self, forward: Forward, preprocessor: Any, values: list[Any], gold: Any, *, labels: list[str],
              max_length: int, batch_size: int, seed: int, on_rows: OnRows = None) -> Scored:
        probabilities = np.zeros((len(values), len(labels)), dtype=np.float32)
        for start in range(0, len(values), batch_size):
            chunk = values[start:start + batch_size]
            probabilities[start:start + len(chunk)] = softmax(forward(self.encode_batch(preprocessor, chunk, 0)))
            if on_rows:
                on_rows(len(chunk))
        paths = [image_bytes(v)[1] if not hasattr(v, "mode") else None for v in values]
        return self.scored(probabilities, gold, labels, paths=paths)

    def unchanged_for_model(self, preprocessor: Any, clean: list[Any], perturbed: list[Any],
                            max_length: int) -> np.ndarray:
        """Every image corruption changes the pixels the model sees."""
        return np.zeros(len(clean), dtype=bool)

    def perturb(self, name: str, values: list[Any], gold: Any, seed: int) -> tuple[list[Any], Any]:
        return [corrupt(name, _image(value), seed, row) for row, value in enumerate(values)], gold

    def sizes(self, values: list[Any]) -> np.ndarray:
        """Pixels per image, read from each image's header."""
        from PIL import Image

        out = np.zeros(len(values), dtype=np.int64)
        for row, value in enumerate(values):
            if hasattr(value, "size") and hasattr(value, "mode"):
                width, height = value.size
            else:
                data, _ = image_bytes(value)
                with Image.open(io.BytesIO(data or b"")) as image:
                    width, height = image.size
            out[row] = width * height
        return out

    def efficiency_input(self, preprocessor: Any, values: list[Any], max_length: int) -> dict[str, np.ndarray]:
        sizes = self.sizes(values)
        return self.encode_batch(preprocessor, [values[int(np.argsort(sizes, kind="stable")[len(sizes) // 2])]], 0)

    def baseline(self, train: Any, input_column: str, label_column: str | None, values: list[Any], gold: Any,
                 scored: Scored, *, labels: list[str], preprocessor: Any, max_length: int, seed: int
                 ) -> tuple[str, dict[str, Any]]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        keep, train_gold = self.train_labels(train, label_column, labels)
        images = [v for v, k in zip(self.read_inputs(train, input_column), keep, strict=True) if k]
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
        model.fit(_flat_pixels(images), train_gold)
        found = model.predict_proba(_flat_pixels(values))
        probabilities = np.zeros((len(values), len(labels)))
        probabilities[:, model.classes_] = found
        return (f"logistic regression on {_BASELINE_SIDE}×{_BASELINE_SIDE} RGB pixels (standardized)",
                _metrics.classification_metrics(gold, probabilities, labels)["metrics"])

    def prediction_columns(self, scored: Scored, labels: list[str]) -> dict[str, Any]:
        import pyarrow as pa

        return {**super().prediction_columns(scored, labels),
                "image": pa.array(scored.extra.get("paths") or [None] * len(scored.gold), pa.string())}

    def check_request(self, values: list[Any]) -> tuple[str, dict[str, Any]] | None:
        encoded = []
        for value in values:
            buffer = io.BytesIO()
            data, _ = (None, None) if hasattr(value, "mode") else image_bytes(value)
            if data is None:
                _image(value).save(buffer, format="PNG")
                data = buffer.getvalue()
            encoded.append(base64.b64encode(data).decode("ascii"))
        return "classify-image", {"inputs": encoded, "parameters": {"top_k": 1}}


def _flat_pixels(values: list[Any]) -> np.ndarray:
    """Each image at the baseline's size, as floats in [0, 1] (rows × 768)."""
    from PIL import Image

    side = _BASELINE_SIDE
    out = np.zeros((len(values), side * side * 3), dtype=np.float32)
    for row, value in enumerate(values):
        small = _image(value).resize((side, side), Image.Resampling.BILINEAR)
        out[row] = np.asarray(small, dtype=np.float32).reshape(-1) / 255.0
    return out
