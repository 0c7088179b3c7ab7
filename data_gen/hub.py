"""Publish a generated dataset directory to the Hugging Face Hub.

The token comes from the ``HF_TOKEN`` environment variable or the cached
``huggingface-cli login``; it is handed to ``huggingface_hub`` and never
printed, logged or written into the card.  Raw traces stay local: only the
dataset files, ``stats.json`` and the card are uploaded.
"""

from __future__ import annotations

import os
from pathlib import Path

#: files of a dataset directory that are published
UPLOAD_PATTERNS = ["README.md", "stats.json", "data/*.parquet"]


def push_dataset(folder: str | Path, repo_id: str, private: bool = False) -> str:
    """Create (if needed) the dataset repo ``repo_id`` and upload ``folder``; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=os.environ.get("HF_TOKEN") or None)
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        allow_patterns=UPLOAD_PATTERNS,
        commit_message="Upload LeaP SFT dataset made with leapt generate",
    )
    print(f"published {folder} to {url}")
    return str(url)
