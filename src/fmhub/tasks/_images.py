"""Images as the image tasks and the image import handle them: safe decoding, a perceptual hash, corruptions for
the report card's robustness section and training-only augmentation — Pillow and NumPy only.

- :func:`open_image` decodes untrusted bytes safely: the pixel count is read from the header and checked
  against a limit *before* any pixel is decoded (a decompression bomb never expands), and a file Pillow
  cannot identify, or whose data ends early, is an :class:`~fmhub.errors.InvalidInputError` naming the
  problem (Pillow's own errors never reach a user).
- :func:`dhash` is the 64-bit difference hash (Krawetz): the image in grayscale at 9×8, one bit per
  horizontally adjacent pair (is the right pixel brighter?). Resized, re-encoded or slightly recompressed
  copies keep the same hash, or one a few bits away.
- :data:`CORRUPTIONS` are deterministic functions of (image, seed, row, name): the same seed gives the
  same pixels in every process (NumPy's PCG64 streams; no Python ``random``).
- :func:`augment` draws from torch's global generator (what a training checkpoint saves), so a resumed run
  augments as an uninterrupted one.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fmhub.errors import InvalidInputError, PayloadTooLargeError

__all__ = ["ImageTooLargeError", "open_image", "inspect_image", "image_bytes", "decode_base64", "to_rgb", "dhash", "hamming",
           "CORRUPTIONS", "corrupt", "augment", "MAX_IMAGE_PIXELS", "IMAGE_SUFFIXES"]

#: Pillow's own decompression-bomb threshold (it warns above it): the default limit of an import.
MAX_IMAGE_PIXELS = 89_478_485
#: File suffixes read as images (what Pillow decodes without plugins).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                            ".pbm", ".pnm"})


class ImageTooLargeError(PayloadTooLargeError):
    """An image with more pixels than the limit (a possible decompression bomb); nothing of it was decoded."""

    def __init__(self, pixels: int, limit: int, what: str = "the image", hint: str = "resize it, or raise the limit",
                 size: tuple[int, int] | None = None) -> None:
        shown = f"{size[0]}×{size[1]} = {pixels:,}" if size else f"{pixels:,}"
        super().__init__(f"{what} is {shown} pixels, over the limit of {limit:,} pixels (refused undecoded: a "
                         "possible decompression bomb)", hint=hint)
        self.pixels, self.limit, self.size = pixels, limit, size


def image_bytes(value: Any) -> tuple[bytes | None, str | None]:
    """(encoded bytes, stored path) of an image value as ``datasets`` stores it: a ``{"bytes", "path"}`` mapping
    (the ``Image`` feature undecoded), raw bytes, or None."""
    if value is None:
        return None, None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), None
    if isinstance(value, Mapping):
        data = value.get("bytes")
        return (bytes(data) if data is not None else None), value.get("path")
    raise InvalidInputError(f"an image value must be encoded bytes, not {type(value).__name__}")


def decode_base64(text: str) -> bytes:
    """The bytes of a base64 image (a bare string or a ``data:image/...;base64,`` URI)."""
    if not isinstance(text, str):
        raise InvalidInputError("an image input must be a base64 string")
    body = text.strip()
    if body.startswith("data:"):
        header, _, body = body.partition(",")
        if ";base64" not in header:
            raise InvalidInputError("a data: URI image must be base64 (data:image/png;base64,...)")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError("an image input is not valid base64",
                                hint="send the file's bytes base64-encoded, or POST the file itself with its image "
                                     "content type") from None


def open_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS, *, what: str = "the image",
               hint: str = "resize it, or raise the limit") -> Any:
    """A fully decoded Pillow image from untrusted ``data`` (see the module docstring).

    Raises:
        ImageTooLargeError: more than ``max_pixels`` pixels (checked from the header, before decoding).
        InvalidInputError: not an image Pillow can read, or truncated / corrupt data.
    """
    image = _opened(data, max_pixels, what, hint)
    _load(image, what)
    return image


def inspect_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS, *, what: str = "the image",
                  hint: str = "resize it, or raise the limit", draft: int = 64) -> tuple[Any, int, int, str, str]:
    """``(image, width, height, mode, format)`` of untrusted ``data``, checked as :func:`open_image` checks it, the
    size, mode and format as stored. A JPEG is decoded at a reduced scale (Pillow's ``draft``: its side no smaller
    than ``draft``), enough for a perceptual hash and several times faster; the whole stream is still decoded, so
    a truncated file is still found."""
    image = _opened(data, max_pixels, what, hint)
    width, height = image.size
    mode, kind = image.mode, image.format or "unknown"
    if kind == "JPEG" and min(width, height) > 2 * draft:
        image.draft(mode if mode in ("RGB", "L") else "RGB", (draft, draft))
    _load(image, what)
    return image, width, height, mode, kind


def _opened(data: bytes, max_pixels: int, what: str, hint: str) -> Any:
    """The image opened lazily (header read), its pixel count checked."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise InvalidInputError(f"{what} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InvalidInputError(f"{what} is not an image Pillow can read (PNG, JPEG, GIF, BMP, TIFF, WebP, ...)",
                                hint="send an image file") from None
    except Image.DecompressionBombError as exc:  # beyond twice Pillow's own threshold: it refuses to open it
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageTooLargeError(int(found.group(1)) if found else max_pixels + 1, max_pixels, what, hint) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInputError(f"{what} cannot be read: {exc}", hint="check that the file is a whole image") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(width * height, max_pixels, what, hint, (width, height))
    if width < 1 or height < 1:
        raise InvalidInputError(f"{what} has no pixels ({width}×{height})")
    return image


def _load(image: Any, what: str) -> None:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = "truncated (the data ends early)" if "truncated" in str(exc) else f"corrupt ({exc})"
        raise InvalidInputError(f"{what} is {reason}", hint="check that the file is a whole image") from None


def to_rgb(image: Any) -> Any:
    """The image in RGB (transparency composited on black, as the Hub's pipelines see it: ``convert("RGB")``)."""
    return image if image.mode == "RGB" else image.convert("RGB")


def dhash(image: Any) -> int:
    """The 64-bit difference hash of ``image`` as a signed int64 (see the module docstring)."""
    from PIL import Image

    small = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).reshape(-1)  # 64 booleans
    value = int(np.packbits(bits).view(">u8")[0])
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between int64 hashes, element-wise."""
    x = np.bitwise_xor(a.astype(np.int64), b.astype(np.int64)).view(np.uint64)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


# -- corruptions (the report card's robustness section) ----------------------------------------------------

_NOISE_SIGMA = 0.08  # of the 0-255 range
_BLUR_SHARE = 0.01  # of the shorter side (at least 0.5 px)
_BRIGHTNESS = (0.6, 1.4)
_MAX_ROTATION = 15.0  # degrees
_JPEG_QUALITY = 30


def _rng(seed: int, row: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, row, sum(ord(c) << (8 * i) for i, c in enumerate(name[:7]))])


def _noise(image: Any, rng: np.random.Generator) -> Any:
    from PIL import Image

    pixels = np.asarray(image, dtype=np.float32)
    noisy = pixels + rng.normal(0.0, _NOISE_SIGMA * 255.0, pixels.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), "RGB")


def _blur(image: Any, rng: np.random.Generator) -> Any:
    from PIL import ImageFilter

    return image.filter(ImageFilter.GaussianBlur(max(0.5, _BLUR_SHARE * min(image.size))))


def _brightness(image: Any, rng: np.random.Generator) -> Any:
    from PIL import ImageEnhance

    return ImageEnhance.Brightness(image).enhance(_BRIGHTNESS[int(rng.integers(2))])


def _rotation(image: Any, rng: np.random.Generator) -> Any:
    from PIL import Image

    angle = float(rng.uniform(-_MAX_ROTATION, _MAX_ROTATION))
    return image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))


def _jpeg(image: Any, rng: np.random.Generator) -> Any:
    from PIL import Image

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=_JPEG_QUALITY)
    return to_rgb(Image.open(io.BytesIO(buffer.getvalue())))


#: name → what it does (the report card lists these descriptions).
CORRUPTIONS = {
    "noise": f"Gaussian noise, σ = {_NOISE_SIGMA:.0%} of the pixel range",
    "blur": f"Gaussian blur, radius {_BLUR_SHARE:.0%} of the shorter side (at least 0.5 px)",
    "brightness": f"brightness × {_BRIGHTNESS[0]} or × {_BRIGHTNESS[1]} (by row)",
    "rotation": f"rotated by a random angle in ±{_MAX_ROTATION:g}°, corners black",
    "jpeg": f"re-encoded as JPEG at quality {_JPEG_QUALITY}",
}
_APPLY: dict[str, Callable[[Any, np.random.Generator], Any]] = {
    "noise": _noise, "blur": _blur, "brightness": _brightness, "rotation": _rotation, "jpeg": _jpeg}


def corrupt(name: str, image: Any, seed: int, row: int) -> Any:
    """``image`` (RGB) under corruption ``name`` (one of :data:`CORRUPTIONS`) for this seed and row."""
    return _APPLY[name](to_rgb(image), _rng(seed, row, name))


# -- augmentation (training batches only) -------------------------------------------------------------------


def augment(image: Any, *, crop: float, flip: bool, rotation: float) -> Any:
    """A randomly cropped (to at least ``crop`` of the area, aspect 3:4 to 4:3; 0: no crop), flipped left-right
    (half the time, when ``flip``) and rotated (±``rotation`` degrees) copy of the RGB ``image``.

    Random draws come from torch's global generator (see the module docstring).
    """
    import torch
    from PIL import Image

    if crop > 0:
        width, height = image.size
        area = width * height
        for _ in range(10):  # torchvision's RandomResizedCrop: a few tries, else the whole image
            share = crop + (1.0 - crop) * float(torch.rand(()))
            ratio = float(np.exp(np.log(3 / 4) + (np.log(4 / 3) - np.log(3 / 4)) * float(torch.rand(()))))
            w = int(round(np.sqrt(area * share * ratio)))
            h = int(round(np.sqrt(area * share / ratio)))
            if 0 < w <= width and 0 < h <= height:
                left = int(torch.randint(0, width - w + 1, ()))
                top = int(torch.randint(0, height - h + 1, ()))
                image = image.crop((left, top, left + w, top + h))
                break
    if flip and float(torch.rand(())) < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rotation > 0:
        angle = (2 * float(torch.rand(())) - 1) * rotation
        image = image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    return image
