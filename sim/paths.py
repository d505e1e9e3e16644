"""Output folders and the names that become paths in them.

Names read from files (a scenario's ``name``, a network's ``name``) end up in folder names: the
default output folder of ``run`` and ``mc``, the sub-folder of ``run --compare``, the
per-scenario folders of ``compare``. A name is text its author chose, so it never becomes a path
as it is: :func:`safe_name` turns it into a slug of letters, digits, ``.``, ``_`` and ``-`` that
cannot climb out of a folder (no separators, no ``..``, not absolute), and :func:`child` checks
that the joined path still resolves inside its parent.

:func:`check_out_dir` checks a folder the user chose before any simulation runs, so an output
folder that is an existing file, lies under a file or cannot be written is a one-line
:class:`~sim.errors.ModelError` at once, not a traceback after hours of replications.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from .errors import ModelError

__all__ = ["safe_name", "child", "check_out_dir", "MAX_NAME_LENGTH"]

MAX_NAME_LENGTH = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(name: object, default: str = "unnamed") -> str:
    """A folder-name slug of *name*: ASCII letters, digits, ``_`` and ``-`` only (every other
    run of characters becomes one ``-``), no leading or trailing ``-``, at most
    :data:`MAX_NAME_LENGTH` characters; *default* when nothing is left. Without dots a slug is
    never ``.`` or ``..``, never hidden, and never the name of a file the simulator writes
    (those all have an extension). ``safe_name("../../etc/x") == "etc-x"``."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    slug = _UNSAFE.sub("-", text)[:MAX_NAME_LENGTH].strip("-")
    return slug or default


def child(parent: str | Path, name: object, taken: set[str] | None = None) -> Path:
    """``parent / safe_name(name)``, checked to resolve inside *parent*. With *taken* (the
    slugs already used for sibling folders), a slug already there gets ``-2``, ``-3``, ... and
    is added to it, so two names that slug alike never share a folder."""
    parent = Path(parent)
    slug = safe_name(name)
    if taken is not None:
        base, k = slug, 2
        while slug in taken:
            slug, k = f"{base}-{k}", k + 1
        taken.add(slug)
    path = parent / slug
    inside(parent, path)
    return path


def inside(root: str | Path, path: str | Path) -> Path:
    """Return *path* when it resolves inside *root* (symbolic links followed), else raise
    :class:`ModelError`."""
    base = Path(root).resolve()
    full = Path(path).resolve()
    if full != base and base not in full.parents:
        raise ModelError(f"output path {str(path)!r} lies outside the output folder",
                         file=str(root))
    return Path(path)


def check_out_dir(path: str | Path, field: str = "--out") -> Path:
    """Check that *path* can be an output folder, before anything runs: it is a folder or does
    not exist yet, no part of it above is a file, and the nearest existing folder is writable.
    Creates nothing. Returns *path* as a :class:`~pathlib.Path`; raises :class:`ModelError`
    naming the folder otherwise."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise ModelError(f"must be a folder path, got {path!r}", field=field)
    p = Path(path)
    if str(path) == "":
        raise ModelError("must be a folder path, got ''", field=field)
    if p.exists() and not p.is_dir():
        raise ModelError("exists and is not a folder", file=str(p), field=field)
    probe = p
    while not probe.exists():
        up = probe.parent
        if up == probe:
            break
        probe = up
    if probe.exists() and not probe.is_dir():
        raise ModelError(f"cannot create a folder under {str(probe)!r}: it is a file",
                         file=str(p), field=field)
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise ModelError(f"cannot write in {str(probe)!r}: permission denied", file=str(p),
                         field=field)
    return p
