"""Explanations: why a model version said what it said, per prediction and across a split.

Attributions of a classifier's prediction to the units of its input (a text's tokens, an image's regions) by
integrated gradients, occlusion and attention rollout (Captum underneath), their faithfulness measured
(ERASER comprehensiveness and sufficiency, deletion AUC) against a random attribution and attention rollout,
and — for optimized variants — how far a variant keeps its parent's reasons. A task names the explainer of its
inputs (``Task.explains``); adding one is a module with an :class:`Explainer` and its registration.

Example:
    >>> import fmhub
    >>> from fmhub.explain import ExplainArgs, explain
    >>> loaded = fmhub.load("acme/bbc-minilm@v1")
    >>> [(explanation, _)] = explain(loaded, ["Shares rose on Monday"], ExplainArgs(method="occlusion"))
    >>> explanation.top(3)
"""

from fmhub.explain._base import (DEFAULT_STEPS, MAX_STEPS, METHODS, TOLERANCE, Completeness, Explainer, Explanation,
                                 MethodUnavailableError, Prepared, default_method, probabilities, require)
from fmhub.explain._explain import MAX_POSITIONS, ExplainArgs, dataset_rows, explain, label_id, max_length_of
from fmhub.explain._render import colour, overlay_png, scale_of, to_html
from fmhub.explain._faithfulness import BINS, faithfulness, spearman
from fmhub.explain._registry import for_task, get, names, register
from fmhub.explain._report import (KEEPS_REASONS, SECTION_MAX_STEPS, SECTION_ROWS, SECTION_STEPS, ExplainOptions,
                                  SectionArgs, explained_rows, explanations_section)

__all__ = ["Explainer", "Prepared", "Explanation", "Completeness", "MethodUnavailableError", "METHODS",
           "DEFAULT_STEPS", "MAX_STEPS", "TOLERANCE", "MAX_POSITIONS", "BINS", "ExplainArgs", "explain",
           "label_id", "max_length_of", "default_method", "require", "probabilities", "faithfulness", "spearman",
           "register", "get", "names", "for_task", "ExplainOptions", "SectionArgs", "explanations_section",
           "explained_rows", "KEEPS_REASONS", "SECTION_ROWS", "SECTION_STEPS", "SECTION_MAX_STEPS", "dataset_rows", "colour", "overlay_png", "scale_of", "to_html"]
