"""Where media lives on disk, and the only code that names those files.

    <storage>/media/<key><ext>   the video, under a name the server chose
    <storage>/posters/<key>.jpg  its poster frame
    <storage>/tmp/upload-*/      one workspace per upload in progress
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import AsyncIterator

STALE_WORKSPACE_SECONDS = 24 * 3600


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.media_dir = self.root / "media"
        self.poster_dir = self.root / "posters"
        self.tmp_dir = self.root / "tmp"

    def prepare(self) -> None:
        for folder in (self.media_dir, self.poster_dir, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._sweep_stale_workspaces()

    @staticmethod
    def new_key() -> str:
        # 128 random bits, URL-safe: never derived from anything the client sent.
        return secrets.token_urlsafe(16)

    def media_path(self, key: str, extension: str) -> Path:
        return self.media_dir / f"{key}{extension}"

    def poster_path(self, key: str) -> Path:
        return self.poster_dir / f"{key}.jpg"

    @contextlib.asynccontextmanager
    async def workspace(self) -> AsyncIterator[Path]:
        """A private folder for one upload, removed with all it holds when the
        upload ends, whether it succeeded, failed or was cut off."""
        path = Path(tempfile.mkdtemp(prefix="upload-", dir=self.tmp_dir))
        try:
            yield path
        finally:
            await asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, path, True)

    def install(self, key: str, media: Path, extension: str, poster: Path | None) -> None:
        """Move a processed upload into place (same file system: atomic renames)."""
        os.chmod(media, 0o644)
        os.replace(media, self.media_path(key, extension))
        if poster is not None and poster.exists():
            os.chmod(poster, 0o644)
            os.replace(poster, self.poster_path(key))

    def remove(self, key: str, extension: str) -> None:
        for path in (self.media_path(key, extension), self.poster_path(key)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _sweep_stale_workspaces(self) -> None:
        # Left by a process that was killed mid-upload; live uploads are younger.
        cutoff = time.time() - STALE_WORKSPACE_SECONDS
        for entry in self.tmp_dir.glob("upload-*"):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)
