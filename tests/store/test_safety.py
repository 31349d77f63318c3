"""Weights safety: the pickle refusal by name, and safetensors header validation.

Valid files come from the real writers (``safetensors.numpy`` / ``safetensors.torch``); invalid ones are
crafted byte by byte. Where our rules match the crate's, the installed ``safetensors`` is asked too, so a
drift between the two shows up here; where we are deliberately stricter, the test says so.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import SafetensorError, deserialize
from safetensors.numpy import save as save_numpy

from fmhub.errors import InvalidInputError, InvalidWeightsError, UnsafeFileError
from fmhub.store import safety
from fmhub.store.safety import (
    DTYPE_BITS,
    MAX_HEADER_SIZE,
    PICKLE_SUFFIXES,
    check_not_pickle,
    is_pickle_path,
    validate_safetensors,
)

FAST = settings(max_examples=100, deadline=None)


class Reader:
    """A ``read(start, end)`` over bytes that records every range asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        self.calls.append((start, end))
        return self.data[start:end]


def validate(data: bytes, size: int | None = None) -> Reader:
    reader = Reader(data)
    validate_safetensors("model.safetensors", len(data) if size is None else size, reader)
    return reader


def reason(data: bytes, size: int | None = None) -> str:
    with pytest.raises(InvalidWeightsError) as error:
        validate(data, size)
    assert error.value.path == "model.safetensors"
    assert isinstance(error.value, InvalidInputError) and isinstance(error.value, ValueError)
    return error.value.reason


def crate_accepts(data: bytes) -> bool:
    try:
        deserialize(data)
    except SafetensorError:
        return False
    return True


def craft(header: dict | bytes, data: bytes = b"") -> bytes:
    """A file with this header (a dict is dumped as JSON) and data buffer."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def tensor(dtype: str, shape: list, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def test_exported_api() -> None:
    assert set(safety.__all__) == {"PICKLE_SUFFIXES", "DTYPE_BITS", "MAX_HEADER_SIZE", "ReadRange",
                                   "is_pickle_path", "check_not_pickle", "validate_safetensors"}


# -- pickle -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["pytorch_model.bin", "model.pt", "a/b/weights.pth", "x.pkl", "x.pickle",
                                  "last.ckpt", "clf.joblib", "MODEL.BIN", "dir/Model.Pt", "shard-00001.bin"])
def test_pickle_paths_are_recognized(path: str) -> None:
    assert is_pickle_path(path)
    with pytest.raises(UnsafeFileError) as error:
        check_not_pickle(path, allow_pickle=False)
    assert error.value.path == path
    check_not_pickle(path, allow_pickle=True)  # the explicit opt-in lets it through


@pytest.mark.parametrize("path", ["model.safetensors", "config.json", "tokenizer.model", "bin/README.md",
                                  "model.bin.md", "weights.pt.safetensors", "pt", "notes.binary"])
def test_other_paths_are_not_pickle(path: str) -> None:
    assert not is_pickle_path(path)
    check_not_pickle(path, allow_pickle=False)


def test_pickle_suffixes_are_lower_case_and_dotted() -> None:
    assert PICKLE_SUFFIXES == tuple(s.lower() for s in PICKLE_SUFFIXES)
    assert all(s.startswith(".") for s in PICKLE_SUFFIXES)
    assert {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"} <= set(PICKLE_SUFFIXES)


# -- valid files ------------------------------------------------------------------------------------


def test_numpy_files_of_many_dtypes_and_shapes_validate() -> None:
    tensors = {
        "f16": np.ones((2, 3), dtype=np.float16),
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
        "f64": np.zeros((1, 1, 5), dtype=np.float64),
        "i8": np.full(7, -3, dtype=np.int8),
        "i16": np.zeros(3, dtype=np.int16),
        "i32": np.zeros((2, 2), dtype=np.int32),
        "i64": np.zeros(1, dtype=np.int64),
        "u8": np.zeros(9, dtype=np.uint8),
        "u16": np.zeros(2, dtype=np.uint16),
        "u32": np.zeros(2, dtype=np.uint32),
        "u64": np.zeros(2, dtype=np.uint64),
        "bool": np.array([True, False, True]),
        "c64": np.zeros(2, dtype=np.complex64),
        "scalar": np.array(3.5, dtype=np.float32),         # 0-dim: shape [], 4 bytes
        "empty": np.zeros((0, 3), dtype=np.float32),       # no bytes at all
        "empty_i64": np.zeros((4, 0), dtype=np.int64),
    }
    data = save_numpy(tensors, metadata={"format": "np", "note": "ünïcode"})
    reader = validate(data)
    n = int.from_bytes(data[:8], "little")
    assert reader.calls == [(0, 8), (8, 8 + n)]  # the prefix, then the header: never the tensor data
    assert crate_accepts(data)


def test_torch_files_validate() -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save as save_torch

    tensors = {
        "bf16": torch.ones(4, 2, dtype=torch.bfloat16),
        "f8_e4m3": torch.zeros(3, dtype=torch.float8_e4m3fn),
        "f8_e5m2": torch.zeros(2, 2, dtype=torch.float8_e5m2),
        "f32": torch.randn(2, 3),
        "scalar": torch.tensor(1.5),
        "empty": torch.zeros(0),
        "i64": torch.arange(5),
    }
    validate(save_torch(tensors))
    validate(save_torch({"only": torch.tensor(7, dtype=torch.int32)}))


def test_empty_file_of_no_tensors_validates() -> None:
    validate(save_numpy({}))
    validate(craft(b"{}"))


def test_header_padding_and_json_whitespace_are_allowed() -> None:
    body = tensor("U8", [4], 0, 4)
    validate(craft(json.dumps({"t": body}).encode() + b"    ", b"abcd"))   # the writers pad with spaces
    validate(craft(b" \n\t" + json.dumps({"t": body}).encode() + b"\r\n", b"abcd"))


@pytest.mark.parametrize("dtype,count,nbytes", [("F4", 2, 1), ("F4", 6, 3), ("F6_E2M3", 4, 3), ("F6_E3M2", 8, 6),
                                                 ("F8_E8M0", 3, 3), ("F8_E4M3FNUZ", 1, 1), ("F8_E5M2FNUZ", 2, 2),
                                                 ("C64", 2, 16), ("BF16", 3, 6), ("F4", 0, 0)])
def test_every_crate_dtype_is_known_with_its_bit_size(dtype: str, count: int, nbytes: int) -> None:
    data = craft({"t": tensor(dtype, [count], 0, nbytes)}, b"\0" * nbytes)
    validate(data)
    assert crate_accepts(data)


@pytest.mark.parametrize("dtype,count", [("F4", 1), ("F4", 3), ("F6_E2M3", 1), ("F6_E3M2", 2), ("F6_E2M3", 6)])
def test_sub_byte_tensors_must_fill_whole_bytes(dtype: str, count: int) -> None:
    nbytes = -(-count * DTYPE_BITS[dtype] // 8)  # rounded up: still refused
    data = craft({"t": tensor(dtype, [count], 0, nbytes)}, b"\0" * nbytes)
    assert "not a whole number of bytes" in reason(data)
    assert not crate_accepts(data)


def test_empty_tensors_may_share_an_offset() -> None:
    data = craft({"a": tensor("F32", [0], 4, 4), "b": tensor("F32", [1], 0, 4), "c": tensor("I8", [0, 2], 4, 4),
                  "d": tensor("U8", [2], 4, 6), "z": tensor("F64", [0], 0, 0)}, b"\0" * 6)
    validate(data)
    assert crate_accepts(data)


def test_tensors_may_be_listed_in_any_order() -> None:
    data = craft({"second": tensor("U8", [2], 2, 4), "first": tensor("U8", [2], 0, 2)}, b"abcd")
    validate(data)
    assert crate_accepts(data)


# -- invalid files: each with its reason ------------------------------------------------------------

GOOD = {"a": tensor("F32", [2], 0, 8), "b": tensor("U8", [4], 8, 12)}
GOOD_DATA = b"\0" * 12


@pytest.mark.parametrize("size", [0, 1, 7])
def test_too_short(size: int) -> None:
    assert "shorter than the 8-byte header length" in reason(b"\0" * size)


def test_header_length_beyond_the_file() -> None:
    data = craft(GOOD, GOOD_DATA)
    short = data[: 8 + 10]
    assert "runs past the end of the 18-byte file" in reason(short)
    assert not crate_accepts(short)


def test_header_over_100_mb_is_refused_without_reading_it() -> None:
    declared = MAX_HEADER_SIZE + 1
    data = struct.pack("<Q", declared) + b"{}"
    reader = Reader(data)
    with pytest.raises(InvalidWeightsError) as error:
        # The size says the file is big enough: only the cap stops it, after an 8-byte read.
        validate_safetensors("model.safetensors", 8 + declared + 100, reader)
    assert "beyond the 100000000-byte limit" in error.value.reason
    assert reader.calls == [(0, 8)]
    assert "beyond the 100000000-byte limit" in reason(struct.pack("<Q", 2**64 - 1))


def test_zero_header_length() -> None:
    assert "header length is 0" in reason(struct.pack("<Q", 0) + b"{}")


def test_a_short_read_is_a_truncated_file() -> None:
    data = craft(GOOD, GOOD_DATA)
    with pytest.raises(InvalidWeightsError) as error:
        validate_safetensors("model.safetensors", len(data), lambda start, end: data[start:end][:-1])
    assert "ended early" in error.value.reason


@pytest.mark.parametrize("raw,expected", [
    (b"not json", "not valid JSON"),
    (b'{"a": ', "not valid JSON"),
    (b"{}{}", "not valid JSON"),
    (b"{}\x00", "not valid JSON"),                      # only JSON whitespace may pad a header
    (b"\xef\xbb\xbf{}", "not valid JSON"),              # a byte-order mark
    (b'{"\xff": 1}', "not valid UTF-8"),
    (b'{"\xed\xa0\x80": 1}', "not valid UTF-8"),         # a surrogate encoded as UTF-8
    (b"[]", "must be a JSON object, not an array"),
    (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
    (b'"text"', "must be a JSON object, not a string"),
    (b"null", "must be a JSON object, not null"),
    (b'{"__metadata__": {"a": NaN}}', "NaN, which is not JSON"),
    (b'{"t": {"dtype": "U8", "shape": [Infinity], "data_offsets": [0, 0]}}', "Infinity, which is not JSON"),
    (b'{"\\ud800": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}', "lone surrogate"),
    (b'{"__metadata__": {"a": "\\udc00"}}', "lone surrogate"),
    (b'{"t": {"dtype": "U8", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 0]}}', "5000-character integer"),
])
def test_malformed_json(raw: bytes, expected: str) -> None:
    data = craft(raw)
    assert expected in reason(data)
    assert not crate_accepts(data)


def test_duplicate_tensor_name() -> None:
    raw = (b'{"t": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, '
           b'"t": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}')
    data = craft(raw, b"\0" * 8)
    assert "the key 't' appears twice" in reason(data)
    assert crate_accepts(data)  # stricter than the crate, which silently keeps the last copy


def test_duplicate_keys_anywhere() -> None:
    inner = craft(b'{"__metadata__": {"a": "1", "a": "2"}}')
    assert "the key 'a' appears twice" in reason(inner)
    field = craft(b'{"t": {"dtype": "U8", "dtype": "I8", "shape": [0], "data_offsets": [0, 0]}}')
    assert "the key 'dtype' appears twice" in reason(field)


@pytest.mark.parametrize("metadata,expected", [
    ({"a": 1}, "'a' maps to a number"),
    ({"a": None}, "'a' maps to null"),
    ({"a": ["x"]}, "'a' maps to an array"),
    ({"a": {"b": "c"}}, "'a' maps to an object"),
    (["a"], "must be an object of strings, not an array"),
    ("a", "must be an object of strings, not a string"),
])
def test_metadata_must_map_strings_to_strings(metadata: object, expected: str) -> None:
    data = craft({"__metadata__": metadata, **GOOD}, GOOD_DATA)
    assert expected in reason(data)
    assert not crate_accepts(data)


def test_null_metadata_is_refused() -> None:
    data = craft({"__metadata__": None, **GOOD}, GOOD_DATA)
    assert "must be an object of strings, not null" in reason(data)
    assert crate_accepts(data)  # stricter than the crate, which reads null as "no metadata"


@pytest.mark.parametrize("dtype", ["I4", "f32", "FLOAT32", "", "F8_E4M3FN", "Q4_0"])
def test_unknown_dtype(dtype: str) -> None:
    data = craft({"t": tensor(dtype, [1], 0, 1)}, b"\0")
    assert f"unknown dtype {dtype!r}" in reason(data)
    assert not crate_accepts(data)


@pytest.mark.parametrize("info,expected", [
    (None, "must be an object with dtype, shape and data_offsets, not null"),
    ([1, 2], "not an array"),
    ({"dtype": "U8", "shape": [1]}, "has no data_offsets"),
    ({"shape": [1], "data_offsets": [0, 1]}, "has no dtype"),
    ({"dtype": 8, "shape": [1], "data_offsets": [0, 1]}, "dtype of a number, not a string"),
    ({"dtype": "U8", "shape": 1, "data_offsets": [0, 1]}, "shape of a number, not a list"),
    ({"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}, "negative shape dimension -1"),
    ({"dtype": "U8", "shape": [True], "data_offsets": [0, 1]}, "dimension of a boolean"),
    ({"dtype": "U8", "shape": [1.0], "data_offsets": [0, 1]}, "dimension of a number (1.0)"),
    ({"dtype": "U8", "shape": ["1"], "data_offsets": [0, 1]}, "dimension of a string"),
    ({"dtype": "U8", "shape": [1], "data_offsets": [0]}, "expected [begin, end] integers"),
    ({"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 1]}, "expected [begin, end] integers"),
    ({"dtype": "U8", "shape": [1], "data_offsets": [False, True]}, "expected [begin, end] integers"),
    ({"dtype": "U8", "shape": [1], "data_offsets": {"begin": 0, "end": 1}}, "expected [begin, end] integers"),
    ({"dtype": "U8", "shape": [1], "data_offsets": [-1, 0]}, "expected 0 <= begin <= end"),
    ({"dtype": "U8", "shape": [0], "data_offsets": [1, 0]}, "expected 0 <= begin <= end"),
])
def test_bad_tensor_entries(info: object, expected: str) -> None:
    data = craft({"t": info}, b"\0")
    assert expected in reason(data)
    assert not crate_accepts(data)


def test_unknown_tensor_keys_are_refused() -> None:
    data = craft({"t": {**tensor("U8", [1], 0, 1), "endianness": "big"}}, b"\0")
    assert "unexpected keys ['endianness']" in reason(data)
    assert crate_accepts(data)  # stricter than the crate, which ignores them


def test_negative_zero_is_not_an_unsigned_integer() -> None:
    # serde_json reads -0 as a float; Python's json would read it as the integer 0.
    for raw in (b'{"t": {"dtype": "U8", "shape": [-0], "data_offsets": [0, 0]}}',
                b'{"t": {"dtype": "U8", "shape": [0], "data_offsets": [-0, 0]}}'):
        data = craft(raw)
        assert "-0.0" in reason(data)
        assert not crate_accepts(data)


def test_offsets_out_of_bounds() -> None:
    data = craft({"t": tensor("U8", [8], 0, 8)}, b"\0" * 4)
    assert "data_offsets [0, 8] beyond the 4-byte data buffer" in reason(data)
    assert not crate_accepts(data)
    # Offsets are relative to the data buffer, not the file: pointing into the header is out of bounds too.
    data = craft({"t": tensor("U8", [4], 4, 8)}, b"\0" * 4)
    assert "beyond the 4-byte data buffer" in reason(data)


def test_overlapping_tensors() -> None:
    data = craft({"a": tensor("F32", [2], 0, 8), "b": tensor("F32", [1], 4, 8)}, b"\0" * 8)
    assert "tensor 'b' at [4, 8] overlaps tensor 'a' which ends at 8" in reason(data)
    assert not crate_accepts(data)
    twins = craft({"a": tensor("U8", [4], 0, 4), "b": tensor("U8", [4], 0, 4)}, b"\0" * 4)
    assert "overlaps" in reason(twins)
    assert not crate_accepts(twins)
    # An empty tensor placed inside another is refused by the crate too.
    inside = craft({"a": tensor("U8", [4], 0, 4), "e": tensor("U8", [0], 2, 2)}, b"\0" * 4)
    assert "tensor 'e' at [2, 2] overlaps tensor 'a'" in reason(inside)
    assert not crate_accepts(inside)


def test_hole_between_tensors() -> None:
    data = craft({"a": tensor("U8", [4], 0, 4), "b": tensor("U8", [4], 6, 10)}, b"\0" * 10)
    assert "bytes [4, 6) of the data buffer, before tensor 'b', belong to no tensor" in reason(data)
    assert not crate_accepts(data)
    leading = craft({"b": tensor("U8", [4], 2, 6)}, b"\0" * 6)
    assert "bytes [0, 2)" in reason(leading)


def test_trailing_bytes_after_the_last_tensor() -> None:
    data = craft(GOOD, GOOD_DATA + b"hidden")
    assert "bytes [12, 18) at the end of the data buffer belong to no tensor" in reason(data)
    assert not crate_accepts(data)
    no_tensors = craft(b"{}", b"x")
    assert "bytes [0, 1)" in reason(no_tensors)
    assert not crate_accepts(no_tensors)


def test_length_mismatch_with_shape_and_dtype() -> None:
    data = craft({"t": tensor("F32", [2, 2], 0, 8)}, b"\0" * 8)
    assert "tensor 't' (F32, shape [2, 2]) needs 16 bytes, but its data_offsets [0, 8] span 8" in reason(data)
    assert not crate_accepts(data)
    scalar = craft({"s": tensor("F64", [], 0, 4)}, b"\0" * 4)
    assert "needs 8 bytes" in reason(scalar)


def test_huge_shape_product() -> None:
    data = craft({"t": tensor("U8", [2**32, 2**32], 0, 0)})
    assert "more than 2**63 - 1 elements" in reason(data)
    assert not crate_accepts(data)
    # Multiplied left to right like the crate: an overflow before a later 0 still counts.
    late_zero = craft({"t": tensor("U8", [2**62, 4, 0], 0, 0)})
    assert "more than 2**63 - 1 elements" in reason(late_zero)
    assert not crate_accepts(late_zero)
    # A large but bounded count is just a length mismatch, never an allocation.
    big = craft({"t": tensor("F64", [2**40, 2**20], 0, 8)}, b"\0" * 8)
    assert "needs 9223372036854775808 bytes" in reason(big)
    many_dims = craft({"t": tensor("U8", [2**20] * 10_000, 0, 0)})
    assert "more than 2**63 - 1 elements" in reason(many_dims)


def test_reasons_quote_long_names_briefly() -> None:
    name = "n" * 10_000
    data = craft({name: tensor("XX", [1], 0, 1)}, b"\0")
    message = reason(data)
    assert len(message) < 1000 and "..." in message


#: safetensors 0.8.0 writes ``{},"__metadata__":{}}`` for no tensors and ``metadata={}``: not JSON.
WRITER_BUG = save_numpy({}, metadata={})


def test_the_writer_bug_on_no_tensors_and_empty_metadata() -> None:
    # Whatever the writer emits here (0.8.0: invalid JSON the crate cannot read back), we agree with the crate.
    try:
        validate(WRITER_BUG)
        accepted = True
    except InvalidWeightsError:
        accepted = False
    assert accepted == crate_accepts(WRITER_BUG)


# -- properties -------------------------------------------------------------------------------------

NUMPY_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8,
                np.uint16, np.uint32, np.uint64, np.bool_, np.complex64]
names = st.text(min_size=1, max_size=12).filter(lambda name: name != "__metadata__")
arrays = st.builds(
    lambda dtype, shape: np.zeros(shape, dtype=dtype),
    st.sampled_from(NUMPY_DTYPES),
    st.lists(st.integers(0, 4), max_size=4),
)
files = st.builds(
    lambda tensors, metadata: save_numpy(tensors, metadata=metadata),
    st.dictionaries(names, arrays, max_size=6),
    st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
).filter(lambda data: data != WRITER_BUG)  # see test_the_writer_bug_on_no_tensors_and_empty_metadata


@FAST
@given(files)
def test_files_written_by_safetensors_always_validate(data: bytes) -> None:
    validate(data)


@FAST
@given(files, st.data())
def test_a_corrupted_header_byte_is_caught_or_harmless(data: bytes, draw: st.DataObject) -> None:
    header_end = 8 + int.from_bytes(data[:8], "little")
    index = draw.draw(st.integers(0, header_end - 1), label="index")
    value = draw.draw(st.integers(0, 255), label="value")
    corrupted = data[:index] + bytes([value]) + data[index + 1:]
    try:
        validate(corrupted)
    except InvalidWeightsError:
        return
    # Whatever we accept, the crate that loaders use accepts too.
    assert crate_accepts(corrupted)
