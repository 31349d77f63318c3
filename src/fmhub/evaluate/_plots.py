"""The plots of an evaluation report card: confusion matrix, reliability, per-class F1, robustness, slices.

Every function draws one figure and writes it twice, ``<stem>.png`` (100 dpi) and ``<stem>.svg``, and
returns ``[png_path, svg_path]``. The files are kept in a content-addressed store, so their bytes are a
pure function of the input, the same across runs, processes and threads:

* figures are built from ``matplotlib.figure.Figure`` + ``FigureCanvasAgg`` objects, never pyplot's global
  state, so nothing needs a display or leaks between calls;
* drawing runs under matplotlib's default style (a user's ``matplotlibrc`` or an earlier
  ``style.use`` changes nothing) plus a fixed ``svg.hashsalt`` (stable SVG ids) and ``svg.fonttype="path"``
  (glyphs as paths, no fonts needed to view the SVG); rcParams are restored afterwards;
* no timestamps or version strings are written: the SVG gets no ``Date``/``Creator`` metadata, the PNG
  no ``Software`` text chunk;
* rcParams are process-global, so drawing is serialised by a module lock (files are written outside it).

Figures are about 6×5 in and grow with their label count; layout is matplotlib's constrained layout (a tight
layout that also makes room for colorbars), tick labels rotate when there are many or they are long.
Label text comes from users and is rendered literally: control characters become spaces, long names are
cut to ``MAX_LABEL_CHARS`` with "…", and ``$`` is escaped so mathtext never starts. Empty inputs give a
figure with a "no data" note instead of an error.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmhub.errors import InvalidInputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "MAX_ANNOTATED_CLASSES",
    "MAX_LABEL_CHARS",
    "confusion_matrix_plot",
    "per_class_f1_plot",
    "reliability_plot",
    "robustness_plot",
    "slices_plot",
    "search_plot",
]

DPI = 100
FIGSIZE = (6.0, 5.0)  # inches: the size of a figure with few labels
MAX_FIGURE_INCHES = 24.0  # figures grow with their label count, up to this
MAX_LABEL_CHARS = 30  # longer labels are cut and end with "…"
MAX_TITLE_CHARS = 80
MAX_ANNOTATED_CLASSES = 30  # a confusion matrix with more classes has no numbers in its cells
MAX_TICK_LABELS = 60  # above this, only every k-th class is named on a confusion matrix axis

_RC = {"svg.hashsalt": "fmhub", "svg.fonttype": "path", "text.usetex": False}
_BLUE, _RED, _GREEN, _GREY = "#1f77b4", "#d62728", "#2ca02c", "#7f7f7f"
_LOCK = threading.Lock()


# -- public API -------------------------------------------------------------------------------------


def confusion_matrix_plot(
    matrix: list[list[int]], labels: list[str], stem: Path, title: str = "Confusion matrix"
) -> list[Path]:
    """Heatmap of ``matrix`` (rows = true label, columns = predicted) with counts in the cells and a colorbar.

    Raises :class:`~fmhub.errors.InvalidInputError` unless ``matrix`` is ``len(labels)`` × ``len(labels)``.
    """
    n = len(labels)
    if len(matrix) != n or any(len(row) != n for row in matrix):
        shape = f"{len(matrix)}×{sorted({len(row) for row in matrix})}"
        raise InvalidInputError(f"confusion matrix is {shape}, expected {n}×{n} for {n} labels")
    values = [[_number(cell) or 0.0 for cell in row] for row in matrix]
    names = [_text(label) for label in labels]
    return _render(stem, lambda: _draw_confusion(values, names, _text(title, MAX_TITLE_CHARS, empty="")))


def reliability_plot(bins: list[dict], ece: float | None, stem: Path) -> list[Path]:
    """Reliability diagram: accuracy per confidence bin against the diagonal, the gaps shaded, counts below.

    ``bins`` are ``{"lower", "upper", "count", "confidence", "accuracy"}`` dicts; bins without bounds are
    ignored, and only bins with a count and an accuracy get a bar.
    """
    rows = []
    for item in bins:
        lower, upper = _number(item.get("lower")), _number(item.get("upper"))
        if lower is None or upper is None or upper <= lower:
            continue
        count = int(_number(item.get("count")) or 0)
        rows.append((lower, upper, count, _number(item.get("confidence")), _number(item.get("accuracy"))))
    rows.sort(key=lambda row: (row[0], row[1]))
    return _render(stem, lambda: _draw_reliability(rows, _number(ece)))


def per_class_f1_plot(per_class: list[dict], stem: Path, key: str = "label") -> list[Path]:
    """Horizontal F1 bars per class, best on top, the support in each label and the macro F1 as a line.

    Classes are ``{key: name, "f1": float | None, "support": int, ...}``; a class without F1 is listed
    last with "n/a".
    """
    rows = []
    for item in per_class:
        name = _text(item.get(key, ""))
        support = _number(item.get("support"))
        rows.append((name if support is None else f"{name} (n={int(support):,})", _number(item.get("f1"))))
    rows.sort(key=lambda row: (row[1] is None, -(row[1] or 0.0), row[0]))
    return _render(stem, lambda: _draw_per_class(rows))


def robustness_plot(perturbations: list[dict], metric: str, stem: Path) -> list[Path]:
    """Bars of ``delta[metric]`` per perturbation (red = worse, green = better) around a zero line.

    Perturbations are ``{"name", "metrics": {...}, "delta": {metric: float | None}}``; entries without a
    value for ``metric`` are skipped.
    """
    rows = []
    for item in perturbations:
        delta = _number((item.get("delta") or {}).get(metric))
        if delta is not None:
            rows.append((_text(item.get("name", "")), delta))
    return _render(stem, lambda: _draw_robustness(rows, _text(metric, MAX_LABEL_CHARS)))


def slices_plot(groups: list[dict], metric: str, stem: Path, title: str) -> list[Path]:
    """Bars of ``metrics[metric]`` per group value (in input order), with the row count under each name.

    Groups are ``{"value": str, "rows": int, "metrics": {metric: float | None}}``; a group without a value
    for ``metric`` shows "n/a".
    """
    rows = []
    for item in groups:
        count = _number(item.get("rows"))
        name = _text(item.get("value", ""))
        label = name if count is None else f"{name}\n(n={int(count):,})"
        rows.append((label, _number((item.get("metrics") or {}).get(metric))))
    return _render(
        stem, lambda: _draw_slices(rows, _text(metric, MAX_LABEL_CHARS), _text(title, MAX_TITLE_CHARS, empty=""))
    )


# -- drawing ----------------------------------------------------------------------------------------


def search_plot(points: list[dict], threshold: float | None, stem: Path, x_label: str,
                title: str = "Accuracy against speed") -> list[Path]:
    """Scatter of an optimization search: ``x`` (e.g. batch-1 latency, ms) against validation ``accuracy`` per
    candidate (``name``), the Pareto front joined by a line (``front``), the pick starred (``picked``), the
    parent a grey square (``parent``) and the least accuracy allowed (``threshold``) as a dashed line."""
    rows = [(float(p["x"]), float(p["accuracy"]), _text(str(p.get("name", ""))), bool(p.get("front")),
             bool(p.get("picked")), bool(p.get("parent")))
            for p in points if _number(p.get("x")) is not None and _number(p.get("accuracy")) is not None]
    return _render(stem, lambda: _draw_search(rows, _number(threshold), _text(x_label, MAX_TITLE_CHARS),
                                              _text(title, MAX_TITLE_CHARS, empty="")))


def _draw_search(rows: list[tuple[float, float, str, bool, bool, bool]], threshold: float | None, x_label: str,
                 title: str) -> Figure:
    fig = _figure(*FIGSIZE)
    ax = fig.add_subplot()
    ax.set_title(title)
    if not rows:
        _no_data(ax)
        return fig
    others = [r for r in rows if not (r[4] or r[5])]
    ax.scatter([r[0] for r in others], [r[1] for r in others], color=_BLUE, alpha=0.7, label="candidate")
    front = sorted((r for r in rows if r[3]), key=lambda r: r[0])
    if front:
        ax.plot([r[0] for r in front], [r[1] for r in front], color=_GREEN, drawstyle="steps-post",
                label="Pareto front")
    for marker, index, color, label, size in (("s", 5, _GREY, "parent", 60), ("*", 4, _RED, "pick", 220)):
        chosen = [r for r in rows if r[index]]
        if chosen:
            ax.scatter([r[0] for r in chosen], [r[1] for r in chosen], marker=marker, s=size, color=color,
                       zorder=3, label=label)
    for x, y, name, on_front, picked, parent in rows:
        if on_front or picked or parent:
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if threshold is not None:
        ax.axhline(threshold, color=_RED, linestyle="--", linewidth=1, label="least accuracy allowed")
    if max(r[0] for r in rows) > 4 * min(r[0] for r in rows) > 0:
        ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def _draw_confusion(values: list[list[float]], names: list[str], title: str) -> Figure:
    """The confusion matrix figure; grows with the class count."""
    n = len(names)
    extra = 0.06 * max(0, max(map(len, names), default=0) - 8)  # room for long (rotated) names
    fig = _figure(max(FIGSIZE[0], 0.3 * n + 3.0) + extra, max(FIGSIZE[1], 0.3 * n + 2.0) + extra)
    ax = fig.add_subplot()
    ax.set_title(title)
    if n == 0:
        _no_data(ax)
        return fig
    image = ax.imshow(values, cmap="Blues", vmin=0, interpolation="nearest", aspect="auto")
    fig.colorbar(image, ax=ax, label="count", fraction=0.046, pad=0.04)  # a slim bar beside the matrix
    step = math.ceil(n / MAX_TICK_LABELS)
    ticks = list(range(0, n, step))
    tick_size = 10 if n <= 15 else 8 if n <= 45 else 6
    _xticklabels(ax, ticks, [names[i] for i in ticks], tick_size)
    ax.set_yticks(ticks, [names[i] for i in ticks], fontsize=tick_size)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    if n <= MAX_ANNOTATED_CLASSES:
        peak = max((cell for row in values for cell in row), default=0.0)
        size = 10 if n <= 10 else 8 if n <= 20 else 6
        for i, row in enumerate(values):
            for j, cell in enumerate(row):
                color = "white" if peak > 0 and cell > peak / 2 else "black"
                ax.text(j, i, _count(cell), ha="center", va="center", color=color, fontsize=size)
    return fig


def _draw_reliability(rows: list[tuple[float, float, int, float | None, float | None]], ece: float | None) -> Figure:
    """The reliability diagram over a histogram of the bin counts."""
    fig = _figure(FIGSIZE[0], FIGSIZE[1] + 1.0)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.set_title(f"Reliability diagram (ECE = {'n/a' if ece is None else f'{ece:.4f}'})")
    low = min([0.0] + [row[0] for row in rows])
    high = max([1.0] + [row[1] for row in rows])
    top.plot([low, high], [low, high], linestyle="--", color=_GREY, linewidth=1, label="perfect calibration")
    filled = [row for row in rows if row[2] > 0 and row[4] is not None]
    if filled:
        lefts = [row[0] for row in filled]
        widths = [row[1] - row[0] for row in filled]
        top.bar(lefts, [row[4] for row in filled], width=widths, align="edge", color=_BLUE, edgecolor="white",
                linewidth=0.5, label="accuracy")
        gaps = [row for row in filled if row[3] is not None]
        if gaps:
            top.bar([row[0] for row in gaps], [abs(row[3] - row[4]) for row in gaps],
                    width=[row[1] - row[0] for row in gaps], bottom=[min(row[3], row[4]) for row in gaps],
                    align="edge", color=_RED, alpha=0.35, label="gap to confidence")
            top.hlines([row[3] for row in gaps], [row[0] for row in gaps], [row[1] for row in gaps], colors="black",
                       linewidth=1, label="mean confidence")
    else:
        _no_data(top, hide_axes=False)
    top.set_xlim(low, high)
    top.set_ylim(0, max(1.0, *(row[4] for row in filled)) if filled else 1.0)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize=8)
    counts = [row[2] for row in rows]
    if rows:
        bottom.bar([row[0] for row in rows], counts, width=[row[1] - row[0] for row in rows], align="edge",
                   color=_GREY, edgecolor="white", linewidth=0.5)
    bottom.set_ylim(0, max(counts, default=0) * 1.1 or 1)
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("count")
    return fig


def _draw_per_class(rows: list[tuple[str, float | None]]) -> Figure:
    """Horizontal F1 bars, one row per class."""
    n = len(rows)
    fig = _figure(FIGSIZE[0] + 1.0, max(FIGSIZE[1], 0.28 * n + 1.5))
    ax = fig.add_subplot()
    ax.set_title("Per-class F1")
    ax.set_xlabel("F1")
    scores = [f1 for _, f1 in rows if f1 is not None]
    if not scores:
        _no_data(ax)
        return fig
    positions = list(range(n))
    size = 10 if n <= 40 else 7 if n <= 100 else 5
    bars = ax.barh(positions, [f1 or 0.0 for _, f1 in rows], height=0.7, color=_BLUE)
    ax.bar_label(bars, labels=["n/a" if f1 is None else f"{f1:.3f}" for _, f1 in rows], padding=2, fontsize=size)
    macro = sum(scores) / len(scores)
    ax.axvline(macro, linestyle="--", color=_GREY, linewidth=1, label=f"macro F1 = {macro:.3f}")
    ax.set_yticks(positions, [name for name, _ in rows], fontsize=size)
    ax.set_ylim(n - 0.5, -0.5)  # best class on top
    ax.set_xlim(0, max(1.0, *scores) * 1.15)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _draw_robustness(rows: list[tuple[str, float]], metric: str) -> Figure:
    """Delta bars per perturbation around a zero line."""
    n = len(rows)
    fig = _figure(max(FIGSIZE[0], 0.4 * n + 2.0), FIGSIZE[1])
    ax = fig.add_subplot()
    ax.set_title(f"Robustness: change in {metric}")
    ax.set_ylabel(f"Δ {metric}")
    if not rows:
        _no_data(ax)
        return fig
    deltas = [delta for _, delta in rows]
    colors = [_RED if delta < 0 else _GREEN if delta > 0 else _GREY for delta in deltas]
    bars = ax.bar(range(n), deltas, width=0.6, color=colors)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.bar_label(bars, labels=[f"{delta:+.3f}" for delta in deltas], padding=2, fontsize=8 if n <= 20 else 6)
    span = max(abs(delta) for delta in deltas) or 0.01
    ax.set_ylim(min(0.0, *deltas) - 0.2 * span, max(0.0, *deltas) + 0.2 * span)
    _xticklabels(ax, list(range(n)), [name for name, _ in rows])
    return fig


def _draw_slices(rows: list[tuple[str, float | None]], metric: str, title: str) -> Figure:
    """Metric bars per group value, "n/a" for groups without a value."""
    n = len(rows)
    fig = _figure(max(FIGSIZE[0], 0.45 * n + 2.0), FIGSIZE[1])
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_ylabel(metric)
    values = [value for _, value in rows if value is not None]
    if not values:
        _no_data(ax)
        return fig
    bars = ax.bar(range(n), [value or 0.0 for _, value in rows], width=0.6, color=_BLUE)
    ax.bar_label(bars, labels=["n/a" if value is None else f"{value:.3f}" for _, value in rows], padding=2,
                 fontsize=8 if n <= 20 else 6)
    low, high = min(0.0, *values), max(0.0, *values)
    if low >= 0 and high <= 1:
        ax.set_ylim(0, 1.12)
    else:
        span = (high - low) or 1.0
        ax.set_ylim(low - (0.12 * span if low < 0 else 0), high + 0.12 * span)
    ax.axhline(0, color="black", linewidth=0.8)
    _xticklabels(ax, list(range(n)), [name for name, _ in rows])
    return fig


# -- helpers ----------------------------------------------------------------------------------------


def _text(value: object, limit: int = MAX_LABEL_CHARS, empty: str = "(empty)") -> str:
    """``value`` as literal, single-line matplotlib text: cut to ``limit`` chars with "…", ``$`` escaped."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in str(value)).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return (text or empty).replace("$", r"\$")  # an escaped "$" is drawn as "$", never starts mathtext


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, not a number, NaN or infinite)."""
    if value is None or isinstance(value, str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _count(value: float) -> str:
    """A cell value: an integer as is, anything else with 2 significant digits."""
    return f"{int(value):d}" if float(value).is_integer() else f"{value:.2g}"


def _figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot), at most ``MAX_FIGURE_INCHES`` a side."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    size = (min(width, MAX_FIGURE_INCHES), min(height, MAX_FIGURE_INCHES))
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")  # a tight layout that also fits colorbars
    FigureCanvasAgg(fig)
    return fig


def _no_data(ax: Axes, hide_axes: bool = True) -> None:
    """A centered "no data" note; without ticks unless ``hide_axes`` is False."""
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", fontsize=14, color=_GREY,
            bbox={"facecolor": "white", "edgecolor": "none"})
    if hide_axes:
        ax.set_xticks([])
        ax.set_yticks([])


def _xticklabels(ax: Axes, ticks: Sequence[int], labels: list[str], fontsize: float | None = None) -> None:
    """Category names on the x axis, rotated when there are many or they are long."""
    longest = max((len(label.split("\n")[0]) for label in labels), default=0)
    if len(labels) > 30:
        ax.set_xticks(ticks, labels, rotation=90, fontsize=fontsize or 7)
    elif len(labels) > 6 or longest * len(labels) > 48:
        ax.set_xticks(ticks, labels, rotation=45, ha="right", rotation_mode="anchor", fontsize=fontsize)
    else:
        ax.set_xticks(ticks, labels, fontsize=fontsize)


@contextmanager
def _drawing() -> Iterator[None]:
    """Matplotlib's default style plus ``_RC``, one drawing at a time; rcParams are restored on exit."""
    import matplotlib
    import matplotlib.style

    with _LOCK, matplotlib.style.context("default"), matplotlib.rc_context(_RC):
        yield


def _render(stem: Path, draw: Callable[[], Figure]) -> list[Path]:
    """Draw a figure, save it as PNG and SVG bytes, then write ``<stem>.png`` and ``<stem>.svg``."""
    with _drawing():
        fig = draw()
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    stem = Path(stem)
    paths = [stem.with_name(f"{stem.name}.png"), stem.with_name(f"{stem.name}.svg")]
    for path, data in zip(paths, (png.getvalue(), svg.getvalue()), strict=True):
        _write(path, data)
    return paths


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
