"""The ``chat_template`` and ``system_prompt`` keys, read the same way by every stage.

Inference (``infer``, ``eval``, ``generate``) and training (``train``) must render a
prompt to the same token ids, or a student is trained on prompts it never sees.
Both stages therefore take the two keys through these functions: the template
replaces the tokenizer's own (and is saved with a trained student's tokenizer),
the system prompt becomes a system message before the user turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leapt.config import ConfigError

#: file endings of a template given as a file (as TRL's ``chat_template_path``)
TEMPLATE_SUFFIXES = (".jinja", ".j2")


def read_chat_template(value: str | None, key: str = "chat_template") -> str | None:
    """The Jinja text of ``value``: a template file's content, or the template itself.

    A value that is neither an existing file nor Jinja text (no ``{%`` / ``{{``)
    is a ConfigError naming ``key`` (most likely a mistyped path).
    """
    if value is None:
        return None
    path = Path(value).expanduser()
    if value.endswith(TEMPLATE_SUFFIXES) or ("{" not in value and "\n" not in value):
        if not path.is_file():
            raise ConfigError(f"chat template file {value} does not exist (key '{key}')")
        return path.read_text(encoding="utf-8")
    if "{%" not in value and "{{" not in value:
        raise ConfigError(f"'{key}' is neither a template file nor a Jinja chat template")
    return value


def use_chat_template(tokenizer: Any, chat_template: str | None) -> Any:
    """Give ``tokenizer`` the template of ``chat_template`` (unchanged when None); returned."""
    text = read_chat_template(chat_template)
    if text is not None:
        tokenizer.chat_template = text
    return tokenizer


def with_system_prompt(messages: list[dict], system_prompt: str | None) -> list[dict]:
    """``messages`` led by a system message holding ``system_prompt`` (replacing one there).

    ``None`` leaves the messages as they are.
    """
    if system_prompt is None:
        return list(messages)
    rest = [m for m in messages if m.get("role") != "system"]
    return [{"role": "system", "content": system_prompt}, *rest]
