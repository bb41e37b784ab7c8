"""Where downloaded data lives, and fetching and unpacking an archive with a progress line."""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import TextIO

from nasengine.errors import NasError
from nasengine.progress import Progress


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir`` (``~`` expanded), or by default ``$NASENGINE_DATA_DIR`` or ``~/.cache/nasengine/data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("NASENGINE_DATA_DIR")
    return Path(env).expanduser() if env else Path("~/.cache/nasengine/data").expanduser()


def fetch(url: str, path: Path, md5: str, title: str, stream: TextIO | None = sys.stderr) -> None:
    """Download ``url`` to ``path`` (through ``path.part``), showing progress; NasError on a network error
    or a wrong MD5 checksum."""
    progress = Progress(None, f"downloading {title}", stream=stream, enabled=stream is not None, unit="bytes",
                        scale=True)

    def hook(blocks: int, block_size: int, total: int) -> None:
        progress.total = total if total > 0 else None
        progress.set(min(blocks * block_size, total) if total > 0 else blocks * block_size)

    tmp = path.with_name(path.name + ".part")
    try:
        urllib.request.urlretrieve(url, tmp, reporthook=hook)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise NasError(f"cannot download {url}: {e}") from None
    finally:
        progress.close()
    if md5sum(tmp) != md5:
        tmp.unlink(missing_ok=True)
        raise NasError(f"the downloaded {title} archive has the wrong checksum; try again")
    tmp.replace(path)


def unpack(archive: Path, root: Path, title: str, stream: TextIO | None = sys.stderr) -> None:
    """Extract a ``.tar.gz`` into ``root``, one progress line per member."""
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
        with Progress(len(members), f"unpacking {title}", stream=stream, enabled=stream is not None,
                      unit="files") as progress:
            for member in members:
                tar.extract(member, root, filter="data")
                progress.update()


def md5sum(path: Path) -> str:
    """The hex MD5 digest of a file, read in 1 MiB chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
