"""Training runs over both databases: start, log, finish, read back; id prefixes; what is skipped or refused."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from fmhub.errors import AmbiguousRunError, InvalidInputError, RunNotFoundError
from fmhub.runs import Runs, environment
from fmhub.runs import _tables as t
from fmhub.store import Database

BASE = "a" * 40
DATA = "b" * 40


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A migrated, empty metadata database on each backend."""
    database = Database(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def runs(db: Database) -> Runs:
    return Runs(db)


def _start(runs: Runs, **overrides):
    args = dict(task="text-classification", config={"lr": 5e-5, "optim": {"wd": 0.01}, "out": None},
                command="fmhub train acme/minilm acme/bbc", base_model="acme/minilm", base_commit=BASE,
                dataset="acme/bbc", dataset_commit=DATA, output="acme/minilm-bbc")
    return runs.start(**{**args, **overrides})


def test_start_log_finish_round_trip(runs: Runs) -> None:
    before = datetime.now(UTC)
    run = _start(runs, created_by="alice")
    assert run.id.startswith("r-") and len(run.id) == 14 and run.status == "running"
    assert run.name.startswith("text-classification-") and run.created_by == "alice"
    assert run.config == {"lr": 5e-5, "optim": {"wd": 0.01}, "out": None}
    assert (run.base_model, run.base_commit, run.dataset, run.dataset_commit) == ("acme/minilm", BASE, "acme/bbc", DATA)
    assert (run.output, run.output_commit, run.ended_at, run.summary) == ("acme/minilm-bbc", None, None, None)
    assert run.started_at.tzinfo is not None and run.started_at >= before.replace(microsecond=0)

    assert runs.log(run.id, 10, {"loss": 0.9, "learning_rate": 1e-5}, epoch=0.5) == 2
    runs.log(run.id, 20, {"loss": 0.5}, epoch=1.0)
    runs.log(run.id, 20, {"eval_loss": 0.6, "eval_accuracy": 0.8}, epoch=1.0)
    runs.log(run.id, 5, {"loss": 1.2})  # out of order: read back by step

    done = runs.finish(run.id, "completed", summary={"eval_accuracy": 0.8, "eval_loss": 0.6}, output_commit="c" * 40)
    assert done.status == "completed" and done.output_commit == "c" * 40 and done.ended_at >= done.started_at
    assert done.summary == {"eval_accuracy": 0.8, "eval_loss": 0.6}
    assert runs.get(run.id) == done

    losses = runs.metrics(run.id, key="loss")
    assert [(p.step, p.epoch, p.value) for p in losses] == [(5, None, 1.2), (10, 0.5, 0.9), (20, 1.0, 0.5)]
    assert all(p.at.tzinfo is not None for p in losses)
    assert [p.step for p in runs.metrics(run.id)] == [5, 10, 10, 20, 20, 20]
    assert runs.latest_metrics(run.id) == {"loss": 0.5, "learning_rate": 1e-5, "eval_loss": 0.6, "eval_accuracy": 0.8}

    with pytest.raises(InvalidInputError, match="already ended"):
        runs.finish(run.id, "failed")
    with pytest.raises(InvalidInputError, match="invalid run status"):
        runs.finish(_start(runs).id, "running")


def test_list_is_newest_first_and_filters(runs: Runs) -> None:
    first = _start(runs, name="first")
    second = _start(runs, name="second", task="token-classification")
    third = _start(runs, name="third")
    runs.finish(first.id, "failed")
    assert [r.name for r in runs.list()] == ["third", "second", "first"]
    assert [r.name for r in runs.list(limit=2)] == ["third", "second"]
    assert [r.id for r in runs.list(status="failed")] == [first.id]
    assert [r.id for r in runs.list(task="token-classification")] == [second.id]
    assert [r.id for r in runs.list(status="running", task="text-classification")] == [third.id]
    with pytest.raises(InvalidInputError):
        runs.list(status="done")


def test_ids_may_be_given_as_unique_prefixes(runs: Runs, db: Database) -> None:
    run = _start(runs)
    other = _start(runs)
    for given in (run.id, run.id[2:], run.id[:6], run.id[2:6], run.id.upper()):
        assert runs.get(given).id == run.id
    assert runs.metrics(run.id[:7]) == [] and runs.latest_metrics(run.id[:7]) == {}

    # two runs sharing a prefix: it is ambiguous, a longer one is not
    twin = other.id[:6] + ("0" * 8 if other.id[6:] != "0" * 8 else "1" * 8)
    with db.write() as conn:
        row = conn.execute(select(t.runs).where(t.runs.c.id == other.id)).one()._asdict()
        conn.execute(insert(t.runs).values({**row, "id": twin}))
    with pytest.raises(AmbiguousRunError) as error:
        runs.get(other.id[:6])
    assert sorted(error.value.matches) == sorted([other.id, twin]) and "fmhub runs list" in error.value.hint
    assert isinstance(error.value, RunNotFoundError)
    assert runs.get(twin).id == twin

    for unknown in ("r-ffffffffffff", "zzzz", "r-", "r-12345678901234", "r-1a2b%"):
        with pytest.raises(RunNotFoundError) as missing:
            runs.get(unknown)
        assert isinstance(missing.value, LookupError) and "fmhub runs list" in missing.value.hint
    with pytest.raises(InvalidInputError, match="too short"):
        runs.get(run.id[:5])  # "r-" and 3 digits
    with pytest.raises(RunNotFoundError):
        runs.log("r-ffffffffffff", 1, {"loss": 1.0})


def test_non_finite_values_are_skipped(runs: Runs) -> None:
    run = _start(runs)
    stored = runs.log(run.id, 1, {"loss": float("nan"), "grad_norm": float("inf"), "lr": -float("inf"), "acc": 1})
    assert stored == 1
    assert runs.log(run.id, 2, {"loss": math.nan}, epoch=math.nan) == 0
    assert [(p.key, p.value) for p in runs.metrics(run.id)] == [("acc", 1.0)]
    done = runs.finish(run.id, "failed", summary={"loss": float("nan"), "acc": 1.0})
    assert done.summary == {"loss": None, "acc": 1.0}  # JSON has no NaN: null


def test_bad_metric_input_is_refused(runs: Runs) -> None:
    run = _start(runs)
    for step, metrics in ((-1, {"loss": 1.0}), (1.5, {"loss": 1.0}), (True, {"loss": 1.0}), (1, {"": 1.0}),
                          (1, {"loss": "high"}), (1, {"loss": None})):
        with pytest.raises(InvalidInputError):
            runs.log(run.id, step, metrics)
    assert runs.metrics(run.id) == []  # nothing half-written


def test_environment_describes_code_libraries_and_machine() -> None:
    from fmhub import __version__

    env = environment()
    assert env.code_version == __version__
    assert {"python", "numpy", "torch", "transformers", "datasets", "tokenizers"} <= set(env.libraries)
    assert {"cpu", "cores", "ram_gib", "gpus"} <= set(env.hardware)
    assert env.hardware["cores"] >= 1 and env.hardware["ram_gib"] > 0 and isinstance(env.hardware["gpus"], list)


def test_environment_never_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import fmhub.runs._runs as module

    def broken(*_args):
        raise OSError("no /proc here")

    monkeypatch.setattr(module, "_cpu_model", broken)
    monkeypatch.setattr(module, "_LIBRARIES", ("torch", "no-such-library-fmhub"))
    env = environment()
    assert "cpu" not in env.hardware and "cores" in env.hardware
    assert set(env.libraries) == {"python", "torch"}


def test_runs_record_the_environment(runs: Runs) -> None:
    run = _start(runs)
    env = environment()
    assert (run.code_version, run.libraries, run.hardware) == (env.code_version, env.libraries, env.hardware)
