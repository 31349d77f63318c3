"""``fmhub optimize distill``: a smaller student trained on a teacher's soft targets.

The student starts as the teacher with only ``student_layers`` of its layers, evenly spaced (every
other one for 6 → 3, as DistilBERT started from BERT), and is trained by the training engine — so the
run is tracked (``fmhub runs``), checkpointed and resumable (``resume=True`` after a crash or kill) —
with the loss ``alpha · T² · KL(teacher ‖ student at temperature T) + (1 − alpha) · cross-entropy``,
plus an optional hidden-state MSE (``hidden_loss``). See :mod:`fmhub.train._distill`.

The student is committed with a card naming the teacher as its parent (``fmhub.lineage``) and the
recipe (``fmhub.variant``), then gets a report card against the teacher's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fmhub import tasks
from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.explain import ExplainOptions
from fmhub.optimize._variant import VariantOutcome, open_parent, report_against_parent
from fmhub.store.paths import validate_repo_id
from fmhub.train import TrainConfig, train
from fmhub.train._publish import distillation

__all__ = ["distill"]


def distill(teacher: str, output: str, *, data: str | None = None, student_layers: int = 3,
            temperature: float = 2.0, alpha: float = 0.5, hidden_loss: float = 0.0, epochs: float = 3.0,
            max_steps: int | None = None, learning_rate: float = 1e-4, batch_size: int = 16, max_length: int = 256,
            warmup_ratio: float = 0.0, eval_split: str | None = "validation", seed: int = 0,
            threads: int | None = None, precision: str = "auto", compile: bool = False, resume: bool = False,
            private: bool = False, hub: Hub | None = None,
            report: bool = True, eval_data: str | None = None, eval_test_split: str = "test",
            eval_skip: tuple[str, ...] = (), explain: ExplainOptions | None = None, progress: Any = None,
            command: str = "fmhub.optimize.distill()",
            on_step: Callable[[int, int, float, float], None] | None = None,
            on_metrics: Callable[[int, float, dict[str, float]], None] | None = None) -> VariantOutcome:
    """Distill ``teacher`` (REPO[@REV]) into a ``student_layers``-layer student committed to ``output``.

    ``data`` defaults to the dataset the teacher's card says it was trained on; ``eval_split`` is the
    split validated on during training (None: none), ``eval_test_split`` the split of the report cards;
    ``precision`` and ``compile`` are ``fmhub train``'s ``--precision`` and ``--compile`` (the teacher's forward
    pass runs in the same precision as the student's).
    """
    validate_repo_id(output)
    owned = hub is None
    hub = hub or Hub.open()
    try:
        parent = open_parent(hub, teacher)
        loaded = parent.loaded
        if not loaded.form.trainable:
            raise InvalidInputError(f"{parent.repo} is a {loaded.format} model; a teacher must be torch weights",
                                    hint="distill from the torch model this variant was made from")
        if not loaded.task.distillable:
            heads = " or ".join(t.name for t in tasks.all_tasks() if t.distillable)
            raise InvalidInputError(f"{parent.repo} is a {loaded.task.name} model; a teacher needs a single-label "
                                    f"classification head ({heads})",
                                    hint="fine-tune it first with fmhub train --task text-classification")
        ref = f"{parent.repo}@{parent.commit}"
        license_id = parent.metadata.get("license")
        config = TrainConfig.from_flat(dict(
            task=loaded.task.name, model=ref, teacher=ref, data=data or parent.training_data("--data"), output=output,
            student_layers=student_layers, temperature=temperature, alpha=alpha, hidden_loss=hidden_loss,
            epochs=epochs, max_steps=max_steps, learning_rate=learning_rate, batch_size=batch_size,
            max_length=max_length, warmup_ratio=warmup_ratio, eval_split=eval_split, seed=seed, threads=threads,
            precision=precision, compile=compile, private=private, license=license_id if isinstance(license_id, str) else None), source="distill")
        trained = train(config, hub, resume=resume, command=command, on_step=on_step, on_metrics=on_metrics)
        assert trained is not None and trained.commit is not None  # one process, never cut short
        variant = distillation(trained.prepared) or {}
        outcome = VariantOutcome(output, trained.commit, {**variant, "run_id": trained.run_id,
                                                          "parent": ref})
        if report:
            report_against_parent(hub, parent, outcome, data=eval_data, split=eval_test_split, skip=eval_skip,
                                  explain=explain, progress=progress)
        return outcome
    finally:
        if owned:
            hub.close()
