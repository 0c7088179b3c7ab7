"""File writes that a reader, or a run killed midway, never sees half done.

Every results and marker file goes through :func:`atomic_path`: the content
is written to a unique hidden sibling (two writers never share a temp name),
flushed to disk, renamed over the target in one step and the folder's entry
flushed too, so after a crash the file is either the old one or the new one,
never a prefix of it.  :func:`read_marker` is the reading side for "finished"
markers: one that does not parse counts as absent.

``python -m leapt.files finished FILE`` exits 0 when FILE is a finished
marker (a JSON object), 1 otherwise, so shell recipes (the Makefile) ask the
same question leapt asks instead of testing that the file exists.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path


def fsync_dir(folder: str | Path) -> None:
    """Flush ``folder``'s entries (a rename into it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory; the rename still happened
        pass
    finally:
        os.close(fd)


def _umask_by_swap() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: read once at import (normally before any thread starts), for systems without /proc
_UMASK_AT_IMPORT = _umask_by_swap()


def _umask() -> int:
    """The process umask, read without setting it: ``os.umask`` can only be read by setting it,
    and a file another thread (a server's, a request pool's) created meanwhile would get the
    temporary mask."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return _UMASK_AT_IMPORT


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a unique temp path beside ``path``; on a clean exit it replaces ``path``.

    For writers that create the file themselves (``savefig``, ``to_parquet``):
    they write to the yielded path.  An exception inside the block removes the
    temp file and leaves ``path`` as it was.  The temp name keeps the suffix of
    ``path``, since some writers pick the format by it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix
    )
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make results private to the writer
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` in one step (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` (UTF-8) in one step (see :func:`atomic_path`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def read_marker(path: str | Path) -> dict | None:
    """The JSON object in marker file ``path``, or None when it is absent or does not parse.

    A marker says a stage finished; a truncated or garbled one (a crash from
    before writes were atomic, a disk error) must read as "not finished", so
    the stage runs again instead of being skipped forever.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m leapt.files finished FILE``: exit 0 when FILE is a finished marker, else 1."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "finished":
        print("usage: python -m leapt.files finished FILE", file=sys.stderr)
        return 2
    return 0 if read_marker(args[1]) is not None else 1


if __name__ == "__main__":
    sys.exit(main())
