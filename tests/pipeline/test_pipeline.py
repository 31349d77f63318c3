"""fmhub run: the tiny example end to end and cached the second time; every problem listed before running;
a failed gate stops the run and the next run resumes there; --from / --only."""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path

import pytest

from fmhub.client import Hub
from fmhub.pipeline import GateError, PipelineError, check_requirements, parse, run_pipeline

EXAMPLE = Path(__file__).parents[2] / "examples" / "tiny"


def test_the_tiny_example_runs_then_is_cached(capsys) -> None:
    from fmhub.cli import main

    assert main(["run", str(EXAMPLE / "pipeline.yaml")]) == 0
    out = capsys.readouterr().out
    assert "pipeline tiny" in out and "lineage:" in out
    with Hub.open() as hub:
        first = run_pipeline(parse(EXAMPLE / "pipeline.yaml"), hub)
        assert [o.status for o in first] == ["cached"] * 7  # the CLI run recorded every step
        outputs = {o.name: o.output for o in first}
        prod = hub.repo_info("tiny/topics-bert-int8", revision="prod").commit.oid
        assert outputs["prod"] == f"tiny/topics-bert-int8@{prod}" == outputs["int8"]
        [card] = [c for c in hub.list_evaluations(model="tiny/topics-bert-int8") if c.card_commit == prod]
        assert card.metrics["accuracy"] >= 0.8
        assert {o.name: o.metrics for o in first}["check"]["agreement"] == 1.0
        started = time.perf_counter()
        again = run_pipeline(parse(EXAMPLE / "pipeline.yaml"), hub)
        assert [o.status for o in again] == ["cached"] * 7 and time.perf_counter() - started < 10
    assert {o.name: o.output for o in again} == outputs


def _write(tmp_path: Path, body: str) -> Path:
    shutil.copy(EXAMPLE / "topics.csv", tmp_path / "topics.csv")
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(body))
    return path


_SMALL = """\
    name: small
    steps:
      data: {kind: import-data, source: topics.csv, repo: t/topics, split: "train=0.7,validation=0.15,test=0.15"}
      model:
        kind: train
        task: masked-lm
        architecture: bert
        hidden_size: 16
        layers: 1
        heads: 2
        vocab_size: 100
        data: ${data.output}
        output: t/bert
        max_steps: 2
        max_length: 32
        eval_split: none
      classifier:
        kind: train
        task: text-classification
        model: ${model.output}
        data: ${data.output}
        output: t/clf
        epochs: 2
        learning_rate: 0.003
        max_length: 32
        eval_split: none
      card: {kind: eval, model: "${classifier.output}", data: "${data.output}", skip: [robustness, baseline]}
      prod: {kind: publish, model: "${card.output}", ref: prod, require: {accuracy: "REQUIRE"}}
    """


def test_a_failed_gate_stops_the_run_and_the_next_run_resumes_there(tmp_path: Path) -> None:
    path = _write(tmp_path, _SMALL.replace("REQUIRE", ">= 1.01"))
    with Hub.open() as hub:
        with pytest.raises(GateError, match="accuracy .* is not >= 1.01") as refused:
            run_pipeline(parse(path), hub)
        assert [o.status for o in refused.value.outcomes] == ["ran"] * 4 + ["failed"]
        with pytest.raises(Exception):
            hub.repo_info("t/clf", revision="prod")  # nothing was published
        path.write_text(path.read_text().replace(">= 1.01", ">= 0"))
        resumed = run_pipeline(parse(path), hub)
        assert [o.status for o in resumed] == ["cached"] * 4 + ["ran"]
        assert hub.repo_info("t/clf", revision="prod").commit.oid == resumed[-1].output.split("@")[1]
        only = run_pipeline(parse(path), hub, only="card")
        assert [o.status for o in only] == ["cached", "cached", "cached", "ran", "not run"]
        start = run_pipeline(parse(path), hub, start="classifier")
        assert [o.status for o in start] == ["cached", "cached", "ran", "ran", "ran"]
        with pytest.raises(Exception, match="--from 'nope': no such step"):
            run_pipeline(parse(path), hub, start="nope")
    changed = path.read_text().replace("epochs: 2", "epochs: 1")
    path.write_text(changed)
    with Hub.open() as hub:  # a changed option runs that step and the steps after it
        assert [o.status for o in run_pipeline(parse(path), hub)] == ["cached", "cached", "ran", "ran", "ran"]


def test_every_problem_is_listed_with_its_line_before_anything_runs(tmp_path: Path, capsys) -> None:
    from fmhub.cli import main

    path = _write(tmp_path, """\
        name: broken
        steps:
          data: {kind: import-data, source: topics.csv, repo: t/topics}
          model:
            kind: train
            task: text-classification
            data: ${data.output}
            output: t/x
            modle: t/typo
          card:
            kind: evaluate
          a: {kind: eval, model: "${b.output}", data: "${data.output}"}
          b: {kind: eval, model: "${a.output}", data: "${missing.output}"}
          q: {kind: optimize, method: shrink, model: "${data.output}", output: t/q}
        color: blue
        """)
    with pytest.raises(PipelineError) as error:
        parse(path)
    problems = "\n".join(error.value.problems)
    for needle in ("line 9, step 'model': unknown train option 'modle'",
                   "line 10, step 'card': unknown kind 'evaluate'",
                   "line 13, step 'b': data names ${missing.output}, but there is no step 'missing'",
                   "need each other (a cycle)", "method 'shrink' is not one of",
                   "line 15: unknown top-level key 'color'"):
        assert needle in problems, (needle, problems)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "6 problems" in err and "nothing ran" in err
    with Hub.open() as hub:
        assert hub.list_repos() == []  # nothing ran


def test_requirements() -> None:
    metrics = {"accuracy": 0.96, "latency_p95_ms": 40.0}
    assert check_requirements(metrics, {"accuracy": ">= 0.95", "latency_p95_ms": "<= 50"}) == []
    assert check_requirements(metrics, {"accuracy": "> 0.97", "f1": ">= 0"}) == [
        "accuracy 0.96 is not > 0.97", "f1 is not on the report card"]
    with pytest.raises(Exception, match="not a check like"):
        check_requirements(metrics, {"accuracy": "at least 0.9"})


def test_importing_the_same_model_folder_again_keeps_its_version(tiny_model: str, tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"steps:\n  base: {{kind: import-model, source: {tmp_path / 'tiny-bert'}, repo: t/bert}}\n")
    with Hub.open() as hub:
        [first] = run_pipeline(parse(path), hub)
        [again] = run_pipeline(parse(path), hub, force=True)  # the repo already holds these files
    assert first.status == again.status == "ran" and first.output == again.output


@pytest.mark.parametrize("example", ["tiny", "bbc-news"])
def test_the_example_pipelines_are_valid(example: str) -> None:
    pipeline = parse(EXAMPLE.parent / example / "pipeline.yaml")  # every option name checked, references resolved
    kinds = [step.kind for step in pipeline.steps]
    assert kinds[0] == "import-data" and kinds[-2:] == ["publish", "serve-check"]


def test_the_readme_pipeline_snippet_runs_as_copied(tmp_path: Path) -> None:
    readme = (EXAMPLE.parents[1] / "README.md").read_text()
    snippet = readme.split("### What the demo does")[1].split("```yaml\n")[1].split("```")[0]
    (tmp_path / "pipeline.yaml").write_text(snippet)  # what a user copying it gets
    copied = parse(tmp_path / "pipeline.yaml")
    example = parse(EXAMPLE.parent / "bbc-news" / "pipeline.yaml")
    assert copied.name == example.name
    assert [(s.name, s.kind, s.options) for s in copied.steps] == [(s.name, s.kind, s.options) for s in example.steps]


def test_optimize_auto_step_runs_then_is_cached(tmp_path: Path, classifier: str, tiny_data: str) -> None:
    path = _write(tmp_path, f"""\
        name: fast
        steps:
          fast:
            kind: optimize-auto
            model: {classifier}
            output: t/clf-fast
            max_drop: 100
            skip: [onnx, int8-per-tensor, static-int8, torch-int8, distill, prune-heads, prune-neurons]
            latency_rows: 2
            threads: 1
            eval_skip: [robustness, slices, baseline]
          serve: {{kind: serve-check, model: "${{fast.output}}", data: {tiny_data}, rows: 8}}
        """)
    with Hub.open() as hub:
        first = run_pipeline(parse(path), hub)
        assert [o.status for o in first] == ["ran", "ran"]
        assert "picked int8" in first[0].detail and first[0].metrics["accuracy"] >= 0.8
        assert first[0].output.startswith("t/clf-fast@") and first[1].metrics["agreement"] == 1.0
        assert [o.status for o in run_pipeline(parse(path), hub)] == ["cached", "cached"]


def test_a_train_step_takes_the_precision_and_compile_options(tiny_model: str, tmp_path: Path) -> None:
    from fmhub.runs import Runs
    from fmhub.store import open_store

    path = _write(tmp_path, f"""\
        name: fast
        steps:
          data: {{kind: import-data, source: topics.csv, repo: t/topics, split: "train=0.8,validation=0.2"}}
          model:
            kind: train
            task: text-classification
            model: {tiny_model}
            data: ${{data.output}}
            output: t/clf
            max_steps: 2
            max_length: 32
            eval_split: none
            precision: bf16
            compile: false
        """)
    with Hub.open() as hub:
        outcomes = run_pipeline(parse(path), hub)
    assert [o.status for o in outcomes] == ["ran", "ran"]
    with open_store() as store:
        (record,) = [r for r in Runs(store.db).list() if r.output == "t/clf"]
    assert record.config["precision"] == "bf16" and record.summary["precision"] == "bf16"
    assert record.summary["compiled"] is False
