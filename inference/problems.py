"""Where problems come from: local files, Hub datasets, and built-in sets for smoke runs.

Every source ends as a list of :class:`Problem`.  A column mapping renames a
dataset's columns onto ``problem``/``answer``/``options``/``id``; a missing
column or unreadable file is a :class:`ConfigError` naming it, raised before
any model is loaded.
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.answers import OPTION_LETTERS
from inference.args import DataArguments
from leapt.config import ConfigError

FIELDS = ("problem", "answer", "options", "id")
#: a label the file put in front of an option's text ("A) ", "(B) ", "C. "), removed on load
_LABEL_RE = re.compile(r"^\(?([A-Ja-j])[).:]\s+")
_GOLD_LETTER_RE = re.compile(r"^\(?([A-Ja-j])\)?[.:)]?$")

logger = logging.getLogger(__name__)


@dataclass
class Problem:
    """One question; ``options`` only for multiple-choice tasks.

    A multiple-choice problem's ``answer`` is the gold *letter* of ``options``
    in their current order (see :func:`choice_gold`).
    """

    id: str
    problem: str
    answer: str | None
    options: list[str] | None = None


#: very easy word problems with integer answers, for the embedded demo
EASY_PROBLEMS = [
    Problem("easy-1", "Tom has 3 apples and buys 4 more. How many apples does he have now?", "7"),
    Problem(
        "easy-2",
        "A box holds 6 eggs. How many eggs are in 2 full boxes?",
        "12",
    ),
    Problem(
        "easy-3",
        "Sara had 10 pencils and gave 3 of them to a friend. How many pencils does she have left?",
        "7",
    ),
    Problem(
        "easy-4",
        "There are 5 birds on a fence and 5 more land beside them. How many birds are on the fence?",
        "10",
    ),
]


def synthetic_problems(n: int, seed: int, ops: int = 2) -> list[Problem]:
    """``n`` distinct seeded arithmetic problems with integer answers.

    ``ops`` 2 (``Compute (a ± b) * c.``) is beyond the embedded 135M model;
    ``ops`` 1 (``Compute a + b.``) is one it solves now and then, so a teacher
    run keeps some correct paths.  The kinds have their own ids.
    """
    rng = random.Random(seed)
    problems: dict[str, Problem] = {}
    while len(problems) < n:
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        if ops == 1:
            text, value, kind = f"Compute {a} + {b}.", a + b, "addition"
        else:
            c, op = rng.randint(2, 9), rng.choice(["+", "-"])
            value = (a + b) * c if op == "+" else (a - b) * c
            text, kind = f"Compute ({a} {op} {b}) * {c}.", "synthetic"
        if text not in problems:
            problems[text] = Problem(f"{kind}-{seed}-{len(problems)}", text, str(value))
    return list(problems.values())


def load_problems(
    data_args: DataArguments, seed: int = 0, columns_key: str | None = "columns"
) -> list[Problem]:
    """All problems named by ``data_args`` (after ``limit``); none at all is a ConfigError.

    ``columns_key`` is the option that maps a file's column names, named in
    the missing-column message; None for a caller that has no such option.
    """
    source = data_args.source
    if source == "builtin:easy":
        problems = [Problem(**vars(p)) for p in EASY_PROBLEMS]
    elif source == "synthetic":
        problems = synthetic_problems(data_args.num_synthetic, seed, data_args.synthetic_ops)
    elif source.startswith("builtin:"):
        raise ConfigError(
            f"unknown built-in problem set '{source}' (key 'source'; use builtin:easy)"
        )
    else:
        rows = read_rows(data_args)
        problems = _to_problems(rows, data_args.columns or {}, source, columns_key)
        if Path(source).is_file():
            warn_fixed_gold(problems, source)
    if data_args.limit is not None:
        problems = problems[: data_args.limit]
    if not problems:
        raise ConfigError(f"the problem source {source} holds no problems (key 'source')")
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"problem id '{duplicate}' appears twice in {source} (column 'id')")
    return problems


def read_rows(data_args: DataArguments) -> list[dict[str, Any]]:
    """The records of a local file, or of a Hub dataset (or a local folder laid out like one)."""
    path = Path(data_args.source)
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl", ".parquet") or path.is_file():
        try:
            if suffix == ".parquet":
                import pyarrow.parquet as pq

                return pq.read_table(path).to_pylist()
            text = path.read_text(encoding="utf-8")
            if suffix == ".jsonl":
                return [json.loads(line) for line in text.splitlines() if line.strip()]
            data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read problems file {path}: {exc}") from exc
        except Exception as exc:  # pyarrow raises its own error types
            raise ConfigError(f"cannot read problems file {path}: {exc}") from exc
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if not isinstance(data, list):
            raise ConfigError(f"problems file {path} must hold a list of records")
        return data
    return _hub_rows(data_args)


def _hub_rows(data_args: DataArguments) -> list[dict[str, Any]]:
    from datasets import load_dataset

    from leapt.log import quiet_datasets_progress

    try:
        with quiet_datasets_progress():
            ds = load_dataset(data_args.source, data_args.subset, split=data_args.split)
    except Exception as exc:
        raise ConfigError(
            f"cannot load dataset '{data_args.source}' (key 'source'): {str(exc).splitlines()[0]}"
        ) from exc
    return list(ds)


def _to_problems(
    rows: list[dict[str, Any]], columns: dict, source: str, columns_key: str | None
) -> list[Problem]:
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown field '{unknown[0]}' in 'columns' (valid: {', '.join(FIELDS)})")
    names = {f: columns.get(f, f) for f in FIELDS}
    problems = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError(f"record {i} of {source} is not an object")
        options = _row_options(row, names["options"], f"record {i} of {source}")
        required = ("problem",) if options is not None else ("problem", "answer")
        for name in required:
            if names[name] not in row:
                fix = (
                    f"map it with --{columns_key} {name}=NAME"
                    if columns_key
                    else f"the file needs a '{name}' field in every record"
                )
                raise ConfigError(f"column '{names[name]}' missing in {source} (record {i}); {fix}")
        answer = row.get(names["answer"])
        ident = row.get(names["id"])
        if options is not None:
            # the first option is the gold only where that is said: options named column by
            # column (GPQA's Correct Answer, Incorrect Answer 1, ...) or an explicit null gold;
            # a row without the gold column (a gold under another name) is an error
            first = isinstance(names["options"], list | tuple) or names["answer"] in row
            answer = choice_gold(answer, options, f"record {i} of {source}", first_if_none=first)
        problems.append(
            Problem(
                id=str(i if ident is None or ident == "" else ident),
                problem=str(row[names["problem"]]).strip(),
                answer=None if answer is None else str(answer).strip(),
                options=options,
            )
        )
    return problems


def _row_options(row: dict[str, Any], name: str | list, where: str) -> list[str] | None:
    """A record's options as a list of texts, from any shape multiple-choice exports use.

    ``name`` is the ``options`` column (a list, or a mapping ``{"A": text, ...}``) or a
    list of columns, one option each (``columns: {options: [Correct Answer, ...]}``);
    without either, columns named ``A``, ``B``, ... hold one option each.  Labels the
    file wrote in front of every option (``A) ``, ``(B) ``) are removed: the prompt
    letters the options itself, in the order it shows them.
    """
    if isinstance(name, list | tuple):
        missing = [c for c in name if c not in row]
        if missing:
            raise ConfigError(f"column '{missing[0]}' missing in {where} (key 'columns')")
        raw = [row[c] for c in name]
    elif name in row and row[name] is not None:
        raw = row[name]
        if isinstance(raw, dict):
            keys = list(raw)
            letters = [str(k).strip().upper() for k in keys]
            if keys and all(len(x) == 1 and x in OPTION_LETTERS for x in letters):
                keys = sorted(keys, key=lambda k: str(k).strip().upper())
            raw = [raw[k] for k in keys]
        elif not isinstance(raw, list | tuple):
            raise ConfigError(f"column '{name}' of {where} must hold a list or a mapping")
    else:
        raw = []
        for letter in OPTION_LETTERS:
            if letter not in row:
                break
            raw.append(row[letter])
        if not raw:
            return None
    if len(raw) > len(OPTION_LETTERS):
        raise ConfigError(f"{where} has {len(raw)} options; at most {len(OPTION_LETTERS)}")
    texts = [str(o).strip() for o in raw]
    labels = [_LABEL_RE.match(t) for t in texts]
    if len(texts) > 1 and all(
        m and m.group(1).upper() == OPTION_LETTERS[i] for i, m in enumerate(labels)
    ):
        texts = [t[m.end() :].strip() for t, m in zip(texts, labels, strict=True)]
    return texts


def choice_gold(gold: Any, options: list[str], where: str, first_if_none: bool = False) -> str:
    """The gold letter of ``options`` (in their given order) from any way a file states it.

    The option's text, a letter (``C``, ``(c)``) or a 0-based integer index.  A null gold
    is the first option only with ``first_if_none`` (the file says so: GPQA lists its
    correct answer first); otherwise it is an error, since a gold column under another
    name would silently make every problem's answer ``A``.  The text is
    tried before the letter, so an option that is itself ``"A"`` is found by text.
    """
    if gold is None or (isinstance(gold, str) and not gold.strip()):
        if first_if_none and gold is None:
            return OPTION_LETTERS[0]
        raise ConfigError(
            f"{where} has no gold answer (column 'answer'; map another column with "
            "columns: {answer: NAME})"
        )
    if isinstance(gold, int) and not isinstance(gold, bool):
        if 0 <= gold < len(options):
            return OPTION_LETTERS[gold]
        raise ConfigError(f"gold index {gold} of {where} is out of range (column 'answer')")
    text = str(gold).strip()
    label = _LABEL_RE.match(text + " ")
    for candidate in (text, text[label.end() :].strip() if label else None):
        if candidate and candidate in options:
            return OPTION_LETTERS[options.index(candidate)]
    letter = _GOLD_LETTER_RE.match(text)
    if letter and OPTION_LETTERS.index(letter.group(1).upper()) < len(options):
        return letter.group(1).upper()
    raise ConfigError(
        f"gold {text!r} of {where} is none of its {len(options)} options, an option "
        "letter or a 0-based index (column 'answer')"
    )


def warn_fixed_gold(problems: list[Problem], source: str) -> None:
    """Warn when a choice file puts the gold option in the same place for every problem.

    Exports often list the correct option first; shown in that order, a model that
    always picks A scores 100%.
    """
    golds = {p.answer for p in problems if p.options}
    if len(problems) > 1 and len(golds) == 1 and all(p.options for p in problems):
        logger.warning(
            "every problem of %s has its gold option at position %s: shown in the file's "
            "order, always picking %s would score 100%% (leapt eval shuffles options with "
            "'option_seed' unless 'shuffle_options' is false)",
            source,
            next(iter(golds)),
            next(iter(golds)),
        )
