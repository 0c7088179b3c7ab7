"""Sending files to the Hugging Face Hub: one path for datasets and models.

What is sent is an explicit list of files (never "the folder"), a folder that
holds anything that looks like a credential is refused before any request,
and the token (from ``HF_TOKEN`` or the cached ``hf auth login``) is handed to
``huggingface_hub`` only: it is never printed, logged or written, and it is
scrubbed from error messages.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from leapt.config import ConfigError
from leapt.redact import MASK, has_url_credentials, redact_urls

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
    "token.json",
    "hf_token",
    "*_token",
    "*-token",
    "*_token.json",
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
#: files whose text may hold a URL with credentials in it (a git remote, ``url = https://u:p@..``)
URL_CONFIG_FILES = (".git/config",)
#: a file is scanned in blocks of this size, each read with the end of the one before
SCAN_CHUNK = 8 * 1024 * 1024
#: what a block keeps of the one before, so that a URL cut by a block boundary is found
_URL_OVERLAP = 4096
#: files that are not text (weights, data): scanned for the token, not for URLs in text
_BINARY_SUFFIXES = (".safetensors", ".parquet", ".bin", ".model", ".arrow")


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
        rel = path.relative_to(folder)
        if any(fnmatch.fnmatch(name, pattern) for pattern in SECRET_PATTERNS) or (
            path.is_dir() and name in SECRET_DIRS
        ):
            return rel
        url_config = rel.as_posix().lower().endswith(URL_CONFIG_FILES) and path.is_file()
        if url_config and _credential_in_file(path, b"", urls=True):
            return rel
    return None


def _blocks(path: Path, overlap: int) -> Iterator[bytes]:
    """The file in blocks of :data:`SCAN_CHUNK` bytes, each preceded by ``overlap`` bytes of the last."""
    tail = b""
    with path.open("rb") as handle:
        while block := handle.read(SCAN_CHUNK):
            window = tail + block
            yield window
            tail = window[-overlap:] if overlap > 0 else b""


def _credential_in(text: bytes | str, needle: bytes | str, urls: bool) -> str | None:
    """What credential ``text`` holds: the token (``needle``, if not empty), a URL's, or None."""
    if needle and needle in text:
        return "your Hub token"
    if urls:
        decoded = text.decode("latin-1") if isinstance(text, bytes) else text
        if has_url_credentials(decoded):
            return "a URL with a user or password in it"
    return None


def _credential_in_file(path: Path, needle: bytes, urls: bool) -> str | None:
    """:func:`_credential_in` over a whole file of any size, read in overlapping blocks."""
    overlap = max(len(needle) - 1, _URL_OVERLAP if urls else 0)
    for window in _blocks(path, overlap):
        if found := _credential_in(window, needle, urls):
            return found
    return None


def _leaves(folder: Path, rel: str) -> bool:
    """Whether ``folder/rel`` is (or runs through) a symlink that points outside ``folder``."""
    root = folder.resolve()
    return not (folder / rel).resolve().is_relative_to(root)


def check_publishable(
    folder: Path,
    files: Sequence[str],
    token: str | None,
    generated: Mapping[str, str] | None = None,
) -> None:
    """Refuse anything that would send or show a credential, before any request.

    That is: a folder holding a file that looks like a credential, a file to
    send that is a link leaving the folder, and a file to send or a generated
    text (card, eval results) that contains the token or, for text, a URL with
    a user or password in it.  Every file is read in full, in blocks.
    """
    secret = find_secret(folder)
    if secret is not None:
        raise PublishError(
            f"refusing to publish {folder}: {secret} looks like a credential file; "
            "move it out of the folder first"
        )
    for rel in files:
        if _leaves(folder, rel):
            raise PublishError(
                f"refusing to publish {folder}: {rel} is a link to a file outside the folder; "
                "copy the file in instead"
            )
    needle = token.encode() if token else b""
    for rel in files:
        text = not rel.lower().endswith(_BINARY_SUFFIXES)
        if found := _credential_in_file(folder / rel, needle, urls=text):
            raise PublishError(f"refusing to publish {folder}: {rel} contains {found}")
    for rel, content in (generated or {}).items():
        if found := _credential_in(content, token or "", urls=True):
            raise PublishError(
                f"refusing to publish {folder}: the generated {rel} would contain {found} "
                "(from the training record or results it is made of)"
            )


def error_reason(exc: BaseException, token: str | None) -> str:
    """The first line of an error, with the token (if it appears) and URL credentials masked."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return redact_urls(text.replace(token, MASK) if token else text)


def _staged(folder: Path, files: Sequence[str], generated: Mapping[str, str], stage: Path) -> None:
    """``stage`` holding exactly what is sent: links to ``files`` and the ``generated`` texts.

    ``upload_folder`` sends a folder; the checkpoint's own folder also holds
    what must stay local (its TRL README, logs, traces), and the card sent is
    not the one on disk, so the commit is made from this folder instead.
    """
    for rel in files:
        target = stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to((folder / rel).resolve())
    for rel, text in generated.items():
        target = stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


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
    """One ``HfApi.upload_folder`` commit of ``files`` (relative to ``folder``) and ``generated`` texts.

    Only the listed files are sent (they are the commit's ``allow_patterns``);
    remote files matching a ``replace`` pattern that this commit does not
    rewrite are deleted (``delete_patterns``: weight shards, data files or
    eval results of an earlier upload).  Returns the repository URL.
    ``context`` (e.g. the config key that asked for the upload) is added to
    error messages.
    """
    from huggingface_hub import HfApi

    token = hub_token()
    if not token:
        raise PublishError(
            f"publishing to {repo_id!r}{context} needs a Hub token: export HF_TOKEN or run "
            "`hf auth login`"
        )
    check_publishable(folder, files, token, generated)
    api = HfApi(endpoint=hub_endpoint(), token=token)
    sent = [*files, *generated]
    try:
        with tempfile.TemporaryDirectory(prefix="leapt-publish-") as stage:
            _staged(folder, files, generated, Path(stage))
            url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
            api.upload_folder(
                repo_id=repo_id,
                repo_type=repo_type,
                folder_path=stage,
                allow_patterns=[glob.escape(rel) for rel in sent],
                delete_patterns=list(replace) or None,
                commit_message=commit_message,
            )
    except Exception as exc:  # network, auth and Hub errors alike: report, keep the local files
        raise PublishError(
            f"could not publish {folder} to the Hub {repo_type} {repo_id!r}{context}: "
            f"{error_reason(exc, token)}; the local files are complete, rerun to retry"
        ) from exc
    return str(url)
