"""Where and how a network's latency is measured: the device, the threads, the batch and the input
resolution. A :class:`Target` is stored with a study (``to_data``) and names latency tables (``key``)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from nasengine.errors import NasError

DEVICES = ("cpu", "cuda")
_KEY = re.compile(r"^(cpu|cuda)-t(\d+)-b(\d+)-r(\d+)$")


@dataclass(frozen=True)
class Target:
    """A latency target. ``threads`` is the number of torch intra-op threads (on CUDA it only sets how
    many CPU threads launch the kernels)."""

    device: str = "cpu"
    threads: int = 1
    batch: int = 1
    resolution: int = 224

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise NasError(f"latency device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        for name in ("threads", "batch", "resolution"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise NasError(f"latency target {name} must be a positive integer, got {value!r}")

    @property
    def key(self) -> str:
        """``cpu-t1-b1-r224``: a cache key and a file-name part; :meth:`from_key` reads it back."""
        return f"{self.device}-t{self.threads}-b{self.batch}-r{self.resolution}"

    def __str__(self) -> str:
        return f"{self.device}, {self.threads} thread(s), batch {self.batch}, {self.resolution}x{self.resolution}"

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: Any) -> Target:
        if not isinstance(data, dict) or set(data) != {"device", "threads", "batch", "resolution"}:
            raise NasError(f"a latency target needs exactly device, threads, batch and resolution, got {data!r}")
        return cls(**data)

    @classmethod
    def from_key(cls, key: str) -> Target:
        m = _KEY.match(key)
        if not m:
            raise NasError(f"latency target key {key!r} is not DEVICE-tTHREADS-bBATCH-rRESOLUTION")
        return cls(m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)))
