"""Report card plots: PNG + SVG per figure, valid files, literal labels, empty inputs, byte-for-byte determinism."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from fmhub.errors import InvalidInputError
from fmhub.evaluate import _plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LONG = "very long class name " * 10  # 210 characters
MATH = "$x$"

# case -> (function, keyword arguments without ``stem``); JSON-ready so another process can render them too.
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "confusion": (
        "confusion_matrix_plot",
        {
            "matrix": [[50, 3, 0, 1], [4, 41, 2, 0], [0, 5, 38, 7], [1, 0, 6, 44]],
            "labels": ["cat", "dog", MATH, LONG],
            "title": "Confusion matrix ($test$ split)",
        },
    ),
    "reliability": (
        "reliability_plot",
        {
            "bins": [
                {"lower": i / 10, "upper": (i + 1) / 10, "count": c, "confidence": conf, "accuracy": acc}
                for i, (c, conf, acc) in enumerate(
                    [(0, None, None), (3, 0.15, 0.0), (8, 0.26, 0.25), (12, 0.35, 0.5), (20, 0.45, 0.4),
                     (25, 0.55, 0.6), (40, 0.66, 0.6), (60, 0.75, 0.8), (90, 0.86, 0.8), (150, 0.96, 0.93)]
                )
            ],
            "ece": 0.0412,
        },
    ),
    "per_class_f1": (
        "per_class_f1_plot",
        {
            "per_class": [
                {"entity": "PER", "f1": 0.91, "support": 1200, "precision": 0.9},
                {"entity": MATH, "f1": 0.42, "support": 7},
                {"entity": LONG, "f1": 0.77, "support": 310},
                {"entity": "MISC", "f1": None, "support": 0},
            ],
            "key": "entity",
        },
    ),
    "robustness": (
        "robustness_plot",
        {
            "perturbations": [
                {"name": "typos", "metrics": {"accuracy": 0.81}, "delta": {"accuracy": -0.07}},
                {"name": MATH, "metrics": {"accuracy": 0.9}, "delta": {"accuracy": 0.02}},
                {"name": LONG, "metrics": {"accuracy": 0.88}, "delta": {"accuracy": 0.0}},
                {"name": "skipped", "metrics": {"accuracy": None}, "delta": {"accuracy": None}},
                {"name": "other metric only", "metrics": {"f1": 0.5}, "delta": {"f1": -0.1}},
            ],
            "metric": "accuracy",
        },
    ),
    "slices": (
        "slices_plot",
        {
            "groups": [
                {"value": "short", "rows": 1200, "metrics": {"accuracy": 0.93}},
                {"value": MATH, "rows": 40, "metrics": {"accuracy": 0.71}},
                {"value": LONG, "rows": 3, "metrics": {"accuracy": None}},
                {"value": "", "rows": 0, "metrics": {}},
            ],
            "metric": "accuracy",
            "title": "Accuracy by $length$ bucket",
        },
    ),
}

N = 40
EDGE_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "confusion_40_classes": (
        "confusion_matrix_plot",
        {"matrix": [[(i * 7 + j * 3) % 11 for j in range(N)] for i in range(N)], "labels": [f"${i}" for i in range(N)]},
    ),
    "confusion_empty": ("confusion_matrix_plot", {"matrix": [], "labels": []}),
    "reliability_empty": ("reliability_plot", {"bins": [], "ece": None}),
    "reliability_no_counts": (
        "reliability_plot",
        {"bins": [{"lower": 0.0, "upper": 0.5, "count": 0, "confidence": None, "accuracy": None},
                  {"lower": 0.5, "upper": 1.0, "count": 0, "confidence": None, "accuracy": None}], "ece": float("nan")},
    ),
    "per_class_f1_empty": ("per_class_f1_plot", {"per_class": []}),
    "robustness_empty": ("robustness_plot", {"perturbations": [], "metric": "accuracy"}),
    "robustness_all_none": (
        "robustness_plot",
        {"perturbations": [{"name": "a", "metrics": {}, "delta": {"accuracy": None}}], "metric": "accuracy"},
    ),
    "slices_empty": ("slices_plot", {"groups": [], "metric": "accuracy", "title": "Accuracy by length"}),
}
ALL_CASES = {**CASES, **EDGE_CASES}


def render(case: str, stem: Path) -> list[Path]:
    """Render one case to ``stem``."""
    function, kwargs = ALL_CASES[case]
    return getattr(_plots, function)(stem=stem, **kwargs)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (the first chunk after the signature)."""
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Every case rendered once, into folders that do not exist yet."""
    out = tmp_path_factory.mktemp("plots") / "not" / "yet"
    return {case: render(case, out / case) for case in ALL_CASES}


@pytest.mark.parametrize("case", list(ALL_CASES))
def test_writes_a_valid_png_and_svg(rendered: dict[str, list[Path]], case: str) -> None:
    png, svg = rendered[case]
    assert png.name == f"{case}.png" and svg.name == f"{case}.svg" and png.parent == svg.parent
    png_bytes, svg_bytes = png.read_bytes(), svg.read_bytes()
    width, height = png_size(png_bytes)
    assert width > 0 and height > 0
    assert b"tEXt" not in png_bytes  # no "Software" (or any other) text chunk
    root = ET.fromstring(svg_bytes)
    assert root.tag.endswith("svg")
    assert b"<dc:date>" not in svg_bytes and b"Matplotlib v" not in svg_bytes


def test_figure_sizes(rendered: dict[str, list[Path]]) -> None:
    assert png_size(rendered["robustness"][0].read_bytes()) == (600, 500)  # 6 x 5 in at 100 dpi
    width, height = png_size(rendered["confusion_40_classes"][0].read_bytes())
    assert width > 600 and height > 500  # grows with the class count


def test_same_bytes_across_calls_and_threads(rendered: dict[str, list[Path]], tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        again = dict(zip(CASES, pool.map(lambda case: render(case, tmp_path / "other" / f"{case}-again"), CASES)))
    for case in CASES:
        for first, second in zip(rendered[case], again[case], strict=True):
            assert first.read_bytes() == second.read_bytes(), f"{case}: {first.suffix} differs"


SCRIPT = """
import json, sys
from pathlib import Path
from fmhub.evaluate import _plots
cases, out = json.loads(sys.argv[1]), Path(sys.argv[2])
for case, (function, kwargs) in cases.items():
    getattr(_plots, function)(stem=out / case, **kwargs)
print(json.dumps({"pyplot": "matplotlib.pyplot" in sys.modules}))
"""


def test_same_bytes_in_another_process(rendered: dict[str, list[Path]], tmp_path: Path) -> None:
    cases = {"confusion": CASES["confusion"]}
    env = {**os.environ, "PYTHONHASHSEED": "4242", "SOURCE_DATE_EPOCH": "0"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(cases), str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"pyplot": False}  # no pyplot global state
    for case in cases:
        for first in rendered[case]:
            assert (tmp_path / first.name).read_bytes() == first.read_bytes(), f"{first.name} differs"


def test_user_rc_params_neither_change_the_output_nor_are_changed(
    rendered: dict[str, list[Path]], tmp_path: Path
) -> None:
    import matplotlib

    user = {"font.size": 20.0, "axes.facecolor": "black", "svg.hashsalt": None, "svg.fonttype": "none"}
    with matplotlib.rc_context(user):
        before = dict(matplotlib.rcParams)
        paths = render("robustness_empty", tmp_path / "robustness_empty")
        assert dict(matplotlib.rcParams) == before
    for first, second in zip(rendered["robustness_empty"], paths, strict=True):
        assert first.read_bytes() == second.read_bytes()


def test_labels_are_literal_single_line_and_short() -> None:
    from matplotlib.cbook import is_math_text

    assert _plots._text(MATH) == r"\$x\$" and not is_math_text(_plots._text(MATH))
    assert not is_math_text(_plots._text("$a$ and $b$")) and not is_math_text(_plots._text(r"a\$b$"))
    cut = _plots._text(LONG)
    assert len(cut) == _plots.MAX_LABEL_CHARS and cut.endswith("…")
    assert _plots._text("two\nlines\tand\x00more") == "two lines and more"
    assert _plots._text("") == "(empty)" and _plots._text(7) == "7"


def test_confusion_matrix_must_match_the_labels(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="expected 2×2"):
        _plots.confusion_matrix_plot([[1, 2], [3]], ["a", "b"], tmp_path / "cm")
    with pytest.raises(ValueError):
        _plots.confusion_matrix_plot([[1]], ["a", "b"], tmp_path / "cm")
    assert not list(tmp_path.iterdir())
