"""One way to configure every stage: a YAML file plus ``--key value`` overrides.

Each stage describes its options as dataclasses; ``HfArgumentParser`` turns them
into an argparse parser with generated ``--help`` (the same mechanism TRL's
``TrlParser`` uses for training recipes).  The YAML file only supplies defaults,
so anything on the command line wins.  Unknown YAML keys and invalid values are
reported as :class:`ConfigError`, which the CLI turns into a one-line message
and exit code 2 *before* any model is loaded.

A key that was renamed stays accepted under its old name, in a YAML file and
on the command line, with a ``FutureWarning`` naming the new key (the warning
transformers gives for renamed ``TrainingArguments``); giving both spellings is a
ConfigError.  A dataclass lists them in a ``renamed_keys`` class attribute, ``{old: new}``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A user-facing configuration problem; the message names the key or file."""


def check_at_least(obj: Any, minimum: float, *keys: str) -> None:
    """Refuse a value of ``keys`` of ``obj`` below ``minimum``; ``None`` (unset) passes."""
    for key in keys:
        value = getattr(obj, key)
        if value is not None and value < minimum:
            raise ConfigError(f"'{key}' must be >= {minimum}, got {value}")


def check_choice(
    key: str, value: object, choices: Iterable[object], what: str | None = None
) -> None:
    """Refuse a ``value`` of ``key`` outside ``choices``, listing them."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(
            f"unknown {what or key} '{value}' (key '{key}'; choose from {', '.join(map(str, choices))})"
        )


def check_model_source(model: str, key: str) -> None:
    """Refuse a model that cannot load, as far as the disk tells: no network, no weights read.

    A local folder must hold a ``config.json`` that parses; anything else must
    at least be spelled as a Hub id (``name`` or ``org/name``).  Whether a Hub
    id exists is found when its files are fetched (``inference.models.check_hub_model``).
    """
    path = Path(model).expanduser()
    if model.startswith((".", "/", "~")) or path.exists():
        if not path.is_dir():
            raise ConfigError(f"model folder {model} does not exist (key '{key}')")
        config = path / "config.json"
        if not config.is_file():
            raise ConfigError(
                f"model folder {model} holds no config.json: not a model checkpoint (key '{key}')"
            )
        try:
            parsed = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{config} is not valid JSON ({exc}) (key '{key}')") from exc
        if not isinstance(parsed, dict):
            raise ConfigError(f"{config} does not hold a JSON object (key '{key}')")
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError:
        raise ConfigError(
            f"model {model!r} is neither a local folder nor a Hub id like ORG/NAME (key '{key}')"
        ) from None


def check_output_dir(path: str | Path | None, key: str = "output_dir") -> None:
    """Refuse an output folder that is an existing file, or would have to be made inside one.

    Every command writes several files into its folder; a file there is
    someone else's (a traces.jsonl, a config) and must not be replaced or
    half-written around.  ``None`` (unset) passes.
    """
    if path is None:
        return
    wanted = Path(path).expanduser()
    for candidate in (wanted, *wanted.parents):
        if candidate.exists():
            if not candidate.is_dir():
                where = "" if candidate == wanted else f" (inside {candidate}, a file)"
                raise ConfigError(
                    f"'{key}' {path} is not a folder: an existing file is in the way{where}"
                )
            return


def warn_renamed(old: str, new: str, where: str) -> None:
    """One line saying that ``old`` (in the config file or on the command line ``where``)
    is deprecated in favour of ``new``; reported at ``where``, not at this source line."""
    warnings.warn_explicit(
        f"'{old}' is deprecated and will be removed in a future release; use '{new}' instead",
        FutureWarning,
        filename=where,
        lineno=0,
    )


def renamed_keys(dataclass_types: Sequence[type]) -> dict[str, str]:
    """``{old: new}`` of every renamed key of ``dataclass_types``."""
    return {
        old: new for dc in dataclass_types for old, new in getattr(dc, "renamed_keys", {}).items()
    }


def rename_config_keys(data: dict[str, Any], renamed: dict[str, str], where: str) -> dict[str, Any]:
    """``data`` with old key names replaced by the new ones; both at once is an error."""
    data = dict(data)
    for old, new in renamed.items():
        if old in data:
            if new in data:
                raise ConfigError(
                    f"{where} sets both '{old}' and '{new}': keep only '{new}' "
                    f"('{old}' is its deprecated name)"
                )
            warn_renamed(old, new, where)
            data[new] = data.pop(old)
    return data


def rename_flags(argv: Sequence[str], renamed: dict[str, str]) -> list[str]:
    """Command-line ``argv`` with ``--old`` / ``--old=value`` spelled ``--new``."""

    def key(arg: str) -> str | None:
        flag = arg.partition("=")[0]
        return flag[2:].replace("-", "_") if flag.startswith("--") else None

    given = {key(arg) for arg in argv}
    out = []
    for arg in argv:
        old = key(arg)
        if old in renamed:
            new = renamed[old]
            if new in given:
                raise ConfigError(
                    f"both --{old} and --{new} given: keep only --{new} "
                    f"(--{old} is its deprecated name)"
                )
            warn_renamed(f"--{old}", f"--{new}", "command line")
            flag, eq, value = arg.partition("=")
            arg = f"--{new}{eq}{value}"
        out.append(arg)
    return out


def parse_mapping(value: str | dict | None) -> dict[str, str] | None:
    """Parse ``'{"a": "b"}'`` or ``a=b,c=d`` from the command line into a dict."""
    if value is None or isinstance(value, dict):
        return value
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise argparse.ArgumentTypeError("expected a JSON object")
        return parsed
    pairs = {}
    for item in text.split(","):
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected key=value pairs, got {item!r}")
        pairs[key.strip()] = val.strip()
    return pairs


def load_yaml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Read a YAML file holding a mapping, with errors naming ``what`` and the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{what} {_yaml_where(path, exc)} is not valid YAML: {_yaml_problem(exc)}"
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of keys to values")
    return data


def _yaml_where(path: Path, exc: yaml.YAMLError) -> str:
    """``FILE:LINE`` of a YAML error (``FILE`` when PyYAML gives no position)."""
    mark = getattr(exc, "problem_mark", None)
    return f"{path}:{mark.line + 1}" if mark is not None else str(path)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's reason on one line (its message spans several, with a picture of the spot)."""
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    text = " ".join(part for part in (context, problem) if part) or type(exc).__name__
    return " ".join(text.split())


class _MergeMappings(argparse.Action):
    """``--key a=1 b=2`` (space-separated, as list options take them), ``a=1,b=2`` or JSON:
    every word is parsed by :func:`parse_mapping` and the mappings are merged in order."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        merged: dict = {}
        for value in values:
            merged.update(value)
        setattr(namespace, self.dest, merged)


def _refuse(message: str) -> None:
    """argparse's error handler: one line (through :class:`ConfigError`), not the whole usage."""
    raise ConfigError(f"{message} (run with --help for the options)")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Lists each option in its documented underscore spelling only (``--some-key`` still works).

    The automatic ``(default: ...)`` is left off where the help already says its default in
    words, and off bare arguments (their default is the flag's, listed with the flag).
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if "(default:" in (action.help or "") or not action.option_strings:
            return action.help
        return super()._get_help_string(action)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        names = action.option_strings
        shown = [o for o in names if not (o != _underscored(o) and _underscored(o) in names)]
        if shown != names:
            action = copy.copy(action)
            action.option_strings = shown
        return super()._format_action_invocation(action)


def _underscored(option: str) -> str:
    """``--some-key`` -> ``--some_key`` (HfArgumentParser adds the dashed alias of each key)."""
    return option[:2] + option[2:].replace("-", "_") if option.startswith("--") else option


#: dest of the bare (positional) arguments a stage may accept for one of its fields
POSITIONAL = "positional"


def build_parser(
    dataclass_types: Sequence[type], prog: str, description: str, positional: str | None = None
):
    """Build an ``HfArgumentParser`` with a ``--config`` option for the dataclasses.

    ``HfArgumentParser`` accepts every ``--some_key`` also as ``--some-key``;
    help and docs name the underscore form only.  ``positional`` names a field
    that bare arguments fill too (``leapt report DIR...`` is ``--dirs DIR...``).
    """
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        list(dataclass_types),
        prog=prog,
        description=description,
        formatter_class=_HelpFormatter,
        allow_abbrev=False,  # a prefix (--n, --temp) would silently pick, or list 30 options
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="YAML file whose keys set any option below; command-line flags override it.",
    )
    parser.error = _refuse
    for action in parser._actions:
        if action.type is dict:
            action.type = parse_mapping
            action.metavar = "JSON|k=v"
            action.nargs = "+"
            action.__class__ = _MergeMappings
    if positional is not None:
        flag = next(a for a in parser._actions if a.dest == positional)
        parser.add_argument(
            POSITIONAL,
            nargs="?" if flag.nargs is None else "*",
            metavar=flag.metavar or positional.upper(),
            help=f"{flag.help} (the same as --{positional})",
        )
    return parser


def parse_config(
    dataclass_types: Sequence[type],
    argv: Sequence[str] | None,
    prog: str,
    description: str,
    positional: str | None = None,
) -> tuple[Any, ...]:
    """Parse ``--config FILE`` plus overrides into instances of ``dataclass_types``.

    Raises :class:`ConfigError` for unknown YAML keys or values rejected by a
    dataclass's ``__post_init__``; argparse itself exits with code 2 on bad flags.
    Bare arguments fill the field named by ``positional`` (see :func:`build_parser`).
    """
    parser = build_parser(dataclass_types, prog, description, positional)
    renamed = renamed_keys(dataclass_types)
    if argv is None:
        argv = sys.argv[1:]
    argv = rename_flags(argv, renamed)
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.error = _refuse
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.config:
        data = rename_config_keys(load_yaml(known.config), renamed, str(known.config))
        valid = {f.name for dc in dataclass_types for f in dataclasses.fields(dc) if f.init}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ConfigError(
                f"unknown key '{unknown[0]}' in {known.config} (run with --help for the valid keys)"
            )
        parser.set_defaults(**data)
    if positional is not None:  # bare arguments become the field's value before validation
        args = list(argv) if argv is not None else None
        given = getattr(parser.parse_known_args(args)[0], POSITIONAL)
        if given:
            parser.set_defaults(**{positional: given})
    try:
        *outputs, unused = parser.parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True
        )
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc
    if unused:
        what = "option" if unused[0].startswith("-") else "argument"
        raise ConfigError(f"unknown {what} '{unused[0]}' (run with --help for the options)")
    return tuple(o for o in outputs if dataclasses.is_dataclass(o))


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-safe dict of a config dataclass, for traces, cards and result files."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))
