"""Crash-safe file replacement.

Readers of a file written here see either the old content or the new one,
never a torn mix: the data goes to a temp file ``.<name>.<random>.tmp`` in the
same directory, which is renamed over ``path``. A writer that dies mid-write
leaves only that temp file behind (``config.store`` sweeps its own).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["write_atomic", "write_json_atomic"]


def write_atomic(
    path: Path, data: bytes | str, *, mode: int = 0o600, sync: bool = True,
    dir_mode: int = 0o700,
) -> None:
    """Replace ``path`` with ``data`` (``str`` is encoded as UTF-8) in one rename.

    Missing parent directories are created with ``dir_mode`` (less the umask). The file gets
    exactly ``mode`` (the umask does not apply). With ``sync`` the data is
    fsync'd before the rename, so it survives a power loss once this returns
    (the directory entry itself is not synced; see ``config.store``).
    """
    if isinstance(data, str):
        data = data.encode()
    path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(
    path: Path, data: Any, *, mode: int = 0o600, sync: bool = True
) -> None:
    """:func:`write_atomic` of ``data`` as indented UTF-8 JSON with a final newline."""
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", mode=mode,
                 sync=sync)
