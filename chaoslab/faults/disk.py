"""Disk fill: allocate real blocks on a service's filesystem until a used % or a free size is
reached, in chunks, never past ``cap``, and only under a path the topology declares.

The fill files live in one dedicated directory, ``<path>/.chaoslab-fill-<run>-<label>``, named in
the ledger before the first byte is written; revert removes that directory and nothing else.
Blocks are allocated with ``posix_fallocate`` (real blocks, not a sparse file) or, where the
filesystem does not support it, by writing zeros.

Ledger record (:class:`DiskFillRecord`)::

    {"kind": "disk_fill", "service": "vector", "path": "/run/vector-data",
     "fill_dir": "/run/vector-data/.chaoslab-fill-r1-fill", "cap": 16777216,
     "written": 12582912, "files": 1}
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslab.errors import FaultError, RevertError, SafetyError
from chaoslab.faults.base import FaultContext, FaultDriver, FaultFamily, LedgerRecord
from chaoslab.faults.resolve import run_label, service_spec, with_refs
from chaoslab.model.faults import DiskFillFault

FILL_DIR_PREFIX = ".chaoslab-fill-"
# One file per GiB keeps every file size far from any filesystem's per-file limit.
FILE_SIZE_MAX = 1024**3


@dataclass(frozen=True, slots=True)
class FsUsage:
    """A filesystem's size as an unprivileged writer sees it (like ``df``)."""

    total_bytes: int
    used_bytes: int
    avail_bytes: int

    @classmethod
    def of(cls, path: str | Path) -> FsUsage:
        """Read it with ``statvfs``."""
        st = os.statvfs(path)
        total = st.f_blocks * st.f_frsize
        return cls(
            total_bytes=total, used_bytes=total - st.f_bfree * st.f_frsize, avail_bytes=st.f_bavail * st.f_frsize
        )


def bytes_to_fill(usage: FsUsage, until_used: float | None, until_free: int | None) -> int:
    """How many bytes to allocate to reach the goal (0 when it is already reached).

    ``df`` counts use% as used / (used + available), reserved blocks left out; so do we.

    >>> bytes_to_fill(FsUsage(100, 40, 60), 0.5, None)
    10
    >>> bytes_to_fill(FsUsage(100, 40, 60), None, 25)
    35
    >>> bytes_to_fill(FsUsage(100, 40, 60), 1.0, None)
    60
    """
    if until_free is not None:
        return max(usage.avail_bytes - until_free, 0)
    assert until_used is not None
    usable = usage.used_bytes + usage.avail_bytes
    goal_used = -(-int(until_used * usable * 1000) // 1000)  # ceil without float surprises at 100 %
    return max(min(goal_used - usage.used_bytes, usage.avail_bytes), 0)


def declared_path(ctx: FaultContext, service: str, path: str) -> Path:
    """The directory to fill: a name in the service's ``paths``, or a directory under one of them."""
    spec = service_spec(ctx, service)
    paths = {name: with_refs(ctx, value) for name, value in spec.paths.items()}
    if path in paths:
        return Path(paths[path])
    candidate = Path(with_refs(ctx, path))
    if candidate.is_absolute():
        real = Path(os.path.realpath(candidate))
        for declared in paths.values():
            root = Path(os.path.realpath(declared))
            if real == root or root in real.parents:
                return candidate
    names = ", ".join(sorted(spec.paths)) or "none"
    raise SafetyError(
        f"disk_fill path {path!r} is not declared by service {service!r} (its paths: {names}); "
        "only paths the topology names may be filled"
    )


def _allocate(fd: int, offset: int, length: int) -> None:
    try:
        os.posix_fallocate(fd, offset, length)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        # No fallocate here: write zeros, which allocates real blocks just the same.
        os.lseek(fd, offset, os.SEEK_SET)
        zeros = bytes(min(length, 1024 * 1024))
        left = length
        while left > 0:
            left -= os.write(fd, zeros[: min(left, len(zeros))])


@dataclass(frozen=True, slots=True)
class FillResult:
    """What a fill did."""

    written: int
    files: int
    hit_enospc: bool


def fill(
    directory: Path, goal: float | None, until_free: int | None, cap: int, chunk: int, stop: threading.Event
) -> FillResult:
    """Allocate chunk by chunk until the goal, ``cap`` or ENOSPC; re-reads usage every chunk."""
    written = 0
    files = 0
    fd = -1
    file_size = 0
    hit_enospc = False
    try:
        while written < cap and not stop.is_set():
            need = bytes_to_fill(FsUsage.of(directory), goal, until_free)
            if need <= 0:
                break
            size = min(chunk, need, cap - written)
            if fd < 0 or file_size + size > FILE_SIZE_MAX:
                if fd >= 0:
                    os.close(fd)
                fd = os.open(directory / f"fill-{files:05d}.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                files += 1
                file_size = 0
            try:
                _allocate(fd, file_size, size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                # Rounding to blocks: the last chunk may not fit whole; take what is left, then stop.
                if size > 4096:
                    chunk = max(size // 2, 4096)
                    continue
                hit_enospc = True
                break
            written += size
            file_size += size
    finally:
        if fd >= 0:
            os.close(fd)
    return FillResult(written=written, files=files, hit_enospc=hit_enospc)


class DiskFillRecord(LedgerRecord):
    """The one directory a disk fill writes into, named before the first byte, and what it wrote."""

    service: str
    path: str
    fill_dir: str
    cap: int
    written: int = 0
    files: int = 0
    enospc: bool = False
    capped: bool = False
    avail_after: int | None = None


class DiskFillDriver(FaultDriver[DiskFillFault, DiskFillRecord]):
    """Fills a declared path's filesystem with real blocks; removes them on revert."""

    def prepare(self, fault: DiskFillFault, ctx: FaultContext, label: str) -> DiskFillRecord:
        """Check the path is declared and name the fill directory."""
        if not isinstance(fault, DiskFillFault):
            raise FaultError(f"the disk driver cannot apply {type(fault).__name__}")
        path = declared_path(ctx, fault.target, fault.path)
        return DiskFillRecord(
            kind=fault.kind,
            service=fault.target,
            path=str(path),
            fill_dir=str(path / (FILL_DIR_PREFIX + run_label(ctx, label).removeprefix("chaoslab-"))),
            cap=fault.cap,
        )

    async def apply(self, fault: DiskFillFault, ctx: FaultContext, record: DiskFillRecord) -> DiskFillRecord:
        """Allocate until the goal, in a thread so the event loop keeps running."""
        path = Path(record.path)
        if not path.is_dir():
            raise FaultError(f"disk_fill path {str(path)!r} of service {fault.target!r} is not a directory")
        fill_dir = Path(record.fill_dir)
        fill_dir.mkdir(mode=0o700)
        stop = threading.Event()
        work = asyncio.ensure_future(
            asyncio.to_thread(fill, fill_dir, fault.until_used, fault.until_free, fault.cap, fault.chunk, stop)
        )
        try:
            result = await asyncio.shield(work)
        except asyncio.CancelledError:
            # Let the writer thread see the stop flag and finish its chunk before revert removes files.
            stop.set()
            await asyncio.wait({work})
            raise
        except OSError as exc:
            raise FaultError(f"disk_fill of {str(path)!r} failed: {exc}") from exc
        usage = FsUsage.of(path)
        return record.but(
            written=result.written,
            files=result.files,
            enospc=result.hit_enospc,
            capped=result.written >= fault.cap,
            avail_after=usage.avail_bytes,
        )

    async def revert(self, record: DiskFillRecord, ctx: FaultContext) -> None:
        """Remove the fill directory (only a directory chaoslab named); nothing else."""
        fill_dir = Path(record.fill_dir)
        if not fill_dir.name.startswith(FILL_DIR_PREFIX):
            raise RevertError(f"refusing to remove {str(fill_dir)!r}: not a chaoslab fill directory")
        try:
            await asyncio.to_thread(shutil.rmtree, fill_dir)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise RevertError(f"could not remove the fill directory {str(fill_dir)!r}: {exc}") from exc

    async def check_reverted(self, record: DiskFillRecord, ctx: FaultContext) -> str | None:
        """The fill directory is gone."""
        fill_dir = Path(record.fill_dir)
        return f"fill directory {str(fill_dir)!r} still exists" if fill_dir.exists() else None

    def detail(self, record: DiskFillRecord) -> dict[str, Any]:
        """Bytes allocated, and whether the cap or ENOSPC stopped the fill."""
        return {"bytes_written": record.written, "capped": record.capped, "enospc": record.enospc}


FAMILY: FaultFamily[DiskFillFault, DiskFillRecord] = FaultFamily(
    name="disk", models=(DiskFillFault,), driver=DiskFillDriver, record=DiskFillRecord
)
"""Fill a service's declared path with real blocks."""
