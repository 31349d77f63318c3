"""One definition per option: typed config dataclasses whose fields carry their CLI flag, help and rule.

A command's options are the fields of its config dataclasses (groups nest, as litgpt's configs do); each
field is declared once with :func:`option` — its default, its help, the rule a value must meet — and
everything else is derived from that declaration:

- the CLI options (:func:`parameters`: Typer parameters, one flat ``--flag`` per field, in declaration order);
- reading a flat mapping of options (:func:`from_flat`: the CLI's values, a YAML file, a pipeline step), with
  one error naming every unknown option;
- the checks (:func:`check`: ``--max-length 4 must be at least 8``) and the saved config (:func:`to_flat`);
- the keys a pipeline step of that kind accepts (:func:`flat_names`).

Example:
    >>> @dataclass(frozen=True)
    ... class Loop:
    ...     epochs: float = option(3.0, help="Passes over the training split.", check=lambda v: v > 0,
    ...                            rule="positive")
    >>> from_flat(Loop, {"epochs": 2}).epochs
    2
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass
from typing import Annotated, Any

from fmhub.errors import InvalidInputError

__all__ = ["option", "OptionSpec", "fields_of", "parameters", "from_flat", "to_flat", "check", "flat_names",
           "required_names", "with_signature"]

_KEY = "fmhub.option"


@dataclass(frozen=True)
class OptionSpec:
    """How one config field appears on the command line and what it must be."""

    help: str
    flag: str | None = None  # default: --<name with dashes>
    aliases: tuple[str, ...] = ()  # more spellings (e.g. --lr)
    check: Callable[[Any], bool] | None = None  # a valid value (None passes unless ``required``)
    rule: str = ""  # what ``check`` asks, for the error: "--{flag} {value!r} must be {rule}"
    choices: Callable[[], Sequence[str]] | Sequence[str] | None = None  # the allowed values (computed lazily)
    cli: bool = True  # False: not a CLI option (set from Python, a YAML file or a pipeline only)
    cli_type: Any = None  # the type the CLI parses (default: the field's type)
    parse: Callable[[Any], Any] | None = None  # CLI value → field value (after ``cli_type``)
    negative: str | None = None  # a bool's "off" flag (e.g. --no-eval); default: a plain on-flag
    show_default: bool = True  # add "[default: …]" to the help
    normalize: Callable[[Any], Any] | None = None  # any given value → field value (CLI, YAML and pipelines alike)


def option(default: Any = MISSING, *, help: str, flag: str | None = None, aliases: Sequence[str] = (),
           check: Callable[[Any], bool] | None = None, rule: str = "", choices: Any = None, cli: bool = True,
           cli_type: Any = None, parse: Callable[[Any], Any] | None = None, negative: str | None = None,
           show_default: bool = True, normalize: Callable[[Any], Any] | None = None,
           factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field that is an option (see the module docstring)."""
    spec = OptionSpec(help, flag, tuple(aliases), check, rule, choices, cli, cli_type, parse, negative, show_default,
                      normalize)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={_KEY: spec})
    return dataclasses.field(default=default, metadata={_KEY: spec})


@dataclass(frozen=True)
class _Field:
    name: str  # the flat name (the field's own; unique across a config's groups)
    path: tuple[str, ...]  # where it sits: ("optimizer", "learning_rate")
    type: Any
    default: Any  # MISSING: required
    spec: OptionSpec

    @property
    def flag(self) -> str:
        return self.spec.flag or "--" + self.name.replace("_", "-")

    @property
    def choices(self) -> Sequence[str] | None:
        choices = self.spec.choices
        return choices() if callable(choices) else choices


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_group(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def fields_of(cls: type, _path: tuple[str, ...] = ()) -> Iterator[_Field]:
    """Every option of ``cls``, groups flattened, in declaration order."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if _is_group(kind):
            yield from fields_of(kind, (*_path, f.name))
            continue
        spec = f.metadata.get(_KEY)
        if spec is None:
            continue
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else MISSING)  # type: ignore[misc]
        yield _Field(f.name, (*_path, f.name), kind, default, spec)


def flat_names(cls: type) -> list[str]:
    """The flat option names of ``cls`` (the keys of a YAML file or a pipeline step)."""
    return [f.name for f in fields_of(cls)]


def required_names(cls: type) -> list[str]:
    return [f.name for f in fields_of(cls) if f.default is MISSING]


def _plain(kind: Any) -> Any:
    """``float | None`` → ``float`` (what the CLI parses)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else str
    return kind


def parameters(cls: type, *, skip: Sequence[str] = (), arguments: Sequence[str] = ()) -> list[inspect.Parameter]:
    """Typer parameters for every CLI option of ``cls`` (``arguments``: positional ones).

    Every option defaults to None on the command line, so a value the user did not give is told apart from the
    default (a YAML file may set it); the default is shown in the help instead.
    """
    import typer

    out = []
    for f in fields_of(cls):
        if not f.spec.cli or f.name in skip:
            continue
        kind = f.spec.cli_type or _plain(f.type)
        shown = f.default if f.default is not MISSING else None
        text = f.spec.help.replace("[", "\\[").rstrip(".")  # rich markup: a literal bracket
        choices = f.choices
        if choices and not all(c in text for c in choices):  # the help lists them already, or not
            text += f": {', '.join(choices)}"
        if f.spec.show_default and shown is not None and shown != () and not (kind is bool and shown is False):
            text += f" \\[default: {_shown(shown)}]"
        text += "."
        if f.name in arguments:
            info = typer.Argument(help=text, show_default=False, metavar=f.name.upper())
            annotation = Annotated[kind if f.default is MISSING else kind | None, info]
            default = inspect.Parameter.empty if f.default is MISSING else None
        else:
            names = [f.flag, *f.spec.aliases]
            if kind is bool and f.spec.negative:
                names = [f"{f.flag}/{f.spec.negative}"]
            info = typer.Option(*names, help=text, show_default=False)
            annotation = Annotated[kind | None, info]
            default = None
        out.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
    return out


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}".replace("e-0", "e-")
    return str(value)


def with_signature(function: Callable[..., Any], params: Sequence[inspect.Parameter]) -> Callable[..., Any]:
    """``function`` (taking ``**options``) presented to Typer with ``params`` as its signature."""
    function.__signature__ = inspect.Signature(list(params))  # type: ignore[attr-defined]
    return function


def from_flat(cls: type, values: Mapping[str, Any], *, source: str = "options", cli: bool = False) -> Any:
    """Build ``cls`` (groups included) from a flat mapping of option names (``-`` or ``_``); an unknown name is an
    input error naming all of them. ``cli``: the values came from the command line (apply each ``parse``)."""
    known = {f.name: f for f in fields_of(cls)}
    given = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise InvalidInputError(f"{source}: unknown option(s) {', '.join(unknown)}",
                                hint="see --help for the options")
    if cli:
        given = {k: (known[k].spec.parse(v) if known[k].spec.parse and v is not None else v) for k, v in given.items()}
    given = {k: (known[k].spec.normalize(v) if known[k].spec.normalize and v is not None else v)
             for k, v in given.items()}
    return _build(cls, given, ())


def _build(cls: type, given: dict[str, Any], path: tuple[str, ...]) -> Any:
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if _is_group(hints[f.name]):
            kwargs[f.name] = _build(hints[f.name], given, (*path, f.name))
        elif f.name in given:
            kwargs[f.name] = given[f.name]
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required option missing
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in kwargs
                   and f.default is MISSING and f.default_factory is MISSING]  # type: ignore[misc]
        raise InvalidInputError(f"missing {', '.join(missing) or exc}") from None


def to_flat(config: Any) -> dict[str, Any]:
    """The options of a config as one flat mapping (the saved config; ``from_flat`` reads it back)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(to_flat(value))
        else:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def check(config: Any) -> None:
    """Raise InvalidInputError for the first option whose value breaks its rule or is not one of its choices."""
    for f in fields_of(type(config)):
        value = config
        for part in f.path:
            value = getattr(value, part)
        if value is None:
            continue
        choices = f.choices
        if choices is not None and value not in choices:
            raise InvalidInputError(f"unknown {f.flag} {value!r}",
                                    hint=f"choose from {', '.join(choices)}")
        if f.spec.check is not None and not _passes(f.spec.check, value):
            raise InvalidInputError(f"{f.flag} {value!r} must be {f.spec.rule}")


def _passes(rule: Callable[[Any], bool], value: Any) -> bool:
    try:
        return bool(rule(value))
    except (TypeError, ValueError):  # a value of the wrong type breaks the rule
        return False
