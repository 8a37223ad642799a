"""Writing files and directories so that a reader never sees a partial one.

Every file goes to a temporary sibling, is flushed and fsynced, then renamed over the
target (``os.replace``): the target is either the old file or the complete new one.

**Permissions.** ``tempfile.mkstemp`` and ``mkdtemp`` create 0600 / 0700 whatever the
umask, so everything written through them used to be unreadable to colleagues on a
shared bench host. Here the temporary file is created with ``os.open(..., 0o666)`` and
the temporary directory with ``os.mkdir(..., 0o777)``: the kernel applies the process
umask, so under the usual umask 022 files are 0644 and directories 0755, and a user who
wants private files sets umask 077. The umask is never read or changed (``os.umask`` is
process-wide and racy in threads).
"""

from __future__ import annotations

import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

FILE_MODE = 0o666  # before the umask: 0644 under umask 022
DIRECTORY_MODE = 0o777  # before the umask: 0755 under umask 022
_ATTEMPTS = 100  # random names tried before giving up (a collision needs 2^48 bad luck)


def _sibling(path: Path, tag: str) -> Path:
    """A hidden, random name next to ``path``."""
    return path.parent / f".{path.name}.{tag}-{secrets.token_hex(6)}"


def _create_temporary_file(path: Path) -> tuple[int, Path]:
    """Create a new empty file next to ``path`` (mode 0666 less the umask); return its descriptor and name."""
    for _ in range(_ATTEMPTS):
        candidate = _sibling(path, "tmp")
        try:
            return os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` to write by name (``savefig``, ``torch.save``); then rename it over ``path``.

    The temporary file exists (empty, with the final permissions) when the block starts;
    on an exception it is removed and ``path`` is untouched.
    """
    path = Path(path)
    fd, tmp = _create_temporary_file(path)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomically(path: str | Path, data: bytes) -> None:
    """Write ``data`` through a temporary sibling and a rename: the file is either old or complete."""
    path = Path(path)
    fd, tmp = _create_temporary_file(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` through a temporary sibling and a rename: the file is either old or complete."""
    write_bytes_atomically(path, text.encode("utf-8"))


def make_temporary_directory(final: str | Path) -> Path:
    """Create an empty hidden directory next to ``final`` (mode 0777 less the umask) to build it in."""
    final = Path(final)
    for _ in range(_ATTEMPTS):
        candidate = _sibling(final, "tmp")
        try:
            os.mkdir(candidate, DIRECTORY_MODE)
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {final}")


def move_directory_into_place(built: Path, final: str | Path) -> None:
    """Put the complete directory ``built`` at ``final``, replacing what was there.

    A missing or empty ``final`` is replaced by one atomic rename. A non-empty one is
    first renamed aside (a hidden sibling), then ``built`` is renamed into place and the
    old one deleted: a reader sees the old directory or the new one, except for the
    instant between the two renames, when ``final`` is absent (POSIX has no portable
    atomic exchange of two directories). If the process dies in that instant the old
    directory survives under its hidden name.
    """
    final = Path(final)
    try:
        os.replace(built, final)  # atomic when final is missing or an empty directory
        return
    except OSError:
        if not final.is_dir() or not any(final.iterdir()):
            raise
    aside = _sibling(final, "old")
    os.rename(final, aside)
    try:
        os.rename(built, final)
    except BaseException:
        os.rename(aside, final)
        raise
    shutil.rmtree(aside, ignore_errors=True)


@contextmanager
def atomic_directory(final: str | Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``final`` to fill; on success it replaces ``final``, on an exception it is removed.

    An interrupted writer (an exception, Ctrl-C) leaves ``final`` as it was.
    """
    built = make_temporary_directory(final)
    try:
        yield built
        move_directory_into_place(built, final)
    except BaseException:
        shutil.rmtree(built, ignore_errors=True)
        raise


class OutputPathError(ValueError):
    """An output path that cannot be written (checked before any work is done)."""


def _probe_directory(directory: Path, target: Path) -> None:
    """Create and remove one hidden file in ``directory``: the real test of writability (root ignores mode bits)."""
    try:
        fd, probe = _create_temporary_file(directory / target.name)
    except OSError as error:
        raise OutputPathError(f"{target}: cannot write into {directory} ({error.strerror or error})") from None
    os.close(fd)
    probe.unlink(missing_ok=True)


def check_output_file(path: str | Path) -> Path:
    """Refuse an output file that cannot be written: a directory, a missing or non-directory parent, an unwritable one."""
    path = Path(path)
    try:
        is_directory = path.is_dir()
    except OSError as error:  # a name too long, ...
        raise OutputPathError(f"{path}: cannot write ({error.strerror or error})") from None
    if is_directory:
        raise OutputPathError(f"{path}: is a directory, expected a file")
    parent = path.parent
    if not parent.exists():
        raise OutputPathError(f"{path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise OutputPathError(f"{path}: {parent} is not a directory")
    _probe_directory(parent, path)
    return path


def check_output_directory(path: str | Path) -> Path:
    """Refuse an output directory that cannot be created or written: a file in its place or on its path, an unwritable ancestor."""
    path = Path(path)
    existing = path
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except OSError as error:  # a name too long, ...
        raise OutputPathError(f"{path}: cannot write ({error.strerror or error})") from None
    if not existing.is_dir():
        raise OutputPathError(f"{path}: {existing} is not a directory" if existing != path else f"{path}: exists and is not a directory")
    _probe_directory(existing, path)
    return path
