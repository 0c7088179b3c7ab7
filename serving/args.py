"""Options of ``leapt serve`` beyond the engine's (which come from ``inference.args``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from leapt.config import ConfigError, check_at_least, check_choice
from serving.requests import N1_MODES


@dataclass
class ServeArguments:
    """Where the server listens, how much it queues, who may call it."""

    host: str = field(
        default="127.0.0.1",
        metadata={"help": "address to bind; 0.0.0.0 exposes the server to the network"},
    )
    port: int = field(default=8000, metadata={"help": "TCP port"})
    server_api_key_env: str | None = field(
        default=None,
        metadata={
            "help": "environment variable holding the key clients must send as "
            "'Authorization: Bearer KEY' (401 otherwise; the key is never logged). "
            "(default: none, no key needed; api_key_env is the openai backend's key, for the upstream server)"
        },
    )
    max_pending: int = field(
        default=256,
        metadata={
            "help": "requests accepted at once (running + queued); beyond it a request gets "
            "HTTP 429 with Retry-After"
        },
    )
    retry_after: int = field(
        default=5, metadata={"help": "seconds a refused (429) client is told to wait"}
    )
    timeout_seconds: float = field(
        default=3600.0,
        metadata={"help": "a request still unanswered after this many seconds is cancelled (504)"},
    )
    max_body_bytes: int = field(
        default=1 << 20, metadata={"help": "largest request body accepted (413 beyond)"}
    )
    max_paths: int = field(
        default=64, metadata={"help": "most paths (n) one request may ask for (400 beyond)"}
    )
    n1: str = field(
        default="voted",
        metadata={
            "help": "what a request with n=1 gets back from the server's n paths: 'voted' (the "
            "path holding the majority answer) or 'all' (every path as a choice); a request "
            "may choose with leapt.n1"
        },
    )

    def __post_init__(self) -> None:
        check_at_least(self, 1, "max_pending", "max_body_bytes", "max_paths")
        check_at_least(self, 0, "retry_after", "timeout_seconds")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"'port' must be in [0, 65535], got {self.port}")
        check_choice("n1", self.n1, N1_MODES)
