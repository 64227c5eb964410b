"""Files a conversation carries: stored per session, sniffed, capped, private.

Every inbound attachment (a photo sent on Telegram, a file on Slack, an image
attached in WebChat) is stored under the agent's sessions directory,
``<sessions>/media/<session>/<random>.<ext>``, before the agent sees it:

- **size**: anything over ``max_bytes`` is refused (:class:`MediaTooLarge`);
  callers pass the channel's ``mediaMaxMb`` (default 20 MB);
- **content sniffing**: the type is read from the bytes (``filetype``), not taken
  from the sender's claim; a claimed image that is not one is stored as what it
  is (and so never reaches a model as an image); the extension follows the
  sniffed type, so a file never gets a name its content contradicts;
- **private**: files are created ``0600`` (``O_EXCL``, no symlink followed) in
  ``0700`` directories, whatever the umask.

:class:`StoredMedia` is what the agent receives: the transcript records it as a
content block (``{"type": "image"|"file", "path", "mimeType", ...}``), never
the bytes, so transcripts stay small.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from moltbot.errors import UsageError
from moltbot.safepath import ensure_dir

MediaKind = Literal["image", "document", "audio", "video", "sticker", "voice", "other"]
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MEDIA_DIR = "media"

_SLUG = re.compile(r"[^a-z0-9._-]+")
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/x-wav": ".wav",
    "audio/wav": ".wav",
    "audio/mp4": ".m4a",
    "video/mp4": ".mp4",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}
MODEL_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
"""Image types both model APIs accept as image input."""


class MediaTooLarge(UsageError):
    """An attachment over the size limit (nothing was stored)."""


@dataclass(frozen=True)
class StoredMedia:
    """One stored attachment. ``kind`` follows the sniffed content (an "image" that
    is not an image becomes a "document")."""

    kind: MediaKind
    path: str
    mime_type: str
    size: int
    file_name: str | None = None
    caption: str | None = None
    transcript: str | None = None
    """Text of an audio attachment, when a transcription model is configured."""

    @property
    def is_model_image(self) -> bool:
        return self.kind in ("image", "sticker") and self.mime_type in MODEL_IMAGE_TYPES

    def block(self) -> dict[str, Any]:
        """The transcript content block of this attachment."""
        block: dict[str, Any] = {
            "type": "image" if self.is_model_image else "file",
            "kind": self.kind,
            "path": self.path,
            "mimeType": self.mime_type,
            "size": self.size,
        }
        for key, value in (
            ("fileName", self.file_name),
            ("caption", self.caption),
            ("transcript", self.transcript),
        ):
            if value:
                block[key] = value
        return block

    @classmethod
    def from_block(cls, block: dict[str, Any]) -> StoredMedia | None:
        """The attachment a transcript block describes (None for other blocks)."""
        if block.get("type") not in ("image", "file") or not isinstance(block.get("path"), str):
            return None
        kind = block.get("kind") or ("image" if block.get("type") == "image" else "document")
        return cls(
            kind=kind,
            path=block["path"],
            mime_type=str(block.get("mimeType") or "application/octet-stream"),
            size=int(block.get("size") or 0),
            file_name=block.get("fileName"),
            caption=block.get("caption"),
            transcript=block.get("transcript"),
        )

    def describe(self) -> str:
        """One line for a model that cannot see the file itself."""
        name = f"{self.file_name}, " if self.file_name else ""
        text = f"[{self.kind} attachment: {name}{self.mime_type}, {human_size(self.size)}]"
        if self.caption:
            text += f" caption: {self.caption}"
        if self.transcript:
            text += f"\n[transcript] {self.transcript}"
        return text


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def sniff(data: bytes, declared: str | None = None, file_name: str | None = None) -> str:
    """The MIME type of ``data`` from its content; the declared type (or the name's)
    only when the content has no recognisable signature and is not binary-looking text."""
    import filetype

    found = filetype.guess_mime(data[:8192])
    if found:
        return str(found)
    head = data[:4096]
    if head and b"\0" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            claimed = (declared or "").split(";")[0].strip().lower()
            if claimed.startswith("text/") or claimed in ("application/json", "text/markdown"):
                return claimed
            guess = mimetypes.guess_type(file_name or "")[0]
            return guess if guess and guess.startswith("text/") else "text/plain"
    return "application/octet-stream"


def kind_for(mime: str, hint: str | None = None) -> MediaKind:
    """The kind of a sniffed type; ``hint`` (the platform's word: voice, sticker)
    is kept when the content agrees with it."""
    top = mime.split("/")[0]
    if hint == "voice" and top == "audio":
        return "voice"
    if hint == "sticker" and top == "image":
        return "sticker"
    if top in ("image", "audio", "video"):
        return top  # type: ignore[return-value]
    return "document"


def session_slug(session_key: str) -> str:
    """A directory name for ``session_key``: readable, and distinct for distinct keys."""
    readable = _SLUG.sub("_", session_key.lower()).strip("._")[:80] or "session"
    digest = hashlib.sha256(session_key.encode()).hexdigest()[:10]
    return f"{readable}-{digest}"


class MediaStore:
    """The media of one agent's sessions (``<sessions>/media/``)."""

    def __init__(self, sessions_dir: Path) -> None:
        self.root = sessions_dir / MEDIA_DIR

    def session_dir(self, session_key: str) -> Path:
        return self.root / session_slug(session_key)

    def save(
        self,
        session_key: str,
        data: bytes,
        *,
        kind: str | None = None,
        mime_type: str | None = None,
        file_name: str | None = None,
        caption: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> StoredMedia:
        """Store ``data`` for ``session_key``. Raises :class:`MediaTooLarge` over
        ``max_bytes`` and :class:`UsageError` for an empty file. Blocking: call it
        in a thread from async code."""
        if len(data) > max_bytes:
            raise MediaTooLarge(
                f"attachment {file_name or ''} is {human_size(len(data))}, over the "
                f"limit of {human_size(max_bytes)}".replace("  ", " ")
            )
        if not data:
            raise UsageError(f"attachment {file_name or ''} is empty".replace("  ", " "))
        mime = sniff(data, mime_type, file_name)
        directory = self.session_dir(session_key)
        ensure_dir(directory, 0o700)
        extension = _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ".bin"
        path = directory / f"{secrets.token_hex(12)}{extension}"
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        clean_name = Path(file_name).name[:200] if file_name else None
        return StoredMedia(
            kind=kind_for(mime, kind),
            path=str(path),
            mime_type=mime,
            size=len(data),
            file_name=clean_name or None,
            caption=caption or None,
        )

    def owns(self, path: Path) -> bool:
        """True when ``path`` is a file of this store (for serving it over HTTP)."""
        try:
            resolved = path.resolve(strict=True)
            return resolved.is_relative_to(self.root.resolve()) and resolved.is_file()
        except OSError:
            return False
