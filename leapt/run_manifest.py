"""What made a run folder (``leapt_run.json``), and the refusal to continue it with anything else.

A folder is resumed ("the same run, continued") only when everything that
shaped its results is the same as before: the model (a Hub id with its
revision, or a local folder's path and a hash of its config and weight files),
dtype, backend, context length, the protocol's content, the problem source,
the method settings and each problem's text.  :func:`check_manifest` compares a
new run's manifest with the recorded one and raises :class:`ConfigError`
naming the first key that differs and both values; nothing is written first.

The comparison takes the keys the two manifests share, depth first in the
current manifest's order: a key one side lacks is unknown, not different.
That is what lets a folder from an older version (no manifest; what its traces
record is derived instead, see ``inference.run_folder``) and a manifest from a
newer one (more keys) still resume when everything known matches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from leapt.config import ConfigError
from leapt.files import atomic_write_text

#: the manifest file of a run folder
MANIFEST_NAME = "leapt_run.json"
#: files whose names and sizes identify a model folder's weights
WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.pt", "*.pth", "*.gguf")


def digest(data: bytes | str) -> str:
    """A short content hash (sha256, 16 hex digits): enough to tell two inputs apart."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:16]


def json_digest(value: Any) -> str:
    """:func:`digest` of a JSON value, independent of key order."""
    return digest(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The recorded manifest of ``folder``, or None when it has none."""
    path = Path(folder) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc}); it records what made the folder: restore it, "
            "or use another output folder"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def write_manifest(folder: str | Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` atomically (a reader never sees half of it)."""
    text = json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n"
    atomic_write_text(Path(folder) / MANIFEST_NAME, text)


def differences(recorded: Any, current: Any, key: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(dotted key, recorded, current) of every shared key whose values differ, in order.

    A key only one side has is unknown to the other (a newer version records more), not a
    difference; but two non-empty records with no key in common describe different kinds of
    thing (a Hub id against a local folder), and differ as a whole.
    """
    if isinstance(recorded, dict) and isinstance(current, dict):
        if recorded and current and not set(recorded) & set(current):
            yield key, recorded, current
            return
        for name, value in current.items():
            if name in recorded:
                yield from differences(recorded[name], value, f"{key}.{name}" if key else name)
    elif recorded != current:
        yield key, recorded, current


def check_manifest(
    folder: str | Path, recorded: dict[str, Any] | None, current: dict[str, Any]
) -> None:
    """Refuse to continue ``folder`` (made as ``recorded``) with the inputs of ``current``."""
    if recorded is None:
        return
    for key, old, new in differences(recorded, current):
        raise ConfigError(
            f"{folder} was made with {key} {old!r}, not {new!r} (key '{key.rsplit('.', 1)[-1]}')"
            "; use another output folder, or the old settings to continue it"
        )


def files_fingerprint(root: Path, files: list[Path]) -> str:
    """Hash of the names (relative to ``root``) and sizes of ``files``: not their bytes, since
    weights and datasets are gigabytes, and a re-saved or regenerated one changes sizes."""
    return json_digest(
        sorted([p.relative_to(root).as_posix(), p.stat().st_size] for p in files if p.is_file())
    )


def folder_fingerprint(folder: Path, patterns: tuple[str, ...]) -> str:
    """:func:`files_fingerprint` of ``folder``'s files matching ``patterns`` (hidden ones, such
    as a lock or a temp file being written, are not content)."""
    files = {
        p
        for pattern in patterns
        for p in folder.glob(pattern)
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }
    return files_fingerprint(folder, list(files))


def model_identity(name_or_path: str, revision: str | None = None) -> dict[str, Any]:
    """A model as a run folder records it.

    A local folder: its resolved path and a hash of its ``config.json`` and its
    weight files' names and sizes.  A Hub id: the id and the revision, when it
    is known without the network (given, or the commit the local Hugging Face
    cache resolved ``main`` to); an unknown revision is left out, so it is not
    compared (see the module doc).
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        config = path / "config.json"
        return {
            "path": str(path.resolve()),
            "config": digest(config.read_bytes()) if config.is_file() else None,
            "weights": folder_fingerprint(path, WEIGHT_PATTERNS),
        }
    identity: dict[str, Any] = {"id": name_or_path}
    commit = revision if revision and revision != "main" else cached_revision(name_or_path)
    if commit:
        identity["revision"] = commit
    return identity


def cached_revision(repo_id: str, repo_type: str = "model", ref: str = "main") -> str | None:
    """The commit ``ref`` of ``repo_id`` points to in the local Hugging Face cache, or None."""
    try:
        from huggingface_hub import constants
        from huggingface_hub.file_download import repo_folder_name

        folder = Path(constants.HF_HUB_CACHE) / repo_folder_name(
            repo_id=repo_id, repo_type=repo_type
        )
        return (folder / "refs" / ref).read_text().strip() or None
    except (OSError, ValueError, ImportError):
        return None


def data_identity(name_or_path: str, files: list[Path] | None = None) -> dict[str, Any]:
    """A dataset as a training folder records it: a local file or folder by its resolved path
    and the names and sizes of ``files`` (the ones read), a Hub id by id (and cached revision,
    when known)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        root = path if path.is_dir() else path.parent
        return {"path": str(path.resolve()), "files": files_fingerprint(root, files or [path])}
    identity: dict[str, Any] = {"id": name_or_path}
    if commit := cached_revision(name_or_path, "dataset"):
        identity["revision"] = commit
    return identity
