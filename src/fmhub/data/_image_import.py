"""The image part of ``fmhub data import``: each image checked and measured, then stored as it was.

Every image of a batch is decoded once (JPEGs at a reduced scale: :func:`fmhub.tasks.inspect_image`) to find
what the quality report needs — size, mode, format, a hash of its bytes, its perceptual hash — and whether it
is an image at all. Unreadable files (not an image, truncated, corrupt, missing) are left out and listed in the
report; an image over ``--max-image-pixels`` stops the import with a message naming it, before any of its
pixels is decoded (a decompression bomb never expands). Stored rows keep the source's bytes untouched, in the
Hugging Face ``Image`` encoding (``struct<bytes, path>``), so ``datasets`` decodes them on any client.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fmhub.data._image_quality import ImageQualityAccumulator
from fmhub.data._image_sources import IMAGE_STRUCT
from fmhub.errors import InvalidInputError
from fmhub.tasks import MAX_IMAGE_PIXELS, ImageTooLargeError, dhash, inspect_image

__all__ = ["ImageContent", "image_features", "image_schema"]


def image_features(label_names: list[str] | None) -> dict:
    """The ``datasets`` features of an image dataset: ``image`` (``Image``) and, with labels, ``label``."""
    features: dict = {"image": {"_type": "Image"}}
    if label_names is not None:
        features["label"] = {"names": label_names, "_type": "ClassLabel"}
    return features


def image_schema(label_names: list[str] | None) -> pa.Schema:
    fields = [pa.field("image", IMAGE_STRUCT)]
    if label_names is not None:
        fields.append(pa.field("label", pa.int64()))
    metadata = {"huggingface": json.dumps({"info": {"features": image_features(label_names)}})}
    return pa.schema(fields, metadata=metadata)


class ImageContent:
    """Checks, measures and stores the images of an import, a batch at a time (see the module docstring)."""

    def __init__(self, splits: list[str], *, max_pixels: int | None = None, similar_bits: int | None = None) -> None:
        self.max_pixels = max_pixels or MAX_IMAGE_PIXELS
        self.quality = ImageQualityAccumulator(splits, similar_bits=similar_bits, max_pixels=self.max_pixels)
        self.stored = 0

    def store(self, split: str, part: pa.Table, label_names: list[str] | None) -> dict[str, pa.Array]:
        """The columns stored for one split's rows of a batch (unreadable images left out and reported)."""
        images = part.column("image").combine_chunks()
        data = pc.struct_field(images, "bytes").to_pylist()
        paths = pc.struct_field(images, "path").to_pylist()
        keep = np.zeros(len(data), dtype=bool)
        exact, key, widths, heights, modes, formats = [], [], [], [], [], []
        hint = f"resize it, or import with --max-image-pixels above {self.max_pixels:,} if it is meant to be this big"
        for i, (blob, path) in enumerate(zip(data, paths, strict=True)):
            if blob is None:
                self.quality.add_unreadable(split, path, "no such file" if path else "no image bytes")
                continue
            what = f"image {path}" if path else f"image {i} of a {split} batch"
            try:
                image, width, height, mode, kind = inspect_image(blob, self.max_pixels, what=what, hint=hint)
            except ImageTooLargeError:
                raise  # refused: the import stops, naming the image
            except InvalidInputError as exc:
                self.quality.add_unreadable(split, path, exc.message.removeprefix(f"{what} "))
                continue
            keep[i] = True
            exact.append(hash(blob))
            key.append(dhash(image))
            widths.append(width)
            heights.append(height)
            modes.append(mode)
            formats.append(kind)
        mask = pa.array(keep)
        kept = part.filter(mask)
        columns: dict[str, pa.Array] = {"image": pa.StructArray.from_arrays(
            [pc.struct_field(images, "bytes").filter(mask), pc.struct_field(images, "path").filter(mask)],
            fields=list(IMAGE_STRUCT))}
        labels = None
        if label_names is not None:
            label_values = kept.column("label").combine_chunks()
            columns["label"] = pc.index_in(label_values, value_set=pa.array(label_names, pa.string())).cast(pa.int64())
            labels = label_values.to_pylist()
        self.quality.add(split, exact=np.asarray(exact, dtype=np.int64), key=np.asarray(key, dtype=np.int64),
                         widths=np.asarray(widths), heights=np.asarray(heights), modes=modes, formats=formats,
                         labels=labels)
        self.stored += int(keep.sum())
        return columns
