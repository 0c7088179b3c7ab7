"""Publish a generated dataset directory to the Hugging Face Hub.

Used by ``leapt generate --push_to_hub`` and ``leapt publish --dataset``.
Only ``stats.json``, the parquet data and a card rendered from the stats are
sent (raw traces stay local); the token handling and the refusal of folders
holding credentials live in :mod:`leapt.hub`.
"""

from __future__ import annotations

from pathlib import Path

#: data files of a dataset directory; an upload replaces the remote ones
DATA_PATTERN = "data/*.parquet"


def dataset_files(folder: Path) -> list[str]:
    """The files of a generated dataset that are published, relative to ``folder``."""
    from data_gen.output import STATS_FILE, data_files

    return [STATS_FILE, *(p.relative_to(folder).as_posix() for p in data_files(folder))]


def dataset_card(folder: Path, repo_id: str) -> str:
    """The card from ``stats.json``, named as the local card was (else after the repo)."""
    import json

    from huggingface_hub import DatasetCard

    from data_gen.card import render_card
    from data_gen.output import STATS_FILE

    name = repo_id.split("/")[-1]
    if (folder / "README.md").is_file():
        name = DatasetCard.load(folder / "README.md").data.get("pretty_name") or name
    stats = json.loads((folder / STATS_FILE).read_text(encoding="utf-8"))
    return render_card(stats, name)


def push_dataset(
    folder: str | Path, repo_id: str, private: bool = False, key: str = "push_to_hub"
) -> str:
    """Create (if needed) the dataset repo ``repo_id`` and upload ``folder``; returns its URL.

    Failures become a one-line :class:`leapt.hub.PublishError` naming ``key``.
    """
    from leapt.hub import upload

    folder = Path(folder)
    url = upload(
        folder,
        repo_id,
        repo_type="dataset",
        files=dataset_files(folder),
        generated={"README.md": dataset_card(folder, repo_id)},
        replace=[DATA_PATTERN],
        private=private,
        commit_message="Upload LeaP SFT dataset made with leapt generate",
        context=f" (key '{key}')" if key else "",
    )
    print(f"published {folder} to {url}")
    return url
