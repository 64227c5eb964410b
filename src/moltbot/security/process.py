"""Process-wide limits set when the gateway starts.

- :func:`raise_open_files_limit`: the soft ``RLIMIT_NOFILE`` is raised towards the
  hard limit (at most :data:`OPEN_FILES_TARGET`), so a burst of connections meets
  the connection caps long before ``EMFILE``.
- :func:`tune_allocator` / :func:`release_memory`: with glibc, large buffers are
  always taken from (and given back to) the OS directly, and free heap pages are
  returned after a heavy client leaves. Without glibc (musl, macOS) both do
  nothing and say so (``False``).
- :func:`pure_python_frozenlist`: aiohttp's list type without its C++ extension, so
  the gateway does not map the C++ runtime for it.
- :func:`system_cas_on_demand`: aiohttp's default TLS contexts look CA certificates
  up in the system's hashed directory when a connection needs one, instead of
  parsing the whole CA bundle twice when aiohttp is imported.
- :func:`mime_table_on_demand`: the system's MIME table is read at the first lookup
  of a file type, not as a side effect of importing aiohttp's server.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from functools import cache
from typing import Any

log = logging.getLogger(__name__)

OPEN_FILES_TARGET = 65536
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024


def raise_open_files_limit(target: int = OPEN_FILES_TARGET) -> tuple[int, int] | None:
    """Raise the soft open-files limit to ``min(hard, target)``; the (soft, hard) pair
    in force afterwards, or ``None`` where there is no such limit (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(hard, target)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit to %d: %s", wanted, exc)
    return resource.getrlimit(resource.RLIMIT_NOFILE)


@cache
def _libc() -> Any:
    """glibc through ctypes (imported here: the gateway's start does not wait for it)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # not glibc
        return None
    return libc


def tune_allocator() -> bool:
    """Fix glibc's mmap threshold (it otherwise grows after big frees, so later big
    buffers stay in the heap and RSS never shrinks). ``False`` without glibc."""
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = libc.mallopt(_M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD) == 1 and ok
    return ok


def pure_python_frozenlist() -> bool:
    """Import ``frozenlist`` (aiohttp's list for its signals, middlewares and cleanup
    contexts) as its pure-Python implementation, before aiohttp. Its compiled extension
    is C++ and maps libstdc++, ~0.9 MiB of a long-running gateway's RSS, for lists that
    are built once and then only iterated. The switch is frozenlist's documented
    ``FROZENLIST_NO_EXTENSIONS``, set only while importing it: child processes (tool
    commands, Chromium) do not inherit it. ``False`` when frozenlist was already imported.
    """
    if "frozenlist" in sys.modules:
        return False
    before = os.environ.get("FROZENLIST_NO_EXTENSIONS")
    os.environ["FROZENLIST_NO_EXTENSIONS"] = "1"
    try:
        import frozenlist  # noqa: F401
    finally:
        if before is None:
            del os.environ["FROZENLIST_NO_EXTENSIONS"]
        else:
            os.environ["FROZENLIST_NO_EXTENSIONS"] = before
    return True


_HASHED_CERT = re.compile(r"[0-9a-f]{8}\.[0-9]+")


def system_cas_on_demand() -> bool:
    """Import aiohttp so that its two default TLS contexts (built when it is imported)
    find CA certificates in OpenSSL's hashed certificate directory on demand, as OpenSSL
    does for that directory, instead of each parsing the whole CA bundle: ~2 MiB of a
    long-running gateway's memory and ~35 ms of its start. Verification is unchanged
    and the trust store the same: only done where OpenSSL's default bundle lives in its
    default directory and the directory holds hashed certificates (Debian and Ubuntu
    generate both from one list), and not when ``SSL_CERT_FILE`` or ``SSL_CERT_DIR``
    names anything else. OpenSSL's documented ``SSL_CERT_FILE`` points at nothing only
    while aiohttp is imported: later contexts and child processes use the bundle as
    before. ``False`` when it did not apply (aiohttp already imported, another layout).
    """
    if "aiohttp" in sys.modules:
        return False
    import ssl

    paths = ssl.get_default_verify_paths()
    bundle, directory = (
        os.path.realpath(paths.openssl_cafile),
        os.path.realpath(paths.openssl_capath),
    )
    file_env, dir_env = paths.openssl_cafile_env, paths.openssl_capath_env
    before = {name: os.environ.get(name) for name in (file_env, dir_env)}
    if os.path.realpath(before[file_env] or bundle) != bundle:
        return False
    if os.path.realpath(before[dir_env] or directory) != directory:
        return False
    if os.path.dirname(bundle) != directory or not os.path.isfile(bundle):
        return False
    if not _holds_hashed_certs(directory):
        return False
    os.environ[file_env], os.environ[dir_env] = os.devnull, directory
    try:
        import aiohttp  # noqa: F401
    finally:
        for name, value in before.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
    return True


def mime_table_on_demand() -> bool:
    """Import ``aiohttp.web`` without reading the system's MIME table. Its file
    responses build their own table from Python's built-in types when imported, and
    that calls :func:`mimetypes.init`, which also reads ``/etc/mime.types`` into the
    module-wide table (~0.4 MiB on Debian) that an idle gateway never consults. The
    documented ``mimetypes.inited`` flag says "done" only during the import, so the
    first :func:`mimetypes.guess_type` (a media file, a canvas page) reads the system
    table exactly as before. ``False`` when ``aiohttp.web`` or the table was already
    loaded."""
    import mimetypes

    if "aiohttp.web" in sys.modules or mimetypes.inited:
        return False
    mimetypes.inited = True
    try:
        import aiohttp.web  # noqa: F401
    finally:
        mimetypes.inited = False
    return True


def _holds_hashed_certs(directory: str) -> bool:
    try:
        with os.scandir(directory) as entries:
            return any(_HASHED_CERT.fullmatch(entry.name) for entry in entries)
    except OSError:
        return False


def release_memory() -> bool:
    """Return free heap pages to the OS (glibc ``malloc_trim``). ``False`` without glibc."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
