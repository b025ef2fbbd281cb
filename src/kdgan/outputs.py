"""Output paths checked before any work: a command that cannot write its result says so in
one line first, instead of failing with a traceback after minutes of training or evaluation.

Permission bits alone do not answer "can I write here" (root ignores them; /proc and /sys
refuse writes whatever the bits say; a read-only mount refuses them too), so the check
creates and removes a temporary file in the nearest existing folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kdgan.errors import UserError


def _nearest_existing(start: Path, path: Path, option: str) -> Path:
    """The deepest existing ancestor of `start` (or `start` itself), which must be a folder;
    `path` is what the user asked to write, for the message."""
    probe = start
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "" if probe == path else f" ({probe} is a file)"
        raise UserError(f"{option}: cannot write {path}: not under a folder{where}; choose a folder path")
    return probe


def _try_write(folder: Path, path: Path, option: str) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=".kdgan-write-test-", dir=folder)
    except OSError as err:
        raise UserError(f"{option}: cannot write to {path}: creating a file in {folder} failed "
                        f"({err.strerror or err}); choose a writable location") from None
    os.close(fd)
    os.unlink(name)


def check_writable_folder(path: Path, option: str = "--out") -> None:
    """`path` is, or can be created as, a folder this process can write files in."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{option}: {path} is a file, not a folder; choose a folder path")
    _try_write(_nearest_existing(path, path, option), path, option)


def check_writable_file(path: Path, option: str = "--out") -> None:
    """`path` can be written as a file (its folder exists or can be created; it is no folder)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option}: {path} is a folder; give a file path")
    _try_write(_nearest_existing(path.parent, path, option), path, option)
