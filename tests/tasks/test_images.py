"""Images as the tasks read them: bombs refused before decoding, broken files named, the perceptual hash, seeded
corruptions and augmentation."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fmhub.errors import InvalidInputError, PayloadTooLargeError
from fmhub.tasks import ImageTooLargeError, dhash, inspect_image
from fmhub.tasks._images import CORRUPTIONS, augment, corrupt, decode_base64, hamming, open_image


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width``×``height`` gray pixels but whose data holds almost nothing (a bomb's
    shape: a few bytes that would ask for gigabytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def encoded(image: Image.Image, kind: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **options)
    return buffer.getvalue()


def gradient(size: int = 32, flip: bool = False) -> Image.Image:
    ramp = np.tile(np.linspace(0, 255, size, dtype=np.float32), (size, 1))
    pixels = np.stack([ramp, ramp.T, 255 - ramp], axis=-1)
    return Image.fromarray((pixels[:, ::-1] if flip else pixels).astype(np.uint8), "RGB")


@pytest.mark.parametrize("side", [5_000, 100_000])  # over our limit; over Pillow's own refusal too
def test_a_bomb_is_refused_from_its_header(side: int) -> None:
    data = png_declaring(side, side)
    assert len(data) < 100
    with pytest.raises(ImageTooLargeError) as refused:
        open_image(data, max_pixels=1_000_000, what="bomb.png")
    assert isinstance(refused.value, PayloadTooLargeError) and refused.value.pixels == side * side
    assert "bomb.png" in refused.value.message and "1,000,000" in refused.value.message


def test_broken_files_are_named_input_errors() -> None:
    whole = encoded(gradient())
    with pytest.raises(InvalidInputError, match="truncated"):
        open_image(whole[:len(whole) // 2])
    with pytest.raises(InvalidInputError, match="not an image"):
        open_image(b"%PDF-1.7 not an image")
    with pytest.raises(InvalidInputError, match="empty"):
        open_image(b"")
    with pytest.raises(InvalidInputError, match="not valid base64"):
        decode_base64("!!not base64!!")
    assert decode_base64("data:image/png;base64," + __import__("base64").b64encode(whole).decode()) == whole


def test_inspect_reports_the_stored_size_mode_and_format() -> None:
    photo = gradient(400)
    image, width, height, mode, kind = inspect_image(encoded(photo, "JPEG", quality=90))
    assert (width, height, mode, kind) == (400, 400, "RGB", "JPEG")
    assert max(image.size) < 400  # decoded at a reduced scale: enough for the hash
    assert dhash(image) == dhash(Image.open(io.BytesIO(encoded(photo, "JPEG", quality=90))))
    _, _, _, mode, kind = inspect_image(encoded(photo.convert("L")))
    assert (mode, kind) == ("L", "PNG")


def test_dhash_keeps_copies_close_and_tells_pictures_apart() -> None:
    original = gradient(64)
    resized = original.resize((48, 48))
    recompressed = Image.open(io.BytesIO(encoded(original, "JPEG", quality=60)))
    other = gradient(64, flip=True)
    hashes = np.asarray([dhash(x) for x in (original, resized, recompressed, other)], dtype=np.int64)
    distance = hamming(np.repeat(hashes[:1], 3), hashes[1:])
    assert distance[0] <= 2 and distance[1] <= 2 and distance[2] >= 20


def test_corruptions_are_seeded_and_change_the_pixels() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(40, 215, (32, 32, 3), dtype=np.uint8), "RGB")  # detail for blur to blur
    for name in CORRUPTIONS:
        once = np.asarray(corrupt(name, image, 3, 5))
        assert once.shape == (32, 32, 3)
        assert np.array_equal(once, np.asarray(corrupt(name, image, 3, 5))), name  # same seed and row, same pixels
        assert not np.array_equal(once, np.asarray(image)), name
    rows = [np.asarray(corrupt("noise", image, 3, row)) for row in (0, 1)]
    assert not np.array_equal(*rows)  # each row its own draw


def test_augmentation_draws_from_torchs_generator() -> None:
    import torch

    image = gradient(32)
    torch.manual_seed(7)
    first = [np.asarray(augment(image, crop=0.5, flip=True, rotation=20)) for _ in range(4)]
    torch.manual_seed(7)
    again = [np.asarray(augment(image, crop=0.5, flip=True, rotation=20)) for _ in range(4)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))  # a resumed run augments the same
    assert any(a.shape != (32, 32, 3) or not np.array_equal(a, np.asarray(image)) for a in first)
    assert np.array_equal(np.asarray(augment(image, crop=0, flip=False, rotation=0)), np.asarray(image))
