"""Private files written whole or not at all: every file the tool writes goes through here.

Files are 0o600 and directories 0o700 (they hold provider answers and crawled pages). A
file is written to a temporary name beside its target and renamed over it when complete, so
a failure, Ctrl-C or ``kill -9`` leaves the old file or the new, never a part. A run's outputs
go through ``Staging``: all of them are written first, then moved into place together, never
outside the directory they belong in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TextIO

FILE_MODE = 0o600
DIR_MODE = 0o700
# Temporary names of ``write_atomic``: a ``kill -9`` can leave one, ``ResultCache.sweep`` removes them.
TEMP_PREFIX = ".tmp-"
# Directories of ``Staging`` inside an output directory; a killed run's are removed by the next.
STAGING_PREFIX = ".crawl4ai-llm-docs-staging-"


def mkdir_private(path: Path) -> list[Path]:
    """Create ``path`` and missing parents as 0o700 (``mkdir(parents=True)`` gives parents the
    default mode); existing directories are left as their owner set them. Returns the
    directories created, outermost first."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    created: list[Path] = []
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another run made it meanwhile
            directory.mkdir(mode=DIR_MODE)
            created.append(directory)
    return created


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, so best effort.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (0o600) so readers see the old file or the new, never a part."""
    fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_text(path: Path, *, mode: int = FILE_MODE) -> Iterator[TextIO]:
    """A text file that replaces ``path`` only when the ``with`` block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with open(fd, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


class PathRefusedError(OSError):
    """A file the run would write outside its directory, or over something that is not a
    file (a directory, or a file where a directory is needed)."""


def _contained(root: Path, path: Path) -> bool:
    """Whether ``path`` (symlinks followed as far as it exists) lies inside ``root``."""
    return path.resolve().is_relative_to(root)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _sweep_staging(root: Path) -> None:
    """Remove staging directories a killed run left in ``root`` (their pid is gone)."""
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            name = entry.name
            if not name.startswith(STAGING_PREFIX):
                continue
            pid = name[len(STAGING_PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)) and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)


class Staging:
    """A run's output files, replaced together: each is written whole to a staging directory
    inside its root (``<root>/.crawl4ai-llm-docs-staging-<pid>-…``, same file system, so the
    move is a rename), and ``commit`` moves them all into place once every one is written.
    Leaving the ``with`` block without ``commit`` (an error, Ctrl-C) removes the staging
    directories: every previous file stays as it was, nothing new appears.

    Every target is checked before it is written: it must lie inside its root once symlinks
    are followed, must not be a directory, and no existing ancestor may be a file
    (``PathRefusedError``); the check is repeated right before each move. The staged names
    are short (a counter), so a target name of 255 bytes still has a staging name that fits.
    ``moved`` lists what a failed ``commit`` already put in place.
    """

    def __init__(self, *, mode: int = FILE_MODE) -> None:
        self._mode = mode
        self._areas: dict[Path, Path] = {}  # resolved root -> its staging directory
        self._created: list[Path] = []  # roots this staging made (removed again if unused)
        self._pending: list[tuple[Path, Path, Path]] = []  # (staged file, target, root)
        self._after: list[Callable[[], None]] = []
        self._resolved: dict[Path, Path] = {}  # root -> the root, symlinks resolved
        self._verified: set[Path] = set()  # existing directories found inside their root
        self.moved: list[Path] = []

    @property
    def targets(self) -> list[Path]:
        """Every file staged so far, in the order written."""
        return [target for _, target, _ in self._pending]

    def _area(self, root: Path) -> Path:
        resolved = root.resolve()
        area = self._areas.get(resolved)
        if area is None:
            self._created += mkdir_private(root)
            _sweep_staging(resolved)
            area = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=resolved))
            self._areas[resolved] = area
        return area

    def _check(self, target: Path, root: Path) -> Path:
        """Refuse a target outside ``root`` or where the file system has no room for a file;
        returns the root with symlinks resolved."""
        resolved_root = self._resolved.get(root)
        if resolved_root is None:
            resolved_root = self._resolved[root] = root.resolve()
        try:
            relative = target.relative_to(root)
        except ValueError:
            raise PathRefusedError(f"{target} is not inside {root}") from None
        if not relative.parts or ".." in relative.parts:
            raise PathRefusedError(f"{target} is not a file inside {root}")
        parent = root
        for part in relative.parts[:-1]:
            parent = parent / part
            if parent in self._verified:  # an existing directory inside the root
                continue
            if not (parent.is_symlink() or parent.exists()):
                break  # made at commit, below a verified directory
            if not _contained(resolved_root, parent):
                raise PathRefusedError(
                    f"{parent} leads outside {root} (a symbolic link): nothing is written "
                    "through it. Remove the link or choose another directory."
                )
            if not parent.is_dir():
                raise PathRefusedError(
                    f"{parent} is a file where a directory is needed for {target}. "
                    "Remove or rename it."
                )
            self._verified.add(parent)
        if target.is_dir() and not target.is_symlink():
            raise PathRefusedError(
                f"{target} is a directory where a file is to be written. Remove or rename it."
            )
        return resolved_root

    @contextlib.contextmanager
    def open(self, target: Path, *, root: Path | None = None) -> Iterator[TextIO]:
        """A text file that becomes ``target`` at ``commit``; ``root`` (default: the target's
        directory) is the directory it must stay inside."""
        root = target.parent if root is None else root
        self._check(target, root)
        staged = self._area(root) / f"{len(self._pending):08d}"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, self._mode)
        self._pending.append((staged, target, root))
        try:
            # errors="replace": a stray surrogate in a crawled page must not fail the whole set.
            with open(fd, "w", encoding="utf-8", errors="replace", newline="\n") as handle:
                yield handle
        except OSError as exc:  # named by its target: the staged name means nothing to a user
            raise OSError(exc.errno, exc.strerror, str(target)) from exc

    def size(self, target: Path) -> int:
        """Bytes staged for ``target``."""
        for staged, pending, _ in self._pending:
            if pending == target:
                return staged.stat().st_size
        raise KeyError(target)

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once every file is in place (e.g. removing parts of an older split)."""
        self._after.append(action)

    def commit(self) -> None:
        """Move every staged file into place (one ``os.sync`` first, not one per file)."""
        if self._pending:
            os.sync()
        checked: set[Path] = set()  # directories found inside their root right before a move
        for staged, target, root in self._pending:
            parent = target.parent
            if parent not in checked:
                resolved_root = self._check(target, root)
                mkdir_private(parent)
                if not _contained(resolved_root, parent):
                    raise PathRefusedError(f"{target} is not inside {root}")
                checked.add(parent)
            os.replace(staged, target)
            self.moved.append(target)
        self._pending.clear()
        for action in self._after:
            action()
        self._after.clear()
        self.discard()

    def discard(self) -> None:
        """Remove the staging directories (and roots this staging created, when empty)."""
        for area in self._areas.values():
            shutil.rmtree(area, ignore_errors=True)
        self._areas.clear()
        self._pending.clear()
        for directory in reversed(self._created):
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty: a committed file keeps it
        self._created.clear()

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()


def scratch_file(directory: Path) -> IO[str]:
    """An unnamed temporary file beside the output (same disk, gone when closed)."""
    directory.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n", dir=directory)
