"""Sending files to the Hugging Face Hub: one path for datasets and models.

What is sent is an explicit list of files (never "the folder"), a folder that
holds anything that looks like a credential is refused before any request,
and the token (from ``HF_TOKEN`` or the cached ``hf auth login``) is handed to
``huggingface_hub`` only: it is never printed, logged or written, and it is
scrubbed from error messages.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from leapt.config import ConfigError

#: file names (matched case-insensitively against every file and folder in a
#: published tree) that hold or may hold credentials
SECRET_PATTERNS = (
    ".env",
    ".env.*",
    "*.env",
    ".netrc",
    "_netrc",
    ".git-credentials",
    "token",
    "*token*.txt",
    "*.token",
    "stored_tokens",
    "credentials",
    "credentials.json",
    ".huggingface",
    "id_rsa*",
    "id_ed25519*",
    "*.pem",
    "*.key",
)
#: folders that only ever hold credentials
SECRET_DIRS = (".ssh", ".aws", ".gnupg")
#: files larger than this are weights or data: not scanned for the token's text
_SCAN_LIMIT = 10 * 1024 * 1024


class PublishError(ConfigError):
    """Publishing was refused or failed; the local files are complete and it can be retried."""


def hub_token() -> str | None:
    """The token ``huggingface_hub`` would use: ``HF_TOKEN`` first, else the cached login."""
    from huggingface_hub import get_token

    return get_token()


def hub_endpoint() -> str | None:
    """``HF_ENDPOINT`` read now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def check_push_target(repo_id: str, key: str) -> None:
    """Refuse a malformed repo id or a missing token up front, not after the work to push.

    ``leapt generate --push_to_hub`` would otherwise find out after a whole
    harvest.  Whether the repo can be written is only known when pushing.
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise PublishError(
            f"'{key}' {repo_id!r} is not a Hub repo id (NAME or ORG/NAME of letters, digits, "
            "'-', '_', '.')"
        ) from None
    if not hub_token():
        raise PublishError(
            f"'{key}' {repo_id!r} needs a Hub token: export HF_TOKEN or run `hf auth login`"
        )


def find_secret(folder: Path) -> Path | None:
    """The first file or folder under ``folder`` that looks like a credential, else None."""
    for path in sorted(folder.rglob("*")):
        name = path.name.lower()
        if any(fnmatch.fnmatch(name, pattern) for pattern in SECRET_PATTERNS) or (
            path.is_dir() and name in SECRET_DIRS
        ):
            return path.relative_to(folder)
    return None


def check_publishable(folder: Path, files: Sequence[str], token: str | None) -> None:
    """Refuse a folder with a credential in it, or a file to send that contains the token."""
    secret = find_secret(folder)
    if secret is not None:
        raise PublishError(
            f"refusing to publish {folder}: {secret} looks like a credential file; "
            "move it out of the folder first"
        )
    if not token:
        return
    needle = token.encode()
    for rel in files:
        path = folder / rel
        if path.stat().st_size <= _SCAN_LIMIT and needle in path.read_bytes():
            raise PublishError(f"refusing to publish {folder}: {rel} contains your Hub token")


def error_reason(exc: BaseException, token: str | None) -> str:
    """The first line of an error, with the token (if it appears) masked."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.replace(token, "***") if token else text


def upload(
    folder: Path,
    repo_id: str,
    *,
    repo_type: str,
    files: Sequence[str],
    generated: Mapping[str, str],
    replace: Sequence[str] = (),
    private: bool | None = None,
    commit_message: str,
    context: str = "",
) -> str:
    """One commit holding ``files`` (paths relative to ``folder``) and ``generated`` texts.

    Remote files matching a ``replace`` pattern that this commit does not
    rewrite are deleted (e.g. weight shards or data files of an earlier
    upload).  Returns the repository URL.  ``context`` (e.g. the config key
    that asked for the upload) is added to error messages.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    token = hub_token()
    if not token:
        raise PublishError(
            f"publishing to {repo_id!r}{context} needs a Hub token: export HF_TOKEN or run "
            "`hf auth login`"
        )
    check_publishable(folder, files, token)
    api = HfApi(endpoint=hub_endpoint(), token=token)
    sent = set(files) | set(generated)
    ops: list = [
        CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(folder / rel)) for rel in files
    ]
    ops += [
        CommitOperationAdd(path_in_repo=rel, path_or_fileobj=text.encode())
        for rel, text in generated.items()
    ]
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        if replace:
            try:
                remote = api.list_repo_files(repo_id, repo_type=repo_type)
            except RepositoryNotFoundError:
                remote = []
            ops += [
                CommitOperationDelete(path_in_repo=rel)
                for rel in remote
                if rel not in sent and any(fnmatch.fnmatch(rel, p) for p in replace)
            ]
        api.create_commit(repo_id, ops, repo_type=repo_type, commit_message=commit_message)
    except Exception as exc:  # network, auth and Hub errors alike: report, keep the local files
        raise PublishError(
            f"could not publish {folder} to the Hub {repo_type} {repo_id!r}{context}: "
            f"{error_reason(exc, token)}; the local files are complete, rerun to retry"
        ) from exc
    return str(url)
