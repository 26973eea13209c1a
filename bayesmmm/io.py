"""Atomic file and folder writes: a reader never sees a half-written artifact."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["MARKER", "PARTIAL_SUFFIX", "atomic_path", "atomic_run_dir", "check_run_dir", "write_json", "write_text"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts get the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write text."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomically write JSON (indented, keys in insertion order)."""
    return write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


MARKER = "metadata.json"  # written last into a run folder: its presence means the run finished
PARTIAL_SUFFIX = ".partial"  # hidden sibling where a run folder is built


def check_run_dir(path: str | Path, marker: str = MARKER, kind: str = "run") -> None:
    """Raise :class:`FileExistsError` unless ``path`` is absent, empty, or a finished ``kind`` folder.

    Called before any work too, so that a fit is not refused only once it has finished.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a folder; choose another -o")
        if any(path.iterdir()) and not (path / marker).exists():
            raise FileExistsError(
                f"{path} exists and is not a bayesmmm {kind} folder (no {marker}); choose another -o or empty it"
            )


@contextlib.contextmanager
def atomic_run_dir(path: str | Path, marker: str = MARKER, kind: str = "run") -> Iterator[Path]:
    """Build a run folder in a hidden sibling and move it into place only when complete.

    An existing folder at ``path`` is replaced only if it is a finished folder of the
    same kind (it holds ``marker``, by default ``metadata.json``) or empty; anything else
    is refused. If the body raises, nothing appears at ``path``.
    """
    path = Path(path)
    check_run_dir(path, marker, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-", suffix=PARTIAL_SUFFIX, dir=path.parent))
    try:
        yield tmp
        fsync_dir(tmp)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_partials(path: str | Path) -> None:
    """Delete hidden ``.NAME.PID-*.partial`` folders beside ``path`` left by killed processes of this host."""
    path = Path(path)
    prefix = f".{path.name}."
    for entry in path.parent.glob(f"{glob.escape(prefix)}*{PARTIAL_SUFFIX}"):
        pid_text = entry.name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit() or not entry.is_dir() or _alive(int(pid_text)):
            continue
        shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours (PermissionError), or unknown: keep it
        return True
    return True
