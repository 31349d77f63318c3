"""Text measurements: the ASCII fast path agrees with the Unicode path and with Python's own str methods."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from fmhub.data._texts import _normalize_unicode, measure, normalize_text, normalize_texts

ASCII = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=40)
SPACES = " \t\n\r\x0b\x0c\x1c\x1f\u00a0\u2003\u3000"
MIXED = st.text(alphabet=st.sampled_from(list("aZ9,.!-_'$+é") + list(SPACES) + ["Ａ", "ﬁ", "—", "…"]), max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(ASCII, max_size=20))
def test_ascii_path_matches_the_unicode_path(texts: list[str]) -> None:
    assert normalize_texts(texts) == _normalize_unicode(pa.array(texts, pa.string()))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(ASCII, MIXED), max_size=20))
def test_tokens_and_empties_match_python(texts: list[str]) -> None:
    measured = measure(texts)
    assert measured.tokens.tolist() == [len(t.split()) for t in texts]
    assert measured.empty.tolist() == [not t.strip() for t in texts]
    assert measured.chars.tolist() == [len(t) for t in texts]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(ASCII, MIXED), min_size=1, max_size=20), st.data())
def test_a_row_normalizes_the_same_in_any_batch(texts: list[str], data: st.DataObject) -> None:
    # Rows are normalized by the ASCII or the Unicode path depending on the row, never on its batch.
    alone = [normalize_texts([t])[0] for t in texts]
    order = data.draw(st.permutations(range(len(texts))))
    together = normalize_texts([texts[i] for i in order])
    assert [together[order.index(i)] for i in range(len(texts))] == alone


def test_near_duplicate_examples() -> None:
    assert normalize_text("Hello, World!") == normalize_text("hello world") == normalize_text("HELLO—WORLD…")
    assert normalize_text("ﬁne Ａrt") == "fineart"  # NFKC folds ligatures and full-width forms
    assert normalize_text("price: $5 + tax") == "price$5+tax"  # symbols are not punctuation
    assert normalize_text("cafe") != normalize_text("café")


def test_hashes_key_punctuation_only_texts_by_their_exact_text() -> None:
    measured = measure(["!!!", "...", "hello", "Hello!", "", None])
    assert measured.key[0] != measured.key[1]  # both normalize to "", but are different texts
    assert measured.key[2] == measured.key[3] and measured.exact[2] != measured.exact[3]
    assert measured.empty.tolist() == [False, False, False, False, True, True]
