"""The text the engine writes into a path: prompts, summary triggers, peer blocks.

All wording lives in ``protocol.yaml`` (package data) so it can be changed
without touching code; ``--protocol FILE`` overrides any subset of the keys.
Tag names are configurable but default to ``<summarize>``/``<comment>`` because
published LeaP-T checkpoints were trained on exactly those.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leapt.config import ConfigError, load_yaml

DEFAULT_PROTOCOL_FILE = Path(__file__).with_name("protocol.yaml")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Protocol:
    """Tag names and sentences of one LeaP run (see ``protocol.yaml`` for their roles)."""

    summarize_tag: str
    comment_tag: str
    think_end: str
    math_instruction: str
    choice_instruction: str
    summary_trigger: str
    reflection_cue: str
    no_peers_text: str
    peer_label: str
    forced_answer_math: str
    forced_answer_choice: str

    @property
    def summary_open(self) -> str:
        return f"<{self.summarize_tag}>"

    @property
    def summary_close(self) -> str:
        return f"</{self.summarize_tag}>"

    def user_message(self, problem: str, options: list[str] | None, task: str) -> str:
        """The first user turn: the problem plus the answer-format instruction."""
        if task == "choice":
            lettered = "\n".join(f"{LETTERS[i]}) {opt}" for i, opt in enumerate(options or []))
            return self.choice_instruction.format(problem=problem, options=lettered)
        return self.math_instruction.format(problem=problem, options="")

    def build_prompt(
        self, tokenizer: Any, problem: str, options: list[str] | None, task: str
    ) -> str:
        """The chat-templated prompt text, ending where the assistant starts writing."""
        messages = [{"role": "user", "content": self.user_message(problem, options, task)}]
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        return messages[0]["content"] + "\n\n"

    def summary_request(self) -> str:
        """Engine text that opens a LeaP block: the trigger sentence and ``<summarize>``."""
        return self.summary_trigger + self.summary_open

    def peer_block(self, summaries: list[str]) -> str:
        """`` <comment> Peer 1: "…"\\nPeer 2: "…" </comment>``, or the explicit no-peers block."""
        if summaries:
            body = "\n".join(
                f'{self.peer_label.format(i=i)}: "{s}"' for i, s in enumerate(summaries, start=1)
            )
        else:
            body = self.no_peers_text
        return f" <{self.comment_tag}> {body} </{self.comment_tag}>"

    def forced_answer(self, task: str) -> str:
        """Suffix that closes the thinking and opens the final answer of a budget-exhausted path."""
        template = self.forced_answer_choice if task == "choice" else self.forced_answer_math
        return template.format(think_end=self.think_end)


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
    for key, value in data.items():
        if not isinstance(value, str):
            raise ConfigError(f"protocol key '{key}' must be a string (file {path})")
    return Protocol(**data)
