"""What may be shown of a model, dataset or URL a user gave: no credentials, no local paths.

A URL may carry a user and password or key (``http://user:KEY@host/v1``,
``https://user:TOKEN@host/data.jsonl``): it still works when passed to a
library, but must never reach a terminal, a log, a card or a run record.
Every place that shows or records such a value passes it (or the whole
message holding it) through :func:`redact_urls`.  Cards name a base model or
dataset with :func:`public_name`: a local path says nothing to a reader on
the Hub and tells them about the author's disk.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: ``scheme://userinfo@host``: the userinfo runs to the last ``@`` before the host, and holds
#: no character a URL cannot (quotes, brackets, whitespace), so JSON or prose around a URL is
#: never taken for part of it
_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s\"'<>\\{}|^`\[\]]+)"
    r"@(?=[A-Za-z0-9\[])"
)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: a Hub repo id: ``name`` or ``org/name``
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
MASK = "***"


def redact_urls(text: str) -> str:
    """``text`` with the user/password part of every URL in it replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def has_url_credentials(text: str) -> bool:
    """Whether ``text`` holds a URL with a user or password in it (a masked one does not count)."""
    return any(m["userinfo"] != MASK for m in _USERINFO.finditer(text))


def is_hub_id(ref: str | None) -> bool:
    """Whether ``ref`` names a Hub repo rather than a local path or a URL."""
    return bool(ref) and _HUB_ID.fullmatch(ref) is not None and not Path(ref).exists()


def public_name(ref: str) -> str:
    """How a card names a base model or dataset: a Hub id as is, a path by its last part.

    A URL is shown without its credentials.
    """
    if _URL.match(ref):
        return redact_urls(ref)
    if is_hub_id(ref):
        return ref
    path = Path(ref).expanduser()
    name = path.name if path.name not in ("", "..") else path.resolve().name
    return name or ref


def redact_values(value: Any) -> Any:
    """A record about to be written (dicts, lists, strings) with every string's URLs redacted."""
    if isinstance(value, str):
        return redact_urls(value)
    if isinstance(value, dict):
        return {key: redact_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_values(item) for item in value]
    return value
