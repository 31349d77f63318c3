"""What the store accepts as weights: only safetensors files whose header holds; pickle names for loaders.

Pickles are found by their content (:mod:`fmhub.store.pickles`) and refused unless the uploader opts in;
the pickle-like names here serve the code that picks files by name (what ``fmhub serve`` never
downloads, which weights ``import-model`` converts, how a file stored by an older fmhub, never scanned,
is marked). A ``.safetensors`` file is checked from its header alone — never its tensor data — by the rules of the
``safetensors`` crate (0.8) that every loader uses, plus a few stricter ones where readers could
disagree about what a file means (duplicate keys, unknown fields). A file accepted here is one the
crate loads; the reverse is not promised.

Example:
    >>> is_pickle_path("checkpoints/Model.PT")
    True
    >>> validate_safetensors("model.safetensors", blob.size,     # wired to a BlobStore
    ...                      lambda start, end: b"".join(blobs.iter_chunks(blob.sha256, start, end)))
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from types import MappingProxyType

from fmhub.errors import InvalidWeightsError, UnsafeFileError

__all__ = [
    "PICKLE_SUFFIXES",
    "DTYPE_BITS",
    "MAX_HEADER_SIZE",
    "ReadRange",
    "is_pickle_path",
    "check_not_pickle",
    "validate_safetensors",
]

# -- PICKLE -----------------------------------------------------------------------------------------

#: Lower-case suffixes of pickle-based formats. A name is only a convention — ``torch.load`` reads a
#: pickle whatever it is called — but loaders pick files by name (transformers looks for
#: ``pytorch_model.bin``), so refusing these names closes the path by which a pickle gets loaded
#: without anyone asking for it.
PICKLE_SUFFIXES: tuple[str, ...] = (
    # PyTorch's ``pytorch_model.bin`` (and its shards) is ``torch.save`` output: a zip of pickles, or a
    # bare pickle in the legacy format. Non-pickle ``.bin`` files (fastText, old GGML) are refused too:
    # the name cannot tell them apart, and --allow-pickle is the way through.
    ".bin",
    # ``torch.save`` checkpoints by PyTorch's own convention.
    ".pt",
    ".pth",
    # Raw ``pickle.dump`` output.
    ".pkl",
    ".pickle",
    # PyTorch Lightning and Stable Diffusion checkpoints: ``torch.save`` of a dict.
    ".ckpt",
    # joblib (scikit-learn models): pickle with numpy arrays stored beside it.
    ".joblib",
)


def is_pickle_path(path: str) -> bool:
    """Whether the last segment of ``path`` ends with a pickle suffix, ignoring case (``Model.PT``)."""
    name = path.rsplit("/", 1)[-1].lower()
    return name.endswith(PICKLE_SUFFIXES)


def check_not_pickle(path: str, *, allow_pickle: bool) -> None:
    """Refuse a file with a pickle-like name unless the caller explicitly allows it (the store decides by
    content instead: :func:`fmhub.store.pickles.scan_pickle`).

    Raises:
        UnsafeFileError: ``path`` has a pickle suffix and ``allow_pickle`` is False.
    """
    if not allow_pickle and is_pickle_path(path):
        raise UnsafeFileError(path)


# -- SAFETENSORS ------------------------------------------------------------------------------------

#: The crate's ``MAX_HEADER_SIZE``: it refuses to parse a longer header, so no valid file has one.
MAX_HEADER_SIZE = 100_000_000

#: Bits per element of every dtype safetensors 0.8 reads (the crate's ``Dtype::bitsize``). The MX
#: formats F4 and F6_* are packed below a byte, so a tensor of them must hold a whole number of bytes
#: (an odd number of F4 elements is invalid); C64 is a complex number of two F32 parts.
DTYPE_BITS: Mapping[str, int] = MappingProxyType({
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
})

#: Returns the bytes ``[start, end)`` of the file being checked (wired to the blob store by callers).
ReadRange = Callable[[int, int], bytes]

_PREFIX = 8  # the little-endian u64 header length
_METADATA_KEY = "__metadata__"
_TENSOR_KEYS = ("dtype", "shape", "data_offsets")
#: Element counts are int64 in torch and numpy; anything larger is a lie, not a tensor.
_MAX_ELEMENTS = 2**63 - 1
#: The longest integer a header may spell: 2**64 - 1 has 20 digits. Longer ones are refused before
#: ``int()`` sees them, so a 100 MB run of digits costs nothing even with the interpreter's
#: int-string limit lifted.
_MAX_INT_DIGITS = 20
_MAX_FLOAT_CHARS = 64


class _Reject(Exception):
    """Internal: one reason a header is invalid; :func:`validate_safetensors` adds the path."""


def validate_safetensors(path: str, size: int, read: ReadRange) -> None:
    """Check that a safetensors file's header is well-formed and describes exactly the bytes after it.

    Reads the 8-byte length prefix, then the header; never the tensor data. The rules are the
    crate's (header length ≤ 100 MB; known dtypes; ``shape`` × dtype size = the ``data_offsets``
    span; tensors, sorted by offset, tile the data buffer with no gap, overlap or trailing bytes),
    and stricter where readers could disagree: no duplicate keys, no keys beyond ``dtype``/``shape``/
    ``data_offsets`` in a tensor, ``__metadata__`` (when present) a string-to-string object.

    Args:
        path: the file's path in the repository, for the error message.
        size: the file's size in bytes.
        read: ``read(start, end)`` returns the bytes ``[start, end)`` of the file.

    Raises:
        InvalidWeightsError: with the first problem found as ``reason``.
    """
    try:
        _validate(size, read)
    except _Reject as error:
        raise InvalidWeightsError(path, str(error)) from None


def _validate(size: int, read: ReadRange) -> None:
    if size < _PREFIX:
        raise _Reject(f"the file is {size} bytes, shorter than the 8-byte header length")
    n = int.from_bytes(_read_exact(read, 0, _PREFIX), "little")
    # Same order as the crate: the size cap first, so an absurd length is named as such.
    if n > MAX_HEADER_SIZE:
        raise _Reject(f"the header length {n} is beyond the {MAX_HEADER_SIZE}-byte limit")
    if n == 0:
        raise _Reject("the header length is 0; even an empty header is '{}'")
    if _PREFIX + n > size:
        raise _Reject(f"the header length {n} runs past the end of the {size}-byte file")
    header = _parse_json(_read_exact(read, _PREFIX, _PREFIX + n))
    if not isinstance(header, dict):
        raise _Reject(f"the header must be a JSON object, not {_json_type(header)}")
    buffer_len = size - _PREFIX - n
    if _METADATA_KEY in header:
        _check_metadata(header[_METADATA_KEY])
    spans = [
        (*_check_tensor(name, info, buffer_len), name)
        for name, info in header.items()
        if name != _METADATA_KEY
    ]
    _check_coverage(spans, buffer_len)


def _read_exact(read: ReadRange, start: int, end: int) -> bytes:
    data = read(start, end)
    if len(data) != end - start:
        raise _Reject(f"the file ended early: bytes [{start}, {end}) gave only {len(data)} bytes")
    return data


# -- the JSON ---------------------------------------------------------------------------------------


def _parse_json(raw: bytes) -> object:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Reject(f"the header is not valid UTF-8 (at byte {error.start} of the header)") from None
    # json accepts the JSON whitespace (space, tab, CR, LF) around the value, like serde_json: that
    # covers the spaces the crate pads headers with to an 8-byte multiple.
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except RecursionError:
        # A valid header nests 3 levels; thousands of '[' are an attack on the parser, not a header.
        raise _Reject("the header JSON nests too deeply") from None
    except ValueError as error:  # JSONDecodeError, and int() refusing a number
        raise _Reject(f"the header is not valid JSON: {error}") from None


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # JSON leaves duplicate keys undefined: the crate silently keeps the last copy of a tensor, other
    # readers may keep the first. A file that means two things to two readers is refused.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Reject(f"the key {_show(key)} appears twice in one object")
            seen.add(key)
    for key in obj:
        _check_text(key)
    return obj


def _check_text(text: str) -> None:
    # Python's json decodes an escaped lone surrogate ("\ud800"); serde_json refuses it, and such a
    # name cannot be written back as UTF-8 by anyone downstream.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Reject(f"the string {_show(text)} holds a lone surrogate escape, which is not Unicode") from None


def _reject_constant(name: str) -> object:
    raise _Reject(f"the header contains {name}, which is not JSON")


def _parse_int(text: str) -> int | float:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise _Reject(f"the header has a {len(text)}-character integer, beyond any size or offset")
    # serde_json reads "-0" as the float -0.0, so the crate refuses it where an unsigned is expected;
    # reading it the same way keeps "-0" from passing as the integer 0 here.
    return -0.0 if text == "-0" else int(text)


def _parse_float(text: str) -> float:
    if len(text) > _MAX_FLOAT_CHARS:
        raise _Reject(f"the header has a {len(text)}-character number, beyond any size or offset")
    return float(text)


# -- the fields -------------------------------------------------------------------------------------


def _check_metadata(metadata: object) -> None:
    # The crate also takes "__metadata__": null as "no metadata"; no writer produces it, and one
    # meaning per file is simpler to reason about.
    if not isinstance(metadata, dict):
        raise _Reject(f"{_METADATA_KEY} must be an object of strings, not {_json_type(metadata)}")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise _Reject(f"{_METADATA_KEY} must map strings to strings; {_show(key)} maps to {_json_type(value)}")
        _check_text(value)


def _check_tensor(name: str, info: object, buffer_len: int) -> tuple[int, int]:
    """Validate one tensor's entry; returns its ``(begin, end)`` in the data buffer."""
    where = f"tensor {_show(name)}"
    if not isinstance(info, dict):
        raise _Reject(f"{where} must be an object with dtype, shape and data_offsets, not {_json_type(info)}")
    missing = [key for key in _TENSOR_KEYS if key not in info]
    if missing:
        raise _Reject(f"{where} has no {', '.join(missing)}")
    # The crate ignores unknown keys; refusing them keeps "what the file says" one thing for every reader.
    extra = [key for key in info if key not in _TENSOR_KEYS]
    if extra:
        raise _Reject(f"{where} has unexpected keys {_show(extra)} (allowed: {', '.join(_TENSOR_KEYS)})")

    dtype = info["dtype"]
    if not isinstance(dtype, str):
        raise _Reject(f"{where} has a dtype of {_json_type(dtype)}, not a string")
    bits = DTYPE_BITS.get(dtype)
    if bits is None:
        raise _Reject(f"{where} has unknown dtype {_show(dtype)} (known: {', '.join(DTYPE_BITS)})")

    elements = _count_elements(where, info["shape"])
    begin, end = _offsets(where, info["data_offsets"], buffer_len)

    total_bits = elements * bits
    if total_bits % 8:
        raise _Reject(f"{where} ({dtype}, shape {_show(info['shape'])}) holds {total_bits} bits, "
                      "not a whole number of bytes")
    nbytes = total_bits // 8
    if nbytes != end - begin:
        raise _Reject(f"{where} ({dtype}, shape {_show(info['shape'])}) needs {nbytes} bytes, "
                      f"but its data_offsets [{begin}, {end}] span {end - begin}")
    return begin, end


def _count_elements(where: str, shape: object) -> int:
    if not isinstance(shape, list):
        raise _Reject(f"{where} has a shape of {_json_type(shape)}, not a list of integers")
    elements = 1
    for dim in shape:
        # bool is an int in Python, but true is not a dimension in JSON.
        if type(dim) is not int:
            raise _Reject(f"{where} has a shape dimension of {_json_type(dim)} ({_show(dim)}), not an integer")
        if dim < 0:
            raise _Reject(f"{where} has a negative shape dimension {dim}")
        # Multiply left to right and stop at the first excess, as the crate's checked_mul does: never
        # build a huge integer from a long list of huge dimensions.
        elements *= dim
        if elements > _MAX_ELEMENTS:
            raise _Reject(f"{where} has a shape with more than 2**63 - 1 elements")
    return elements


def _offsets(where: str, offsets: object, buffer_len: int) -> tuple[int, int]:
    if not isinstance(offsets, list) or len(offsets) != 2 or any(type(x) is not int for x in offsets):
        raise _Reject(f"{where} has data_offsets {_show(offsets)}; expected [begin, end] integers")
    begin, end = offsets
    if begin < 0 or end < begin:
        raise _Reject(f"{where} has data_offsets [{begin}, {end}]; expected 0 <= begin <= end")
    if end > buffer_len:
        raise _Reject(f"{where} has data_offsets [{begin}, {end}] beyond the {buffer_len}-byte data buffer")
    return begin, end


def _check_coverage(spans: list[tuple[int, int, str]], buffer_len: int) -> None:
    # The crate sorts tensors by (begin, end) and requires each to start where the previous ended and
    # the last to end at the end of the file: the data is tiled exactly, so no bytes hide in gaps and
    # no two tensors alias. Empty tensors may share an offset with their neighbours.
    expected, previous = 0, None
    for begin, end, name in sorted(spans):
        if begin < expected:
            raise _Reject(f"tensor {_show(name)} at [{begin}, {end}] overlaps tensor {_show(previous)} "
                          f"which ends at {expected}")
        if begin > expected:
            raise _Reject(f"bytes [{expected}, {begin}) of the data buffer, before tensor {_show(name)}, "
                          "belong to no tensor")
        expected, previous = end, name
    if expected != buffer_len:
        raise _Reject(f"bytes [{expected}, {buffer_len}) at the end of the data buffer belong to no tensor")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _show(value: object, limit: int = 80) -> str:
    """``repr`` cut to ``limit`` characters: names and shapes come from the file and may be huge."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
