"""fmhub train end to end on a tiny BERT: publishes a loadable model; resume reaches the same weights."""

from __future__ import annotations

import json

import pytest
import torch

from fmhub.cards import parse_card
from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.train import TrainConfig, train


def config(tiny_model: str, tiny_data: str, output: str, **overrides) -> TrainConfig:
    options = dict(task="text-classification", model=tiny_model, data=tiny_data, output=output, epochs=3,
                   batch_size=8, learning_rate=3e-3, max_length=32, threads=1, save_steps=4, seed=0)
    return TrainConfig.from_flat({**options, **overrides})


def weights(repo: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    with Hub.open() as hub:
        folder = hub.download(repo)
    return load_file(str(folder / "model.safetensors"))


def test_train_publishes_a_model_transformers_loads(tiny_model: str, tiny_data: str) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    seen: list[tuple[int, dict]] = []
    outcome = train(config(tiny_model, tiny_data, "acme/topics-bert"), on_metrics=lambda s, e, m: seen.append((s, m)))
    assert outcome is not None and outcome.result.steps == 3 * 11  # ceil(84 / 8) = 11 steps per epoch
    assert outcome.result.metrics["eval_accuracy"] >= 0.9  # two separable topics
    assert any("loss" in m for _, m in seen) and any("eval_accuracy" in m for _, m in seen)
    with Hub.open() as hub:
        folder = hub.download("acme/topics-bert", revision=outcome.commit)
        card = parse_card((folder / "README.md").read_text())
        data_commit = hub.repo_info("acme/topics", repo_type="dataset").commit.oid
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "training_args.json", "README.md"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert model.config.id2label == {0: "sport", 1: "tech"}
    assert model.config.attention_probs_dropout_prob == 0.0  # --attention-dropout 0 (default): the fused kernel
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.inference_mode():
        logits = model(**tokenizer(["goal match team", "chip cloud robot"], return_tensors="pt", padding=True)).logits
    assert logits.argmax(-1).tolist() == [0, 1]
    meta = card.metadata
    assert meta["base_model"] == "acme/tiny-bert" and meta["datasets"] == ["acme/topics"]
    assert meta["pipeline_tag"] == "text-classification"
    assert meta["fmhub"]["lineage"]["dataset_commit"] == data_commit
    accuracy = meta["model-index"][0]["results"][0]["metrics"][0]
    assert accuracy["type"] == "accuracy" and accuracy["value"] == pytest.approx(outcome.result.metrics["eval_accuracy"])
    options = card.body.split("## Training")[1].split("## Lineage")[0]
    assert "| learning_rate | `0.003` |" in options and "| save_steps | `4` |" in options
    for unused in ("hidden_size", "layers", "vocab_size", "mlm_probability", "temperature", "random_crop", "private",
                   "max_steps"):  # from-scratch shape, other tasks' and unset options did not apply
        assert f"| {unused} |" not in options
    args = json.loads((folder / "training_args.json").read_text())
    assert args["learning_rate"] == 3e-3 and args["dataset_commit"] == data_commit
    assert args["run_id"] == outcome.run_id == meta["fmhub"]["lineage"]["run_id"]

    # The run is a record in the store: config, lineage, environment, metrics per step; and TensorBoard files.
    from fmhub.constants import settings
    from fmhub.runs import Runs
    from fmhub.store import open_store

    with open_store() as store:
        runs = Runs(store.db)
        record = runs.get(outcome.run_id)
        losses = runs.metrics(outcome.run_id, "loss")
        accuracy = runs.metrics(outcome.run_id, "eval_accuracy")
    assert record.status == "completed" and record.output_commit == outcome.commit
    assert (record.base_commit, record.dataset_commit) == (meta["fmhub"]["lineage"]["base_model_commit"], data_commit)
    assert record.config["learning_rate"] == 3e-3 and "torch" in record.libraries
    assert [p.step for p in losses] == list(range(1, 34)) and len(accuracy) == 3  # one evaluation per epoch
    assert record.summary["eval_accuracy"] == outcome.result.metrics["eval_accuracy"]
    assert any((settings().home / "runs" / outcome.run_id / "tensorboard").iterdir())


def test_resume_after_a_kill_reaches_the_same_weights(tiny_model: str, tiny_data: str) -> None:
    whole = train(config(tiny_model, tiny_data, "acme/whole"))
    from fmhub.train._checkpoint import latest_checkpoint
    from fmhub.train._loop import checkpoint_dir

    assert train(config(tiny_model, tiny_data, "acme/resumed"), stop_after=10) is None  # "killed" after step 10
    kept = checkpoint_dir(config(tiny_model, tiny_data, "acme/resumed"))
    assert latest_checkpoint(kept).name == "step-00000008"  # save_steps=4: the last one before the kill
    from fmhub.runs import Runs
    from fmhub.store import open_store

    with open_store() as store:
        (killed,) = [r for r in Runs(store.db).list() if r.output == "acme/resumed"]
    resumed = train(config(tiny_model, tiny_data, "acme/resumed"), resume=True)  # continues from step 8
    assert resumed.run_id == killed.id  # the same run record continues
    with open_store() as store:
        assert [p.step for p in Runs(store.db).metrics(killed.id, "loss")] == list(range(1, whole.result.steps + 1))
    assert not kept.exists()  # published: the checkpoints are gone
    assert resumed is not None and resumed.result.steps == whole.result.steps
    a, b = weights("acme/whole"), weights("acme/resumed")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_bad_input_fails_before_training(tiny_model: str, tiny_data: str) -> None:
    with pytest.raises(InvalidInputError, match="unknown --task"):
        config(tiny_model, tiny_data, "acme/x", task="translation").validate()
    with pytest.raises(InvalidInputError, match="no column 'body'"):
        train(config(tiny_model, tiny_data, "acme/x", text_column="body"))
    with pytest.raises(InvalidInputError, match="beyond the model's 64 positions"):
        train(config(tiny_model, tiny_data, "acme/x", max_length=512))
    with pytest.raises(InvalidInputError, match="no 'dev' split"):
        train(config(tiny_model, tiny_data, "acme/x", eval_split="dev"))
    with pytest.raises(InvalidInputError, match="attention-dropout 1.5 must be in"):
        config(tiny_model, tiny_data, "acme/x", attention_dropout=1.5).validate()
    with pytest.raises(InvalidInputError, match="early stopping needs an evaluation split"):
        config(tiny_model, tiny_data, "acme/x", eval_split=None, early_stopping_patience=2).validate()
    with Hub.open() as hub:
        assert not any(r.repo_id == "acme/x" for r in hub.list_repos())  # nothing was published


def test_a_classifier_with_other_labels_needs_ignore_mismatched_sizes(tiny_model: str, tiny_data: str,
                                                                       tmp_path) -> None:
    from fmhub.data._import import import_dataset

    assert train(config(tiny_model, tiny_data, "acme/topics-clf", epochs=1, attention_dropout=None)) is not None
    (tmp_path / "moods.csv").write_text("text,label\n" + "".join(f"goal match {i},{'happy' if i % 2 else 'sad'}\n"
                                                                for i in range(40)))
    (tmp_path / "empty.csv").write_text("text,label,split\ngoal,a,train\nchip,b,train\n")
    with Hub.open() as hub:
        import_dataset(hub, tmp_path / "moods.csv", "acme/moods")
        import_dataset(hub, tmp_path / "empty.csv", "acme/train-only")
    with pytest.raises(InvalidInputError, match=r"labels \['sport', 'tech'\], the dataset \['happy', 'sad'\]") as e:
        train(config("acme/topics-clf", "acme/moods", "acme/moods-clf"))
    assert "--ignore-mismatched-sizes" in e.value.hint
    outcome = train(config("acme/topics-clf", "acme/moods", "acme/moods-clf", epochs=1, ignore_mismatched_sizes=True))
    assert outcome is not None
    from transformers import AutoConfig

    with Hub.open() as hub:
        folder = hub.download("acme/moods-clf")
        kept = AutoConfig.from_pretrained(hub.download("acme/topics-clf"))
    assert AutoConfig.from_pretrained(folder).id2label == {0: "happy", 1: "sad"}
    assert kept.attention_probs_dropout_prob == 0.1  # attention_dropout=None keeps the base model's value
    with pytest.raises(InvalidInputError, match="no 'validation' split"):
        train(config(tiny_model, "acme/train-only", "acme/x", early_stopping_patience=2))


def test_max_steps_inside_an_epoch_still_reports_the_final_weights(tiny_model: str, tiny_data: str) -> None:
    outcome = train(config(tiny_model, tiny_data, "acme/short", max_steps=5))
    assert outcome is not None and outcome.result.steps == 5
    assert [h["step"] for h in outcome.result.history] == [5]  # evaluated once, at the last step


def test_load_best_at_end_publishes_the_best_evaluation(tiny_model: str, tiny_data: str) -> None:
    from transformers import AutoModelForSequenceClassification

    outcome = train(config(tiny_model, tiny_data, "acme/best", epochs=5, learning_rate=0.02, eval_steps=3,
                           load_best_at_end=True))
    assert outcome is not None
    history = [h for h in outcome.result.history if "eval_accuracy" in h]
    best = max(history, key=lambda h: h["eval_accuracy"])  # the first of the best, as the engine keeps it
    assert outcome.result.best_step == best["step"] == outcome.result.weights_step
    assert outcome.result.metrics["eval_accuracy"] == best["eval_accuracy"]
    with Hub.open() as hub:
        folder = hub.download("acme/best", revision=outcome.commit)
    published = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    prepared = outcome.prepared
    metrics = prepared.task.validate(published, prepared.eval, 8, prepared.tokenizer.pad_token_id,
                                     prepared.label_names)
    assert metrics["accuracy"] == pytest.approx(best["eval_accuracy"])  # the published weights are the best's
    with pytest.raises(InvalidInputError, match="--load-best-at-end needs an evaluation split"):
        config(tiny_model, tiny_data, "acme/x", load_best_at_end=True, eval_split=None).validate()


def test_ctrl_c_checkpoints_and_resume_continues_the_same_run(tiny_model: str, tiny_data: str) -> None:
    import signal

    from fmhub.constants import settings
    from fmhub.runs import Runs
    from fmhub.store import open_store
    from fmhub.train import TrainingInterrupted, resume_point

    def ctrl_c_at(step: int):
        def on_step(done: int, total: int, loss: float, rate: float) -> None:
            if done == step:
                signal.raise_signal(signal.SIGINT)  # what the terminal sends on Ctrl-C
        return on_step

    told: list[int] = []
    cfg = config(tiny_model, tiny_data, "acme/interrupted", save_steps=None)  # no periodic checkpoints at all
    with pytest.raises(TrainingInterrupted) as stopped:
        train(cfg, on_step=ctrl_c_at(5), on_interrupt=told.append)
    assert told == [5] and stopped.value.step == 5  # stopped at the boundary of the step Ctrl-C arrived in
    assert stopped.value.checkpoint.name == "step-00000005" and stopped.value.checkpoint.is_dir()
    point = resume_point(cfg)
    assert (point.step, point.run_id) == (5, stopped.value.run_id)
    with open_store() as store:
        assert Runs(store.db).get(stopped.value.run_id).status == "stopped"

    resumed = train(cfg, resume=True)
    assert resumed is not None and resumed.run_id == stopped.value.run_id  # the same run record continues
    with open_store() as store:
        runs = Runs(store.db)
        record = runs.get(resumed.run_id)
        losses = runs.metrics(resumed.run_id, "loss")
        assert [r.id for r in runs.list() if r.output == "acme/interrupted"] == [resumed.run_id]
    assert record.status == "completed" and record.output_commit == resumed.commit
    assert [p.step for p in losses] == list(range(1, 34))  # one curve, no step twice
    board = settings().home / "runs" / resumed.run_id / "tensorboard"
    assert len(list(board.glob("events.out.tfevents.*"))) == 2  # both sessions write to the one TensorBoard run
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curve = EventAccumulator(str(board)).Reload().Scalars("loss")
    assert [e.step for e in curve] == list(range(1, 34))


def test_a_second_ctrl_c_stops_at_once(tiny_model: str, tiny_data: str) -> None:
    import signal

    from fmhub.runs import Runs
    from fmhub.store import open_store
    from fmhub.train import TrainingInterrupted

    def twice(done: int, total: int, loss: float, rate: float) -> None:
        if done == 2:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # Python's default, or what the test process runs with
    with pytest.raises(KeyboardInterrupt) as stopped:
        train(config(tiny_model, tiny_data, "acme/killed", save_steps=None), on_step=twice)
    assert not isinstance(stopped.value, TrainingInterrupted)
    with open_store() as store:
        assert [r.status for r in Runs(store.db).list()] == ["stopped"]
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


def test_only_the_options_that_took_effect_are_applied() -> None:
    fine_tune = TrainConfig.from_flat(dict(task="text-classification", model="acme/m", data="acme/d", output="acme/o",
                                           eval_split="none"))
    applied = fine_tune.applied()
    assert "learning_rate" in applied and "hidden_size" not in applied and "eval_steps" not in applied
    assert "multi_label" in applied and "teacher" not in applied and "load_best_at_end" not in applied
    scratch = TrainConfig.from_flat(dict(task="masked-lm", architecture="bert", data="acme/d", output="acme/o",
                                         hidden_size=64))
    applied = scratch.applied()
    assert (applied["hidden_size"], applied["layers"], applied["vocab_size"]) == (64, 2, 8000)
    assert "mlm_probability" in applied and "image_size" not in applied and "ignore_mismatched_sizes" not in applied
    assert set(fine_tune.to_dict()) > set(fine_tune.applied())  # training_args.json keeps every option


@pytest.mark.parametrize("schedule", ["linear", "cosine", "constant"])
def test_the_learning_rate_follows_transformers_schedulers(tiny_model: str, tiny_data: str, schedule: str) -> None:
    from transformers import get_scheduler

    seen: dict[int, float] = {}
    cfg = config(tiny_model, tiny_data, f"acme/lr-{schedule}", epochs=1, warmup_ratio=0.3, schedule=schedule,
                 eval_split="none", save_steps=None)
    train(cfg, on_metrics=lambda step, epoch, m: seen.update({step: m["learning_rate"]}) if "learning_rate" in m
          else None)
    total = len(seen)
    reference = get_scheduler({"constant": "constant_with_warmup"}.get(schedule, schedule),
                              torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=3e-3),
                              num_warmup_steps=int(0.3 * total), num_training_steps=total)
    expected = []
    for _ in range(total):  # the rate of each optimizer step, as the transformers Trainer applies it
        expected.append(reference.get_last_lr()[0])
        reference.optimizer.step()
        reference.step()
    assert [seen[step] for step in sorted(seen)] == pytest.approx(expected, rel=1e-12, abs=0)
