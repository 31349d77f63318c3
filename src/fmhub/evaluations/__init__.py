"""The evaluations index: pushed report cards, listed by model, dataset and split with their headline metrics.

A card (``eval/<dataset>/<split>/report.json`` in a model repo, written by :func:`fmhub.evaluate.evaluate`)
is indexed from the bytes the hub holds at the card's commit, never from what a client says it contains.
Stages reach the index through the Hub client (``hub.record_evaluation`` / ``hub.list_evaluations``), so it
works the same on the embedded store and on a hub server; ``fmhub.evaluate`` re-exports these names.

Example:
    >>> from fmhub.evaluations import Evaluations
    >>> [info.metrics["accuracy"] for info in Evaluations(store.db).list(model="acme/clf")]
"""

from fmhub.evaluations._compare import MetricChange, metric_changes
from fmhub.evaluations._index import (EvaluationInfo, Evaluations, check_report_path, flat_metrics, same_weights,
                                      stored_report)

__all__ = ["Evaluations", "EvaluationInfo", "flat_metrics", "stored_report", "check_report_path", "same_weights",
           "MetricChange", "metric_changes"]
