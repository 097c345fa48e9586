"""The run ledger: durable, typed entries, replayed into what is still applied or running."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from chaoslab.redact import remember
from chaoslab.run.ledger import (
    EndEntry,
    FaultEntry,
    FaultStatus,
    Ledger,
    RunHeader,
    ToxiproxyEntry,
    entry_from_json,
    iter_ledgers,
    read_ledger,
)
from chaoslab.system.entries import (
    ContainerEntry,
    ContainerStatus,
    MountEntry,
    MountStatus,
    ProcessEntry,
    ProcessStatus,
)


class TestLedger:
    """Appending and replaying a run's ledger."""

    def test_replay_gives_the_last_state_of_each_fault(self, tmp_path: Path) -> None:
        """intent → applied → reverted leaves nothing pending; an applied fault stays pending."""
        ledger = Ledger.create("r1", base=tmp_path, experiment="x")
        ledger.append(
            FaultEntry(
                label="f0-latency",
                state=FaultStatus.INTENT,
                family="toxiproxy",
                kind="latency",
                target="a->b",
                record={"toxics": ["t0"]},
            )
        )
        ledger.append(FaultEntry(label="f0-latency", state=FaultStatus.APPLIED))
        ledger.append(
            FaultEntry(
                label="f1-disk_fill",
                state=FaultStatus.INTENT,
                family="disk",
                kind="disk_fill",
                target="vector",
                record={"dir": "/x"},
            )
        )
        ledger.append(FaultEntry(label="f0-latency", state=FaultStatus.REVERTED))
        state = read_ledger(ledger.path)
        pending = state.pending_faults()
        assert [f.label for f in pending] == ["f1-disk_fill"]
        assert pending[0].record == {"dir": "/x"}
        assert state.faults["f0-latency"].record == {"toxics": ["t0"]}  # kept from the intent entry
        assert state.faults["f0-latency"].kind == "latency"
        assert state.header.experiment == "x"
        assert state.header.pid == os.getpid()
        assert state.unreadable == []

    def test_the_owner_of_a_live_ledger_is_alive(self, tmp_path: Path) -> None:
        """The process that created a ledger is its live owner; a made-up PID is not."""
        ledger = Ledger.create("r2", base=tmp_path)
        state = read_ledger(ledger.path)
        assert state.owner_alive() is True
        ledger.append(replace(state.header, pid=2**22 + 12345, pid_create_time=1.0))
        assert read_ledger(ledger.path).owner_alive() is False

    def test_processes_started_and_stopped(self, tmp_path: Path) -> None:
        """A process recorded as stopped is no longer live; its service and start time are kept."""
        ledger = Ledger.create("r3", base=tmp_path)
        ledger.append(ProcessEntry(pid=11, state=ProcessStatus.STARTED, service="api", create_time=5.0))
        ledger.append(ProcessEntry(pid=12, state=ProcessStatus.STARTED, service="db"))
        ledger.append(ProcessEntry(pid=11, state=ProcessStatus.STOPPED, exit_code=0))
        state = read_ledger(ledger.path)
        assert [p.pid for p in state.live_processes()] == [12]
        assert state.processes[11] == ProcessEntry(
            pid=11, state=ProcessStatus.STOPPED, service="api", create_time=5.0, exit_code=0
        )

    def test_containers_mounts_and_toxiproxy(self, tmp_path: Path) -> None:
        """Removed containers and unmounted paths are no longer live; the Toxiproxy URL is kept."""
        ledger = Ledger.create("r7", base=tmp_path)
        ledger.append(ContainerEntry(id="c1", state=ContainerStatus.STARTED, service="db"))
        ledger.append(ContainerEntry(id="c2", state=ContainerStatus.STARTED, service="cache"))
        ledger.append(ContainerEntry(id="c1", state=ContainerStatus.REMOVED))
        ledger.append(MountEntry(path="/m1", state=MountStatus.INTENT))
        ledger.append(MountEntry(path="/m1", state=MountStatus.MOUNTED))
        ledger.append(MountEntry(path="/m2", state=MountStatus.UNMOUNTED))
        ledger.append(ToxiproxyEntry(url="http://127.0.0.1:8474"))
        state = read_ledger(ledger.path)
        assert [(c.id, c.service) for c in state.live_containers()] == [("c2", "cache")]
        assert state.containers["c1"].service == "db"
        assert [m.path for m in state.live_mounts()] == ["/m1"]
        assert state.toxiproxy_url == "http://127.0.0.1:8474"

    def test_a_torn_last_line_is_skipped(self, tmp_path: Path) -> None:
        """A partial line (the harness died mid-write) does not stop the replay and is not an error."""
        ledger = Ledger.create("r4", base=tmp_path)
        ledger.append(ProcessEntry(pid=5, state=ProcessStatus.STARTED, service="x"))
        with ledger.path.open("a") as fh:
            fh.write('{"type": "fault", "lab')
        state = read_ledger(ledger.path)
        assert [p.pid for p in state.live_processes()] == [5]
        assert state.unreadable == []

    def test_a_line_of_unknown_shape_is_counted_not_guessed(self, tmp_path: Path) -> None:
        """A complete line this version cannot read (an unknown state) is skipped and its number kept."""
        ledger = Ledger.create("r8", base=tmp_path)
        with ledger.path.open("a") as fh:
            fh.write(json.dumps({"type": "fault", "label": "f0", "state": "half-applied"}) + "\n")
            fh.write(json.dumps({"type": "process", "pid": 7, "state": "started"}) + "\n")
        state = read_ledger(ledger.path)
        assert state.unreadable == [2]
        assert state.faults == {}
        assert [p.pid for p in state.live_processes()] == [7]

    def test_close_marks_the_end_and_can_remove(self, tmp_path: Path) -> None:
        """A closed ledger is ended; with remove=True its directory is gone."""
        kept = Ledger.create("r5", base=tmp_path)
        kept.close(remove=False)
        assert read_ledger(kept.path).ended is True
        gone = Ledger.create("r6", base=tmp_path)
        gone.close(remove=True)
        assert not gone.path.parent.exists()
        assert [s.run_id for s in iter_ledgers(tmp_path)] == ["r5"]


class TestFileFormat:
    """The JSON lines are the ones earlier versions wrote and read, so old ledgers still roll back."""

    def test_entries_are_written_with_the_known_keys(self, tmp_path: Path) -> None:
        """Each entry is one JSON object with its type tag, its state word and no empty fields."""
        ledger = Ledger.create("w1", base=tmp_path, run_dir="/tmp/chaoslab-w1", refs={"run_dir": "/tmp/chaoslab-w1"})
        ledger.append(FaultEntry(label="f0", state=FaultStatus.REVERT_FAILED, problem="toxic still present"))
        ledger.append(ProcessEntry(pid=9, state=ProcessStatus.STARTED, service="api", argv=("python", "-m", "x")))
        ledger.close(remove=False)
        lines = [json.loads(line) for line in ledger.path.read_text().splitlines()]
        for line in lines:
            line.pop("at")
        assert lines[0]["type"] == "run" and lines[0]["run_id"] == "w1" and lines[0]["version"] == 2
        assert lines[0]["refs"] == {"run_dir": "/tmp/chaoslab-w1"}
        assert lines[1:] == [
            {"type": "fault", "label": "f0", "state": "revert_failed", "problem": "toxic still present"},
            {"type": "process", "pid": 9, "state": "started", "service": "api", "argv": ["python", "-m", "x"]},
            {"type": "end"},
        ]

    def test_a_version_1_ledger_reads_back(self, tmp_path: Path) -> None:
        """A ledger as the previous version wrote it (no version, dict-built lines) replays the same way."""
        path = tmp_path / "runs" / "old" / "ledger.jsonl"
        path.parent.mkdir(parents=True)
        old = [
            {"at": 1.0, "type": "run", "run_id": "old", "pid": 1, "pid_create_time": 2.0, "experiment": "e",
             "topology": {"name": "t"}, "run_dir": "/tmp/chaoslab-old", "refs": {"a": "b"}},
            {"at": 1.1, "type": "toxiproxy", "url": "http://127.0.0.1:8474"},
            {"at": 1.2, "type": "process", "service": "api", "pid": 40, "create_time": 3.5, "argv": ["x"],
             "state": "started"},
            {"at": 1.3, "type": "process", "service": "db", "pid": 41, "create_time": 3.6, "stop_signal": 2,
             "state": "started"},
            {"at": 1.4, "type": "fault", "label": "f0-latency", "family": "toxiproxy", "kind": "latency",
             "target": "a->b", "state": "intent", "record": {"kind": "latency", "proxy": "a->b"}},
            {"at": 1.5, "type": "fault", "label": "f0-latency", "family": "toxiproxy", "kind": "latency",
             "target": "a->b", "state": "applied", "record": {"kind": "latency", "proxy": "a->b", "added": ["t"]}},
            {"at": 1.6, "type": "process", "pid": 40, "state": "stopped", "exit_code": -9},
        ]  # fmt: skip
        path.write_text("".join(json.dumps(line) + "\n" for line in old))
        state = read_ledger(path)
        assert state.unreadable == []
        assert state.header == RunHeader(
            run_id="old",
            pid=1,
            pid_create_time=2.0,
            experiment="e",
            topology={"name": "t"},
            run_dir="/tmp/chaoslab-old",
            refs={"a": "b"},
        )
        assert state.header.version is None
        assert state.toxiproxy_url == "http://127.0.0.1:8474"
        assert [(p.pid, p.service, p.stop_signal) for p in state.live_processes()] == [(41, "db", 2)]
        (fault,) = state.pending_faults()
        assert (fault.state, fault.record) == (
            FaultStatus.APPLIED,
            {"kind": "latency", "proxy": "a->b", "added": ["t"]},
        )

    def test_every_entry_reads_back_as_itself(self) -> None:
        """to_json → entry_from_json is the identity for each entry type."""
        entries = [
            RunHeader(run_id="r", pid=1, pid_create_time=2.0, refs={"k": "v"}, version=2),
            FaultEntry(
                label="f", state=FaultStatus.INTENT, family="disk", kind="disk_fill", target="s", record={"a": 1}
            ),
            ToxiproxyEntry(url="http://x"),
            EndEntry(),
            ProcessEntry(pid=3, state=ProcessStatus.STOP_FAILED, service="s", create_time=1.5, argv=("a",)),
            ContainerEntry(id="c", state=ContainerStatus.REMOVE_FAILED, service="s"),
            MountEntry(path="/p", state=MountStatus.UMOUNT_FAILED),
        ]
        assert [entry_from_json(e.to_json()) for e in entries] == entries


class TestLedgerSecrets:
    """Nothing written to a ledger holds a secret; references stay, for rollback to read again."""

    def test_entries_are_redacted(self, tmp_path: Path) -> None:
        """A launched command's secret flag, a DSN password and a remembered value: ***; ${env:...} kept."""
        remember("remembered-0123")
        ledger = Ledger.create(
            "r1",
            base=tmp_path,
            topology={"services": {"db": {"dsn": "postgresql://app:${env:PGPW}@127.0.0.1/app"}}},
        )
        ledger.append(
            ProcessEntry(
                pid=1,
                state=ProcessStatus.STARTED,
                argv=("svc", "--password", "pw-0123", "--dsn", "postgres://a:b-0123@h/d"),
            )
        )
        ledger.append(FaultEntry(label="f0", state=FaultStatus.REVERT_FAILED, problem="saw remembered-0123"))
        text = ledger.path.read_text()
        assert "pw-0123" not in text and "b-0123" not in text and "remembered-0123" not in text
        state = read_ledger(ledger.path)
        assert state.header is not None
        assert state.header.topology["services"]["db"]["dsn"] == "postgresql://app:${env:PGPW}@127.0.0.1/app"
        lines = text.splitlines()
        assert '"--password", "***"' in lines[1] and "postgres://a:***@h/d" in lines[1]
