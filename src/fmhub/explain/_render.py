"""Explanations for people: colours per attribution, a heat-map overlay of an image, a shareable HTML page.

Green supports the explained label, red speaks against it; the intensity is the attribution over the largest
magnitude of the same explanation. The HTML export is one self-contained file (images inlined as PNG), with
every text escaped.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from fmhub.explain._base import Explanation

__all__ = ["colour", "overlay_png", "to_html", "scale_of"]


def scale_of(scores: list[float]) -> float:
    """The largest attribution magnitude (1 when all are zero): what full colour stands for."""
    largest = float(np.max(np.abs(scores))) if len(scores) else 0.0
    return largest if largest > 0 else 1.0


def colour(score: float, scale: float) -> tuple[int, int, int]:
    """White through green (supports the label) or red (against it), by ``|score| / scale``."""
    t = min(1.0, abs(score) / scale)
    full = (22, 163, 74) if score >= 0 else (220, 38, 38)
    return tuple(int(round(255 + (c - 255) * t)) for c in full)  # type: ignore[return-value]


def overlay_png(explanation: Explanation, side: int = 256) -> bytes:
    """The explained image with its region attributions laid over it (PNG, ``side`` pixels on the long edge)."""
    from PIL import Image

    image = explanation.source.convert("RGB")
    ratio = side / max(image.size)
    image = image.resize((max(1, round(image.size[0] * ratio)), max(1, round(image.size[1] * ratio))))
    rows, columns = explanation.grid
    scale = scale_of(explanation.scores)
    cells = np.zeros((rows, columns, 4), dtype=np.uint8)
    for i, score in enumerate(explanation.scores):
        r, g, b = (22, 163, 74) if score >= 0 else (220, 38, 38)
        cells[i // columns, i % columns] = (r, g, b, int(200 * min(1.0, abs(score) / scale)))
    layer = Image.fromarray(cells, "RGBA").resize(image.size, Image.NEAREST)
    out = io.BytesIO()
    Image.alpha_composite(image.convert("RGBA"), layer).save(out, format="PNG")
    return out.getvalue()


def _text_html(explanation: Explanation) -> str:
    text = explanation.source or ""
    scale = scale_of(explanation.scores)
    if explanation.spans is None:  # no offsets (a slow tokenizer): the tokens themselves
        parts = [(u, s) for u, s in zip(explanation.units, explanation.scores, strict=True)]
        return " ".join(_mark(u, s, scale) for u, s in parts)
    out, at = [], 0
    for (start, end), score, unit in zip(explanation.spans, explanation.scores, explanation.units, strict=True):
        if start < at:  # tokens sharing characters: colour once
            continue
        out.append(html.escape(text[at:start]))
        out.append(_mark(text[start:end], score, scale, unit))
        at = end
    out.append(html.escape(text[at:]))
    return "".join(out)


def _mark(shown: str, score: float, scale: float, unit: str | None = None) -> str:
    r, g, b = colour(score, scale)
    return (f'<mark style="background: rgb({r},{g},{b})" title="{html.escape(unit or shown)}: {score:+.4f}">'
            f"{html.escape(shown)}</mark>")


def to_html(results: list[tuple[Explanation, dict[str, float] | None]], title: str) -> str:
    """One HTML page of explanations (texts coloured per token, images with their overlay)."""
    parts = []
    for i, (explanation, measured) in enumerate(results):
        head = (f"<h2>#{i + 1}: {html.escape(explanation.label)} "
                f"<small>(p = {explanation.probability:.3f}; predicted {html.escape(explanation.predicted)}; "
                f"{html.escape(explanation.method)})</small></h2>")
        if explanation.grid is not None and explanation.source is not None:
            data = base64.b64encode(overlay_png(explanation)).decode("ascii")
            body = f'<img alt="attributions over the image" src="data:image/png;base64,{data}">'
        else:
            body = f'<p class="text">{_text_html(explanation)}</p>'
        notes = []
        if explanation.completeness is not None:
            c = explanation.completeness
            notes.append(f"completeness {'holds' if c.holds else 'does NOT hold'}: attributions sum "
                         f"{c.attributions_sum:+.4f} vs f(x) − f(baseline) {c.expected:+.4f} ({c.steps} steps)")
        if measured:
            notes.append(", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in measured.items()))
        top = ", ".join(f"{html.escape(u)} ({s:+.3f})" for u, s in explanation.top(5))
        notes.append(f"top: {top}")
        parts.append(head + body + "".join(f"<p class=note>{n}</p>" for n in notes))
    return ("<!doctype html><html><head><meta charset=utf-8><title>" + html.escape(title) + "</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
            ".text{line-height:1.9}mark{padding:.1em .05em;border-radius:3px;color:#111}"
            ".note{color:#555;font-size:.9em}</style></head><body><h1>" + html.escape(title) + "</h1>"
            "<p>Green supports the label, red speaks against it.</p>" + "".join(parts) + "</body></html>\n")
