"""Disk fill against a real 16 MiB tmpfs mounted for the test — never the machine's disk."""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoslab.errors import RevertError, SafetyError
from chaoslab.faults import FaultContext
from chaoslab.faults.disk import DiskFillDriver, DiskFillRecord, FsUsage, bytes_to_fill
from chaoslab.model.faults import DiskFillFault
from chaoslab.model.topology import ServiceSpec, TopologySpec
from tests.conftest import require

MIB = 1024 * 1024


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    """A fresh 16 MiB tmpfs, unmounted (and its mount point removed) after the test."""
    require(os.geteuid() == 0, "mounting a tmpfs needs root")
    mount_point = Path(tempfile.mkdtemp(prefix="chaoslab-tmpfs-"))
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)], capture_output=True, check=False
    )
    if result.returncode != 0:
        mount_point.rmdir()
        require(False, f"cannot mount a tmpfs: {result.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
        mount_point.rmdir()


def context(path: Path) -> FaultContext:
    """A topology whose service ``store`` declares ``data`` at ``path``."""
    topo = TopologySpec(name="t", services={"store": ServiceSpec(paths={"data": str(path)})})
    return FaultContext(topology=topo, run_id="d1")


def write_probe(directory: Path, size: int = 256 * 1024) -> int | None:
    """Write ``size`` bytes as an application would; the errno on failure, else None."""
    try:
        with open(directory / "probe.bin", "wb") as out:
            out.write(bytes(size))
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        return exc.errno
    finally:
        (directory / "probe.bin").unlink(missing_ok=True)
    return None


class TestBytesToFill:
    """The pure arithmetic of how much to allocate."""

    def test_until_used_counts_like_df(self) -> None:
        """From 40 used / 60 available, 90 % used needs 50 more bytes."""
        assert bytes_to_fill(FsUsage(total_bytes=100, used_bytes=40, avail_bytes=60), 0.9, None) == 50

    def test_until_free(self) -> None:
        """Leaving 10 of 60 available needs 50 bytes."""
        assert bytes_to_fill(FsUsage(total_bytes=100, used_bytes=40, avail_bytes=60), None, 10) == 50

    def test_goal_already_reached(self) -> None:
        """A filesystem already past the goal gets nothing."""
        assert bytes_to_fill(FsUsage(total_bytes=100, used_bytes=80, avail_bytes=20), 0.5, None) == 0


@pytest.mark.integration
class TestDiskFill:
    """disk_fill on a real tmpfs."""

    async def test_full_fill_gives_enospc_and_revert_frees_it(self, tmpfs: Path) -> None:
        """At 100 % a writer gets ENOSPC; after revert the free space is back and writing works."""
        ctx = context(tmpfs)
        before = FsUsage.of(tmpfs)
        driver = DiskFillDriver()
        fault = DiskFillFault(kind="disk_fill", target="store", until_used="100%", cap="64MiB", chunk="1MiB")
        record = driver.prepare(fault, ctx, "fill")
        assert record.fill_dir == str(tmpfs / ".chaoslab-fill-d1-fill")
        record = await driver.apply(fault, ctx, record)
        assert record.written == before.avail_bytes
        assert FsUsage.of(tmpfs).avail_bytes == 0
        assert write_probe(tmpfs) == errno.ENOSPC
        files = sorted(Path(record.fill_dir).iterdir())
        # Real blocks, not a sparse file: allocated size equals the bytes the record reports.
        assert sum(f.stat().st_blocks * 512 for f in files) == record.written
        assert await driver.check_reverted(record, ctx) == f"fill directory {record.fill_dir!r} still exists"
        await driver.revert(record, ctx)
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None
        assert FsUsage.of(tmpfs).avail_bytes == before.avail_bytes
        assert write_probe(tmpfs) is None

    async def test_cap_is_never_exceeded(self, tmpfs: Path) -> None:
        """A 5 MiB cap stops a 100 % goal at exactly 5 MiB, with room left on the filesystem."""
        ctx = context(tmpfs)
        before = FsUsage.of(tmpfs)
        driver = DiskFillDriver()
        fault = DiskFillFault(kind="disk_fill", target="store", until_used="100%", cap="5MiB", chunk="2MiB")
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "capped"))
        try:
            assert record.written == 5 * MIB
            assert record.capped is True
            assert before.avail_bytes - FsUsage.of(tmpfs).avail_bytes == 5 * MIB
            assert write_probe(tmpfs) is None
        finally:
            await driver.revert(record, ctx)

    async def test_until_free_leaves_exactly_that_much(self, tmpfs: Path) -> None:
        """until_free 3 MiB leaves 3 MiB available."""
        ctx = context(tmpfs)
        driver = DiskFillDriver()
        fault = DiskFillFault(kind="disk_fill", target="store", until_free="3MiB", cap="64MiB")
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "free"))
        try:
            assert FsUsage.of(tmpfs).avail_bytes == 3 * MIB
            assert record.avail_after == 3 * MIB
        finally:
            await driver.revert(record, ctx)
        assert FsUsage.of(tmpfs).avail_bytes == 16 * MIB

    async def test_subdirectory_of_a_declared_path_is_allowed(self, tmpfs: Path) -> None:
        """An absolute path inside a declared path may be filled; its fill directory is inside it."""
        (tmpfs / "sub").mkdir()
        ctx = context(tmpfs)
        driver = DiskFillDriver()
        fault = DiskFillFault(kind="disk_fill", target="store", path=str(tmpfs / "sub"), until_free="8MiB", cap="1MiB")
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "sub"))
        assert record.fill_dir == str(tmpfs / "sub" / ".chaoslab-fill-d1-sub")
        assert record.written == MIB
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None

    async def test_run_references_in_declared_paths_are_resolved(self, tmpfs: Path) -> None:
        """A path declared as ``${run_dir}/data`` is filled where the run's directory really is."""
        (tmpfs / "data").mkdir()
        topo = TopologySpec(name="t", services={"store": ServiceSpec(paths={"data": "${run_dir}/data"})})
        ctx = FaultContext(topology=topo, run_id="d2", refs={"run_dir": str(tmpfs)})
        driver = DiskFillDriver()
        fault = DiskFillFault(kind="disk_fill", target="store", until_used="100%", cap="2MiB")
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "ref"))
        assert record.fill_dir == str(tmpfs / "data" / ".chaoslab-fill-d2-ref")
        assert record.written == 2 * MIB
        await driver.revert(record, ctx)
        assert FsUsage.of(tmpfs).avail_bytes == 16 * MIB

    def test_undeclared_path_is_refused(self, tmp_path: Path) -> None:
        """A path outside the service's declared paths is a safety error before anything is written."""
        ctx = context(tmp_path / "declared")
        driver = DiskFillDriver()
        for path in ("logs", str(tmp_path), "/"):
            fault = DiskFillFault(kind="disk_fill", target="store", path=path, until_used="50%", cap="1MiB")
            with pytest.raises(SafetyError, match="is not declared by service 'store'"):
                driver.prepare(fault, ctx, "nope")

    async def test_revert_refuses_a_directory_chaoslab_did_not_name(self, tmp_path: Path) -> None:
        """A ledger record pointing elsewhere never makes revert delete it."""
        victim = tmp_path / "precious"
        victim.mkdir()
        record = DiskFillRecord(kind="disk_fill", service="store", path=str(tmp_path), fill_dir=str(victim), cap=0)
        with pytest.raises(RevertError, match="not a chaoslab fill directory"):
            await DiskFillDriver().revert(record, context(tmp_path))
        assert victim.is_dir()

    async def test_revert_before_apply_is_a_no_op(self, tmpfs: Path) -> None:
        """Reverting a record whose fault never ran succeeds and leaves the filesystem alone."""
        ctx = context(tmpfs)
        driver = DiskFillDriver()
        fault = DiskFillFault(kind="disk_fill", target="store", until_used="50%", cap="1MiB")
        record = driver.prepare(fault, ctx, "never")
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None
        assert FsUsage.of(tmpfs).avail_bytes == 16 * MIB

    def test_two_goals_is_a_one_line_validation_error(self) -> None:
        """until_used and until_free together are rejected by the spec model."""
        with pytest.raises(ValueError, match="give exactly one of until_used or until_free"):
            DiskFillFault(kind="disk_fill", target="store", until_used="50%", until_free="1MiB", cap="1MiB")
