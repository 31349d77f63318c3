"""The report card's explanations section on tiny models: schema, the Parquet file, faithfulness against the
random baseline, completeness, the global view, and an int8 variant's agreement with its parent."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from fmhub.client import Hub
from fmhub.evaluate import EvalConfig, evaluate, schema
from fmhub.explain import ExplainOptions

KEYWORD = "robot"
_QUICK = ("robustness", "slices", "efficiency", "baseline")


def _validate(report: dict) -> None:
    import jsonschema

    jsonschema.Draft202012Validator(schema()).validate(report)


def test_section_measures_faithfulness_and_keeps_attributions(keyword_model: str, keyword_data: str,
                                                              tmp_path) -> None:
    outcome = evaluate(EvalConfig(model=keyword_model, data=keyword_data, split="test", skip=_QUICK,
                                  explain=ExplainOptions(explain_rows=12)), output_dir=tmp_path)
    report = outcome.report
    _validate(report)
    section = report["explanations"]
    assert section["kind"] == "tokens" and section["method"] == "integrated-gradients"
    table = pq.read_table(tmp_path / section["file"]).to_pylist()
    wrong = int((np.asarray(pq.read_table(tmp_path / report["files"]["predictions"])["label"])
                 != np.asarray(pq.read_table(tmp_path / report["files"]["predictions"])["prediction"])).sum())
    assert section["rows"]["total"] == 12 == section["rows"]["sampled"] + section["rows"]["misclassified"]
    assert section["rows"]["misclassified"] == min(wrong, 6)  # misclassified rows first, up to half
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
    # completeness: the steps are raised per row until it holds (up to the limit), each row's steps and error kept
    check = section["completeness"]
    assert check["rows"] == len(ig) and check["holds"] == sum(r["completeness_holds"] for r in ig) == len(ig)
    assert check["max_error"] == max(r["completeness_error"] for r in ig) and not check["steps_fixed"]
    assert check["not_holding"] == [] and check["start_steps"] == 4 and check["step_limit"] == 64
    by_row = {r["row"]: r for r in ig}
    assert sorted(p["row"] for p in check["per_row"]) == sorted(by_row)
    for entry in check["per_row"]:
        assert entry["holds"] and 4 <= entry["steps"] == by_row[entry["row"]]["steps"] <= 64
        assert entry["error"] == by_row[entry["row"]]["completeness_error"] and (entry["relative_error"] <= 0.05 or entry["error"] <= 1e-3)
    # the global view: the planted word leads the "yes" class
    [yes] = [g for g in section["global"] if g["label"] == "yes"]
    assert yes["top_units"][0]["unit"] == KEYWORD


def test_an_int8_variant_reports_how_far_it_keeps_its_parents_reasons(keyword_model: str,
                                                                      keyword_data: str) -> None:
    from fmhub.optimize import quantize

    outcome = quantize(keyword_model, "acme/keyword-int8", backend="torch", data=keyword_data,
                       eval_data=keyword_data, eval_skip=_QUICK, explain=ExplainOptions(explain_rows=24))
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
    assert parent["method"] == "occlusion" and parent["rows"] == section["rows"]["total"] == 24  # the whole split
    # the planted word stays first; the near-zero tail of the other words is where int8 reorders
    assert parent["top_unit_agreement"] >= 0.9 and parent["spearman_mean"] > 0.5 and 0 < parent["keeps_reasons"] <= 1
    assert parent["summary"].startswith("torch-int8 keeps the parent's reasons on ")


def test_the_default_section_bounds_its_work(keyword_model: str, keyword_data: str, tmp_path) -> None:
    """With the defaults, a split of any size costs at most SECTION_ROWS rows, each an IG path of at most
    SECTION_MAX_STEPS points (its ends are f(x) and f(baseline)), one attention pass and one batch of removals per
    method; with the limit at the start (fixed steps), rows where completeness fails are listed, not hidden."""
    import fmhub
    from fmhub.data import load
    from fmhub.explain import SECTION_MAX_STEPS, SECTION_ROWS, SECTION_STEPS, SectionArgs, explanations_section
    from fmhub.explain._faithfulness import BINS, DELETION_STEPS

    loaded = fmhub.load(keyword_model)
    test = load(keyword_data, split="test")
    texts = list(test["text"]) * 4  # a split well beyond the default rows
    gold = np.asarray(loaded.task.gold(test, "label", loaded.labels).tolist() * 4)
    predicted = gold.copy()
    predicted[:30] = 1 - predicted[:30]  # more misclassified rows than half the default
    probabilities = np.full((len(gold), 2), 0.1, dtype=np.float32)
    probabilities[np.arange(len(gold)), predicted] = 0.9
    forwarded: list[int] = []

    def count(module, args, kwargs) -> None:
        given = kwargs.get("input_ids")
        given = kwargs.get("inputs_embeds") if given is None else given
        forwarded.append(len(given if given is not None else args[0]))

    hook = loaded.model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        section = explanations_section(loaded, texts, gold, predicted, probabilities, max_length=32, folder=tmp_path,
                                       relative="eval", args=SectionArgs())
    finally:
        hook.remove()
    assert section["rows"] == {"sampled": SECTION_ROWS // 2, "misclassified": SECTION_ROWS // 2,
                               "total": SECTION_ROWS}
    table = pq.read_table(tmp_path / "explanations.parquet").to_pylist()
    steps = [r["steps"] for r in table if r["method"] == "integrated-gradients"]
    assert len(steps) == SECTION_ROWS and all(SECTION_STEPS <= s <= SECTION_MAX_STEPS for s in steps)
    assert sum(r["misclassified"] for r in table if r["method"] == "random") == SECTION_ROWS // 2
    # per row: IG's points (no other pass: the ends give f(x) and f(baseline)), one attention pass, and each
    # method's removals (one batch each)
    assert sum(forwarded) == sum(steps) + SECTION_ROWS * (1 + 3 * (2 * len(BINS) + DELETION_STEPS + 1))

    # two fixed points (the trapezoid of the ends alone) cannot hold: each row is reported as not holding
    section = explanations_section(loaded, texts, gold, predicted, probabilities, max_length=32, folder=tmp_path,
                                   relative="eval", args=SectionArgs(rows=4, steps=2, max_steps=2))
    check = section["completeness"]
    assert check["steps_fixed"] and check["max_steps"] == 2 and check["holds"] < 4
    assert check["not_holding"] == [p["row"] for p in check["per_row"] if not p["holds"]] != []


def test_explain_rows_zero_leaves_the_section_out_and_pipelines_take_the_options(keyword_model: str,
                                                                                  keyword_data: str,
                                                                                  tmp_path) -> None:
    from fmhub.pipeline import parse

    outcome = evaluate(EvalConfig(model=keyword_model, data=keyword_data, split="test", skip=_QUICK,
                                  explain=ExplainOptions(explain_rows=0)), output_dir=tmp_path)
    assert outcome.report["explanations"] == {"skipped": "--explain-rows 0"}
    assert outcome.report["provenance"]["options"]["explain_rows"] == 0
    path = tmp_path / "pipeline.yaml"
    path.write_text("name: p\nsteps:\n"
                    f"  card: {{kind: eval, model: {keyword_model}, data: {keyword_data}, explain_rows: 4, "
                    "explain_steps: 4, explain_max_steps: 32}\n"
                    f"  int8: {{kind: optimize, method: quantize, model: {keyword_model}, output: acme/k8, "
                    "explain_rows: 0}\n")
    steps = {s.name: s.options for s in parse(path).steps}
    assert steps["card"]["explain_rows"] == 4 and steps["int8"]["explain_rows"] == 0
    assert steps["card"]["explain_max_steps"] == 32
