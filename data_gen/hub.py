"""Publish a generated dataset directory to the Hugging Face Hub.

The token comes from the ``HF_TOKEN`` environment variable or the cached
``huggingface-cli login``; it is handed to ``huggingface_hub`` and never
printed, logged or written into the card.  Raw traces stay local: only the
dataset files, ``stats.json`` and the card are uploaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from leapt.config import ConfigError

#: files of a dataset directory that are published
UPLOAD_PATTERNS = ["README.md", "stats.json", "data/*.parquet"]


class PublishError(ConfigError):
    """Publishing failed; the dataset on disk is complete and the push can be retried."""


def failure_reason(exc: BaseException, token: str | None) -> str:
    """First line of a Hub failure with the token masked (servers may echo the header back)."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return reason.replace(token, "***") if token else reason


def push_dataset(folder: str | Path, repo_id: str, private: bool = False) -> str:
    """Create (if needed) the dataset repo ``repo_id`` and upload ``folder``; returns its URL.

    ``HF_ENDPOINT`` selects another Hub server (e.g. a mirror).  Failures become
    a one-line :class:`PublishError` that never includes the token.
    """
    from huggingface_hub import HfApi

    token = os.environ.get("HF_TOKEN") or None
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=str(folder),
            allow_patterns=UPLOAD_PATTERNS,
            delete_patterns=["data/*.parquet"],  # replace, never accumulate, the data files
            commit_message="Upload LeaP SFT dataset made with leapt generate",
        )
    except Exception as exc:  # network, auth and Hub errors alike: report, keep the local data
        reason = failure_reason(exc, token)
        raise PublishError(
            f"could not publish {folder} to the Hub dataset {repo_id!r} (key 'push_to_hub'): "
            f"{reason}; the local dataset is complete, rerun to retry"
        ) from exc
    print(f"published {folder} to {url}")
    return str(url)
