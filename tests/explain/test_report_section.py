"""The report card's explanations section on tiny models: schema, the Parquet file, faithfulness against the
random baseline, completeness, the global view, and an int8 variant's agreement with its parent."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from fmhub.client import Hub
from fmhub.evaluate import EvalConfig, evaluate, schema

KEYWORD = "robot"
_QUICK = ("robustness", "slices", "efficiency", "baseline")


def _validate(report: dict) -> None:
    import jsonschema

    jsonschema.Draft202012Validator(schema()).validate(report)


def test_section_measures_faithfulness_and_keeps_attributions(keyword_model: str, keyword_data: str,
                                                              tmp_path) -> None:
    outcome = evaluate(EvalConfig(model=keyword_model, data=keyword_data, split="test", skip=_QUICK,
                                  explain_rows=12), output_dir=tmp_path)
    report = outcome.report
    _validate(report)
    section = report["explanations"]
    assert section["kind"] == "tokens" and section["method"] == "integrated-gradients"
    table = pq.read_table(tmp_path / section["file"]).to_pylist()
    wrong = int((np.asarray(pq.read_table(tmp_path / report["files"]["predictions"])["label"])
                 != np.asarray(pq.read_table(tmp_path / report["files"]["predictions"])["prediction"])).sum())
    assert section["rows"]["sampled"] == 12 and section["rows"]["total"] == 12 + section["rows"]["misclassified"]
    assert section["rows"]["misclassified"] <= wrong
    methods = {r["method"] for r in table}
    assert methods == {"integrated-gradients", "attention-rollout", "random"}
    assert len(table) == 3 * section["rows"]["total"]
    for record in table:
        assert len(record["units"]) == len(record["scores"]) == len(record["spans"])
    # faithfulness is measured, not assumed: IG removes more of the prediction than a random ranking
    faith = section["faithfulness"]
    assert faith["integrated-gradients"]["comprehensiveness"] > 2 * faith["random"]["comprehensiveness"]
    assert faith["integrated-gradients"]["deletion_auc"] < faith["random"]["deletion_auc"]
    assert section["comparison"]["comprehensiveness_vs_random"] > 2
    ig = [r for r in table if r["method"] == "integrated-gradients"]
    assert section["completeness"]["rows"] == len(ig) and section["completeness"]["holds"] == len(ig)
    assert all(r["completeness_holds"] and r["completeness_error"] <= 0.05 * 1 + 1e-3 for r in ig)
    # the global view: the planted word leads the "yes" class
    [yes] = [g for g in section["global"] if g["label"] == "yes"]
    assert yes["top_units"][0]["unit"] == KEYWORD


def test_an_int8_variant_reports_how_far_it_keeps_its_parents_reasons(keyword_model: str,
                                                                      keyword_data: str) -> None:
    from fmhub.optimize import quantize

    outcome = quantize(keyword_model, "acme/keyword-int8", backend="torch", data=keyword_data,
                       eval_data=keyword_data, eval_skip=_QUICK)
    section = outcome.report["explanations"]
    _validate(outcome.report)
    assert section["method"] == "occlusion"  # int8 Linear kernels have no gradients
    parent = section["parent"]
    with Hub.open() as hub:
        assert parent["commit"] == hub.repo_info(keyword_model).commit.oid
        files = {e.path for e in hub.repo_info("acme/keyword-int8").files}
        card = (hub.download("acme/keyword-int8") / "README.md").read_text()
    assert "**Explanations**" in card and "torch-int8 keeps the parent's reasons on" in card
    assert section["file"] in files
    assert parent["method"] == "occlusion" and parent["rows"] == section["rows"]["total"]
    # the planted word stays first; the near-zero tail of the other words is where int8 reorders
    assert parent["top_unit_agreement"] >= 0.9 and parent["spearman_mean"] > 0.5 and 0 < parent["keeps_reasons"] <= 1
    assert parent["summary"].startswith("torch-int8 keeps the parent's reasons on ")
