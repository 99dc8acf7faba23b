"""Crash-safe file primitives: every file appears under its final name only when complete.

A file is written under ``<root>/_tmp/``, flushed and fsynced, then linked (or renamed) into
its final name, and the directory holding it is fsynced. Newly created directories are fsynced
into their parents. A crash at any point leaves either no file or a complete one, plus debris
in ``_tmp/`` that :func:`clean_tmp` removes on the next start.

A writer publishing many files at once may collect the directories to fsync in a
:class:`DirSync` and fsync each one once, after all its links: the files are complete under
their final names either way, and the links are durable once :meth:`DirSync.sync` returns.

Every ``OSError`` from the disk is translated into :class:`~recorder.errors.StorageError`
with a message that says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from recorder.errors import StorageError
from recorder.layout import TMP_DIR

__all__ = [
    "DirSync",
    "atomic_write_bytes",
    "clean_tmp",
    "fsync_dir",
    "make_dirs",
    "publish_file",
    "storage_errors",
    "tmp_path",
]


@contextlib.contextmanager
def storage_errors(action: str, path: Path) -> Iterator[None]:
    """Translate an ``OSError`` raised inside the block into a :class:`StorageError`."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:
        raise storage_error(action, path, exc) from exc


def storage_error(action: str, path: Path, exc: OSError) -> StorageError:
    """Return the :class:`StorageError` explaining ``exc``, raised while ``action`` ``path``."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        advice = "the disk (or its quota) is full: free space or record elsewhere, then restart"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "the directory is not writable: fix its permissions or choose another one"
    else:
        advice = "check the disk and the directory, then restart"
    err = StorageError(exc.errno or 0, f"{action} {path} failed ({exc.strerror or exc}): {advice}")
    err.filename = str(path)
    return err


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (creations, renames, deletions) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirSync:
    """Directories whose new entries must be made durable, each fsynced once by :meth:`sync`."""

    def __init__(self) -> None:
        self._pending: dict[Path, None] = {}

    def add(self, directory: Path) -> None:
        """Remember ``directory`` for the next :meth:`sync`."""
        self._pending[directory] = None

    def __len__(self) -> int:
        return len(self._pending)

    def sync(self) -> None:
        """Fsync every remembered directory, deepest first, then forget them."""
        for directory in sorted(self._pending, key=lambda d: len(d.parts), reverse=True):
            fsync_dir(directory)
        self._pending.clear()


def _sync_now_or_later(directory: Path, later: DirSync | None) -> None:
    if later is None:
        fsync_dir(directory)
    else:
        later.add(directory)


def make_dirs(path: Path, later: DirSync | None = None) -> None:
    """Create ``path`` and its missing parents, fsyncing each new entry into its parent (now,
    or in ``later``)."""
    missing: list[Path] = []
    cursor = path
    while not cursor.is_dir():
        missing.append(cursor)
        cursor = cursor.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir()
        _sync_now_or_later(directory.parent, later)


def tmp_path(root: Path, suffix: str) -> Path:
    """Return a fresh path under ``<root>/_tmp/`` (created if missing)."""
    tmp = root / TMP_DIR
    if not tmp.is_dir():
        make_dirs(tmp)
    return tmp / f"{secrets.token_hex(8)}{suffix}"


def publish_file(tmp: Path, final: Path, *, replace: bool, later: DirSync | None = None) -> bool:
    """Move the complete, fsynced file ``tmp`` to ``final`` and make the move durable (now,
    or when ``later`` is synced).

    With ``replace=False`` an existing ``final`` is left alone and ``False`` is returned
    (``tmp`` stays for the caller to deal with); otherwise ``True``.
    """
    if not final.parent.is_dir():
        make_dirs(final.parent, later)
    if replace:
        os.replace(tmp, final)
    else:
        try:
            os.link(tmp, final)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # The filesystem has no hard links: check, then rename (not atomic against a
            # concurrent writer of the same name, which the directory lock rules out).
            if final.exists():
                return False
            os.replace(tmp, final)
        else:
            os.unlink(tmp)
    _sync_now_or_later(final.parent, later)
    return True


def atomic_write_bytes(root: Path, final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` atomically, replacing any previous version.

    Raises:
        StorageError: the disk refused the write; ``final`` is unchanged.
    """
    with storage_errors("writing", final):
        tmp = tmp_path(root, final.suffix + ".tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            publish_file(tmp, final, replace=True)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def clean_tmp(root: Path) -> int:
    """Delete the debris a crash left in ``<root>/_tmp/``; return how many files went.

    Call it only when no writer uses ``_tmp/``: :func:`recorder.compaction.tidy` does.
    """
    tmp = root / TMP_DIR
    if not tmp.is_dir():
        return 0
    removed = 0
    for entry in tmp.iterdir():
        if entry.is_file() and not entry.name.startswith("."):  # not the compaction lock
            entry.unlink()
            removed += 1
    return removed
