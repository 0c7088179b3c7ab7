"""One writer per output folder: an ``flock``-ed lock file that names its holder.

Two processes appending to one ``traces.jsonl`` run the same problems twice and
can cut each other's lines; two trainings in one ``output_dir`` overwrite each
other's checkpoints.  So every command that writes a run folder holds
:data:`LOCK_NAME` in it while it runs.

``fcntl.flock`` does the locking: the kernel releases it when its holder ends
in any way (``kill -9`` included), so a lock is never left held by a dead
process.  The file also records who holds it (PID, host, command, start time)
for the one-line refusal a second process prints.  A file left behind by a
killed holder is unlocked: the next run takes it over and warns, naming the
dead holder.  Releasing unlinks the file, so a finished run leaves nothing
behind; a waiter that opened the file before the unlink notices (the path no
longer names the inode it locked) and opens it again.

Folders nest (``leapt eval`` writes ``ROOT/<benchmark>/<method>/``), so a lock
also refuses while a folder above it is held by another process: ``leapt
infer`` into an eval's method folder waits for that eval, whichever started
first (the eval locks each of its run folders too).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from leapt.config import ConfigError
from leapt.redact import redact_urls

logger = logging.getLogger(__name__)

#: the lock file inside a locked folder
LOCK_NAME = ".leapt.lock"


def holder_info() -> dict[str, object]:
    """Who this process is, as written into the lock file (URL credentials left out)."""
    program = "leapt" if "leapt" in Path(sys.argv[0]).parts else sys.argv[0]
    command = shlex.join([program, *sys.argv[1:]])
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": redact_urls(command),  # a URL's secret on the command line stays out
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def describe(holder: dict | None) -> str:
    """``PID 123 on host h (leapt infer ..., started ...)`` for a message."""
    if not holder:
        return "a process that has not recorded itself yet"
    return (
        f"PID {holder.get('pid')} on host {holder.get('host')} "
        f"({holder.get('command')}, started {holder.get('started')})"
    )


def _refuse_if_held_above(folder: Path) -> None:
    """Raise ConfigError when a folder above ``folder`` is locked by another process.

    Probing a free lock with a shared, non-blocking ``flock`` takes nothing
    from anyone; a lock this process holds itself (an eval's root, above the
    run folders it locks) is its own, not a conflict.
    """
    for parent in folder.resolve().parents:
        path = parent / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            holder = _read_holder(fd)
            if holder and holder.get("pid") == os.getpid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(
                    f"{folder} lies inside {parent}, which is in use by another run: "
                    f"{describe(holder)}; wait for it to end or use another output folder"
                ) from None
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _read_holder(fd: int) -> dict | None:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    try:
        holder = json.loads(data)
    except ValueError:
        return None
    return holder if isinstance(holder, dict) else None


class FolderLock:
    """Exclusive lock on a folder for the life of a ``with`` block (or acquire/release).

    ``FolderLock(folder).acquire()`` creates the folder if needed and raises
    :class:`ConfigError` naming the holder when another process has it.
    Not re-entrant: one process locks a folder once.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        self._created: list[Path] = []  # folders made for the lock, deepest first

    def acquire(self) -> FolderLock:
        _refuse_if_held_above(self.folder)
        self._created = [p for p in [self.folder, *self.folder.parents] if not p.exists()]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ConfigError(f"output folder {self.folder} is a file, not a folder") from None
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise ConfigError(
                    f"{self.folder} is in use by another run: {describe(holder)}; wait for it "
                    "to end or use another output folder"
                ) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder released (and unlinked) it meanwhile: lock the new file
        previous = _read_holder(fd)
        if previous and previous.get("pid") != os.getpid():
            logger.warning(
                "taking over the lock of %s in %s: that process has ended without releasing it",
                describe(previous),
                self.folder,
            )
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(holder_info()) + "\n").encode("utf-8"))
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Unlink the lock file, then unlock (waiters re-open a new file; see the module doc).

        Folders created for the lock that are still empty go too: a run refused
        before it wrote anything leaves the disk as it found it.
        """
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None
        for folder in self._created:
            try:
                folder.rmdir()
            except OSError:
                break

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
