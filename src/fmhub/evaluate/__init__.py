"""Evaluation report cards: one standard, attached to every model version.

``evaluate`` scores a model version on a dataset version and writes ``eval/<dataset>/<split>/``:
``report.json`` (schema ``report.schema.json`` beside this module), ``predictions.parquet`` and plots;
with ``push=True`` they are committed to the model repo with the model card's evaluation section and
``model-index``, and the card is indexed so versions can be listed by metric (:class:`Evaluations`).

Example:
    >>> from fmhub.evaluate import EvalConfig, evaluate
    >>> outcome = evaluate(EvalConfig(model="acme/bbc-minilm@v1", data="acme/bbc-news@v1", split="test"))
    >>> outcome.report["metrics"]["accuracy"]
    0.9594...
"""

from fmhub.evaluate._evaluate import (SCHEMA_ID, SECTIONS, EvalConfig, EvalOutcome, evaluate, parent_comparison,
                                      report_folder)
from fmhub.evaluations import EvaluationInfo, Evaluations, flat_metrics, stored_report
from fmhub.tasks import LOWER_IS_BETTER

__all__ = ["EvalConfig", "EvalOutcome", "evaluate", "parent_comparison", "stored_report", "Evaluations",
           "EvaluationInfo", "flat_metrics", "SCHEMA_ID", "SECTIONS", "LOWER_IS_BETTER", "report_folder", "schema"]


def schema() -> dict:
    """The report card's JSON Schema (draft 2020-12)."""
    import json
    from pathlib import Path

    return json.loads((Path(__file__).with_name("report.schema.json")).read_text(encoding="utf-8"))
