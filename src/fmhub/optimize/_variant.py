"""What every optimization shares: the parent version, real sample inputs, parity, publishing a variant, and
its report card against the parent's.

A variant is a new commit on its own repo whose card names its parent (repo + commit) as
``base_model`` and in ``fmhub.lineage``, declares its form in ``fmhub.variant`` (what
:func:`fmhub.load` reads) and records how it was made (method, options, parity on real inputs).

Its report card is computed on a dataset split (default: the test split of the dataset its parent was
trained on, at that commit) and pushed with a ``parent`` section; the parent's card on the same split is
reused when the hub has one for exactly that commit, else computed now (not pushed). Both cards read the
texts at the same length: the parent's.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmhub import formats
from fmhub.cards import fmhub_section, parse_card, render_card, validate_metadata
from fmhub.client import Hub, UploadFile
from fmhub.data import load as load_dataset
from fmhub.errors import EmptyCommitError, InvalidInputError, ParityError
from fmhub.evaluate import EvalConfig, evaluate, stored_report
from fmhub.explain import ExplainOptions
from fmhub.formats import LoadedModel, load_folder
from fmhub.refs import split_ref
from fmhub.store.paths import validate_repo_id

__all__ = ["Parent", "open_parent", "sample_batch", "check_parity", "publish_variant", "make_variant",
           "VariantOutcome", "parents_report", "report_against_parent"]

_SAMPLE_ROWS = 32


@dataclass
class Parent:
    repo: str
    commit: str
    loaded: LoadedModel
    metadata: dict[str, Any]  # the parent's card YAML
    hub: Hub  # the hub it came from (where a variant's own work, e.g. a fine-tune, reads data)

    @property
    def lineage(self) -> dict[str, Any]:
        return fmhub_section(self.metadata, "lineage")

    @property
    def chain(self) -> list[dict[str, Any]]:
        """Every model this one was made from, oldest first, itself last: ``[{repo, commit, method}]`` (a
        variant of a variant of a fine-tuned model keeps the whole way back to it)."""
        lineage = self.lineage
        before = lineage.get("chain") if isinstance(lineage.get("chain"), list) else None
        if before is None:  # a first variant, or a distilled student: its card names only its parent
            before = [{"repo": lineage["parent"], "commit": lineage.get("parent_commit"), "method": None}] \
                if isinstance(lineage.get("parent"), str) else []
        method = self.loaded.variant.get("method") if self.loaded.variant else None
        return [*before, {"repo": self.repo, "commit": self.commit, "method": method}]

    def training_data(self, flag: str) -> str:
        """``REPO@COMMIT`` of the dataset the card says the parent was trained on (else: name ``flag``)."""
        lineage = self.lineage
        if not lineage.get("dataset"):
            raise InvalidInputError(f"{self.repo}'s card names no training dataset", hint=f"pass {flag} REPO[@REV]")
        return f"{lineage['dataset']}@{lineage['dataset_commit']}" if lineage.get("dataset_commit") else \
            lineage["dataset"]


@dataclass
class VariantOutcome:
    repo: str
    commit: str  # the variant's weights
    variant: dict[str, Any]  # what the card's fmhub.variant says
    report: dict[str, Any] | None = None  # its report card, with the comparison to the parent
    card_commit: str | None = None  # the commit holding that card


def open_parent(hub: Hub, ref: str, threads: int | None = None) -> Parent:
    repo, revision = split_ref(ref, "MODEL")
    commit = hub.repo_info(repo, revision=revision).commit.oid
    folder = hub.download(repo, revision=commit, exclude=["eval/*"])
    loaded = load_folder(folder, repo, commit, threads)
    readme = folder / "README.md"
    metadata = parse_card(readme.read_text(encoding="utf-8", errors="replace")).metadata if readme.is_file() else {}
    return Parent(repo, commit, loaded, metadata, hub)


def sample_batch(hub: Hub, parent: Parent, data: str | None, max_length: int) -> tuple[dict[str, np.ndarray], str]:
    """A padded batch of real rows for parity checks: ``--data``, else the dataset the parent was trained on."""
    data = data or parent.training_data("--data")
    repo, revision = split_ref(data, "--data")
    dataset = load_dataset(repo, revision=revision, hub=hub)
    split = next((s for s in ("validation", "test", "train") if s in dataset), next(iter(dataset)))
    rows = dataset[split].select(range(min(_SAMPLE_ROWS, len(dataset[split]))))
    if len(rows) == 0:
        raise InvalidInputError(f"{data} has no rows to check the conversion on", hint="pass another --data")
    task = parent.loaded.task
    column = task.input_column if task.input_column in rows.features else next(iter(rows.features))
    batch = task.encode_batch(parent.loaded.preprocessor, task.read_inputs(rows, column), max_length)
    return batch, f"{len(rows)} rows of {repo} ({split})"


def check_parity(what: str, parent: LoadedModel, variant: LoadedModel, batch: dict[str, np.ndarray],
                 tolerance: float | None, min_agreement: float | None = None) -> dict[str, Any]:
    """Max abs logit difference and argmax agreement over the real positions.

    Raises ParityError when the difference is beyond ``tolerance`` (exports) or the agreement below
    ``min_agreement`` (quantization, which changes logits by design).
    """
    expected = parent.logits(batch)
    actual = variant.logits(batch)
    if expected.ndim == 3:  # per token: only real (unpadded) positions count
        real = batch["attention_mask"].astype(bool)
        expected, actual = expected[real], actual[real]
    difference = float(np.abs(expected.astype(np.float64) - actual).max())
    agreement = float((expected.argmax(-1) == actual.argmax(-1)).mean())
    if (tolerance is not None and not difference <= tolerance) or \
            (min_agreement is not None and not agreement >= min_agreement):  # NaN fails too
        raise ParityError(what, difference, agreement, tolerance, min_agreement)
    out = {"max_abs_logit_diff": difference, "argmax_agreement": agreement, "positions": int(expected.shape[0])}
    if tolerance is not None:
        out["tolerance"] = tolerance
    if min_agreement is not None:
        out["min_agreement"] = min_agreement
    return out


def publish_variant(hub: Hub, parent: Parent, output: str, folder: Path, variant: dict[str, Any], *, title: str,
                    private: bool = False) -> VariantOutcome:
    """Commit ``folder`` (weights, config, tokenizer) plus a card naming the parent to ``output``."""
    task = parent.loaded.task
    form = formats.get(variant["format"])
    lineage = {**parent.lineage, "parent": parent.repo, "parent_commit": parent.commit, "chain": parent.chain}
    metadata: dict[str, Any] = {
        "license": parent.metadata.get("license", "unknown"), "base_model": parent.repo,
        "pipeline_tag": task.pipeline_tag, "library_name": form.library,
        "tags": ["fmhub", task.name, variant["method"]] + ([form.library] if form.library not in ("transformers",
                                                                                                  "fmhub") else []),
        "fmhub": {"variant": variant, "lineage": lineage}}
    if variant.get("quantized"):
        metadata["base_model_relation"] = "quantized"
    if isinstance(parent.metadata.get("datasets"), list):
        metadata["datasets"] = parent.metadata["datasets"]
    problems = validate_metadata(metadata, "model")
    if not problems.ok:
        raise InvalidInputError(f"the generated model card is invalid: {'; '.join(problems.errors)}")
    lines = [f"# {output}\n",
             f"`{parent.repo}` (at `{parent.commit[:12]}`) made {variant['description']} by "
             f"`fmhub optimize {variant['method']}`.\n",
             "## Variant\n", "| | |", "|---|---|"]
    lines += [f"| {k} | `{json.dumps(v) if isinstance(v, (dict, list)) else v}` |" for k, v in variant.items()]
    lines += ["", "## Use\n", "```python", "import fmhub", f'model = fmhub.load("{output}")',
              f"batch = model.task.encode_batch(model.preprocessor, inputs, 128)  # {task.input_column} values",
              "logits = model.logits(batch)", "```"]
    (folder / "README.md").write_text(render_card(metadata, "\n".join(lines) + "\n"))
    hub.create_repo(output, private=private, exist_ok=True)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    try:
        commit = hub.commit(output, [UploadFile(p.relative_to(folder).as_posix(), p) for p in files], title=title,
                            message=f"parent: {parent.repo}@{parent.commit}").oid
        hub.attest_variant(output, commit)  # the hub vouches for the variant: parent commit, options, files
    except EmptyCommitError:
        commit = hub.repo_info(output).commit.oid
    return VariantOutcome(output, commit, variant)


Build = Callable[[Parent, dict[str, np.ndarray], Path], dict[str, Any]]
Check = Callable[[Parent, LoadedModel, dict[str, np.ndarray]], dict[str, Any]]


def make_variant(model: str, output: str, *, build: Build, check: Check, title: str, args: dict[str, Any],
                 data: str | None, max_length: int, private: bool, hub: Hub, report: bool, eval_data: str | None,
                 eval_split: str, eval_skip: tuple[str, ...], progress: Any,
                 explain: ExplainOptions | None = None) -> VariantOutcome:
    """The shape of every optimization: parent → ``build`` the variant's files → ``check`` it on real rows →
    commit it with its card → push its report card against the parent (``report``).

    ``build(parent, batch, folder)`` writes the variant's files and returns its card fields (at least
    ``format``, ``method`` and ``description``); ``check`` returns the parity record or raises
    ParityError. ``title`` may name ``{parent}``; ``args`` are saved as ``optimize_args.json``.
    """
    validate_repo_id(output)  # before any work: a bad --output must not cost a conversion
    owned = hub is None
    hub = hub or Hub.open()
    try:
        parent = open_parent(hub, model)
        batch, source = sample_batch(hub, parent, data, max_length)
        folder = Path(tempfile.mkdtemp(prefix=f"fmhub-{args['method']}-"))
        try:
            fields = build(parent, batch, folder)
            (folder / "README.md").write_text(f"---\nfmhub:\n  variant:\n    format: {fields['format']}\n---\n")
            parity = check(parent, load_folder(folder), batch)
            fields = {**fields, "parity": {**parity, "inputs": source}, "parent": f"{parent.repo}@{parent.commit}"}
            (folder / "optimize_args.json").write_text(json.dumps({**args, "model": model, "data": data,
                                                                   "max_length": max_length}, indent=2) + "\n")
            outcome = publish_variant(hub, parent, output, folder, fields, private=private,
                                      title=title.format(parent=parent.repo))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if report:
            report_against_parent(hub, parent, outcome, data=eval_data, split=eval_split, skip=eval_skip,
                                  explain=explain, progress=progress)
        return outcome
    finally:
        if owned:
            hub.close()


def _eval_dataset(hub: Hub, parent: Parent, data: str | None) -> tuple[str, str]:
    """``(repo@commit, commit)`` of the report cards' dataset (default: the parent's training dataset)."""
    data = data or parent.training_data("--eval-data")
    data_repo, data_rev = split_ref(data, "--eval-data")
    data_commit = hub.repo_info(data_repo, repo_type="dataset", revision=data_rev).commit.oid
    return f"{data_repo}@{data_commit}", data_commit


def parents_report(hub: Hub, parent: Parent, *, data: str | None, split: str, skip: tuple[str, ...] = (),
                   progress: Any = None, explain: ExplainOptions | None = None) -> tuple[dict[str, Any], bool]:
    """The parent's report card on ``split`` of ``data`` and whether it was evaluated now (else: the one stored
    for its commit)."""
    dataset, data_commit = _eval_dataset(hub, parent, data)
    theirs = stored_report(hub, parent.repo, parent.commit, data_commit, split)
    if theirs is not None:
        return theirs, False
    return evaluate(EvalConfig(model=f"{parent.repo}@{parent.commit}", data=dataset, split=split, skip=skip,
                               explain=explain or ExplainOptions()), hub, progress=progress).report, True


def report_against_parent(hub: Hub, parent: Parent, outcome: VariantOutcome, *, data: str | None, split: str,
                          skip: tuple[str, ...] = (), progress: Any = None,
                          explain: ExplainOptions | None = None,
                          parent_report: dict[str, Any] | None = None) -> dict[str, Any]:
    """Push the variant's card (with its ``parent`` comparison: ``parent_report`` when the caller has it, see
    :func:`parents_report`) and return it."""
    dataset, _ = _eval_dataset(hub, parent, data)
    theirs = parent_report or parents_report(hub, parent, data=data, split=split, skip=skip, progress=progress,
                                             explain=explain)[0]
    # Like for like: the variant reads texts at the length its parent's card did (a variant carries no
    # training_args.json, so on its own it would read up to its positions, and compare slower).
    # A variant that declares its own length (fmhub optimize auto's pick) reads at that length: that is the
    # variant's trade, which its card must show.
    config = EvalConfig(model=f"{outcome.repo}@{outcome.commit}", data=dataset, split=split, skip=skip,
                        explain=explain or ExplainOptions(),
                        max_length=outcome.variant.get("max_length") or theirs.get("max_length"))
    mine = evaluate(config, hub, push=True, progress=progress, parent_report=theirs)
    outcome.card_commit = mine.commit
    outcome.report = mine.report
    return mine.report
