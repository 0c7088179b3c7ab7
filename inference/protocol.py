"""The text the engine writes into a path: prompts, summary triggers, peer blocks.

All wording lives in ``protocol.yaml`` (package data) so it can be changed
without touching code; ``--protocol FILE`` overrides any subset of the keys.
Tag names are configurable but default to ``<summarize>``/``<comment>`` because
published LeaP-T checkpoints were trained on exactly those.  Lists of
sentences (triggers, summary openings) are drawn from by the caller with a
seeded random stream, so the same run seed writes the same text.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.answers import OPTION_LETTERS
from leapt.chat import with_system_prompt
from leapt.config import ConfigError, load_yaml

DEFAULT_PROTOCOL_FILE = Path(__file__).with_name("protocol.yaml")
THINKING_CHOICES = ("auto", "true", "false")


@dataclass(frozen=True)
class Protocol:
    """Tag names, sentences and switches of one LeaP run (``protocol.yaml`` gives their roles)."""

    summarize_tag: str
    comment_tag: str
    think_end: str
    thinking: str
    math_instruction: str
    choice_instruction: str
    announce_methods: tuple[str, ...]
    preamble: str
    prefill: str
    summary_triggers: tuple[str, ...]
    summary_openings: tuple[str, ...]
    trim_to_paragraph: bool
    reflection_cue: str
    no_peers_text: str
    no_peers_cue: str
    peer_label: str
    forced_answer_math: str
    forced_answer_choice: str

    @property
    def summary_open(self) -> str:
        return f"<{self.summarize_tag}>"

    @property
    def summary_close(self) -> str:
        return f"</{self.summarize_tag}>"

    def _tags(self) -> dict[str, str]:
        return {
            "open": self.summary_open,
            "close": self.summary_close,
            "comment_open": f"<{self.comment_tag}>",
            "comment_close": f"</{self.comment_tag}>",
        }

    def user_message(
        self, problem: str, options: list[str] | None, task: str, announce: bool = False
    ) -> str:
        """The first user turn: the problem, the answer-format instruction, maybe the preamble."""
        if task == "choice":
            options = options or []
            if len(options) > len(OPTION_LETTERS):
                raise ConfigError(
                    f"a problem has {len(options)} options; at most {len(OPTION_LETTERS)}"
                )
            lettered = "\n".join(f"{OPTION_LETTERS[i]}) {opt}" for i, opt in enumerate(options))
            text = self.choice_instruction.format(problem=problem, options=lettered)
        else:
            text = self.math_instruction.format(problem=problem, options="")
        return text + (self.preamble.format(**self._tags()) if announce else "")

    def build_prompt(
        self,
        tokenizer: Any,
        problem: str,
        options: list[str] | None,
        task: str,
        announce: bool = False,
        system_prompt: str | None = None,
    ) -> str:
        """The chat-templated prompt text, ending where the assistant starts writing.

        With ``announce`` the user turn explains the two tags; the assistant's
        pre-filled first words are :meth:`assistant_prefill`, kept apart so the
        prompt still re-renders from the user message alone.  ``system_prompt``
        leads as a system message (:func:`leapt.chat.with_system_prompt`).
        """
        messages = self.prompt_messages(problem, options, task, announce, system_prompt)
        if getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        else:
            prompt = "".join(m["content"] + "\n\n" for m in messages)
        return prompt

    def prompt_messages(
        self,
        problem: str,
        options: list[str] | None,
        task: str,
        announce: bool = False,
        system_prompt: str | None = None,
    ) -> list[dict]:
        """The messages :meth:`build_prompt` renders: system prompt (if any), then the user turn."""
        content = self.user_message(problem, options, task, announce)
        return with_system_prompt([{"role": "user", "content": content}], system_prompt)

    def assistant_prefill(self, announce: bool) -> str:
        """The engine-written first words of the assistant turn ('' unless announcing)."""
        return self.prefill.format(**self._tags()) if announce else ""

    def summary_request(self, rng: random.Random | None = None) -> str:
        """Engine text that opens a LeaP block: a trigger sentence, ``<summarize>``, an opening.

        ``rng`` draws the trigger and the opening from their lists; without it
        the first of each is used.
        """
        return self.pick_trigger(rng) + self.summary_open + self.pick_opening(rng)

    def pick_trigger(self, rng: random.Random | None) -> str:
        return rng.choice(self.summary_triggers) if rng else self.summary_triggers[0]

    def pick_opening(self, rng: random.Random | None) -> str:
        return rng.choice(self.summary_openings) if rng else self.summary_openings[0]

    def peer_block(self, summaries: list[str]) -> str:
        """`` <comment> Peer 1: "…"\\nPeer 2: "…" </comment>``, or the explicit no-peers block."""
        if summaries:
            body = "\n".join(
                f'{self.peer_label.format(i=i)}: "{s}"' for i, s in enumerate(summaries, start=1)
            )
        else:
            body = self.no_peers_text
        return f" <{self.comment_tag}> {body} </{self.comment_tag}>"

    def cue(self, has_peers: bool) -> str:
        """What follows a peer block: weigh the notes, or (no notes) check one's own work."""
        return self.reflection_cue if has_peers else self.no_peers_cue

    def forced_answer(self, task: str, close_thinking: bool = True) -> str:
        """Suffix that opens the final answer of a path out of budget or context.

        ``close_thinking`` puts the think-end tag in it: only for a thinking
        model that has not closed its thinking yet.
        """
        template = self.forced_answer_choice if task == "choice" else self.forced_answer_math
        return template.format(think_end=f"\n{self.think_end}" if close_thinking else "")

    def texts(self) -> dict[str, str]:
        """Every sentence the protocol can show a model, by key (``key[i]`` for list items).

        What the benchmark-overlap check reads: a worked example or cue that quotes
        a benchmark item would hand that item to the methods that show it.
        """
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _WORDING_LISTS:
                out.update({f"{f.name}[{i}]": v for i, v in enumerate(value)})
            elif isinstance(value, str) and f.name not in _NOT_WORDING:
                out[f.name] = value
        return out

    def model_thinks(self, tokenizer: Any) -> bool:
        """Resolve ``thinking: auto`` from the tokenizer: the tag is a token or in the template."""
        if self.thinking != "auto":
            return self.thinking == "true"
        vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
        template = getattr(tokenizer, "chat_template", None) or ""
        return self.think_end in vocab or self.think_end in str(template)

    def announces(self, method: str, override: str = "auto") -> bool:
        """Whether ``method``'s first turn carries the preamble and pre-fill."""
        return method in self.announce_methods if override == "auto" else override == "true"


_LISTS = ("announce_methods", "summary_triggers", "summary_openings")
_WORDING_LISTS = ("summary_triggers", "summary_openings")
#: string keys that are names or switches, not sentences
_NOT_WORDING = ("summarize_tag", "comment_tag", "think_end", "thinking")


def load_protocol(path: str | Path | None = None) -> Protocol:
    """The packaged protocol, with the keys of ``path`` (a YAML file) overriding it."""
    data = load_yaml(DEFAULT_PROTOCOL_FILE, "protocol file")
    if path is not None:
        override = load_yaml(path, "protocol file")
        known = {f.name for f in dataclasses.fields(Protocol)}
        unknown = sorted(set(override) - known)
        if unknown:
            raise ConfigError(
                f"unknown key '{unknown[0]}' in protocol file {path} "
                f"(valid keys: {', '.join(sorted(known))})"
            )
        data.update(override)
    where = f" (file {path})" if path is not None else ""
    for key, value in data.items():
        if key in _LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"protocol key '{key}' must be a list of strings{where}")
            if key != "announce_methods" and not value:
                raise ConfigError(f"protocol key '{key}' must not be empty{where}")
            data[key] = tuple(value)
        elif key == "trim_to_paragraph":
            if not isinstance(value, bool):
                raise ConfigError(f"protocol key '{key}' must be true or false{where}")
        elif key == "thinking":
            data[key] = str(value).lower()
            if data[key] not in THINKING_CHOICES:
                raise ConfigError(
                    f"protocol key 'thinking' must be one of {', '.join(THINKING_CHOICES)}{where}"
                )
        elif not isinstance(value, str):
            raise ConfigError(f"protocol key '{key}' must be a string{where}")
    return Protocol(**data)
