"""Writing files that other processes read: through a temporary file and a rename.

A reader (``chaoslab note`` looking for the active run, a CI step uploading a report, ``chaoslab
report`` reading a journal) sees either the old file or the whole new one, never half of one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(path: Path, text: str, *, mode: int = 0o666, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (temp file in the same directory, then rename); returns ``path``.

    ``mode`` is the new file's permission before the umask, as for :func:`os.open` (``0o600`` keeps
    it to the owner). Parent directories are created. On any failure the temporary file is removed
    and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
