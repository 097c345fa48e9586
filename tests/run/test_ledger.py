"""The run ledger: durable entries, replayed into what is still applied or running."""

from __future__ import annotations

import os
from pathlib import Path

from chaoslab.redact import remember
from chaoslab.run.ledger import Ledger, iter_ledgers, read_ledger


class TestLedger:
    """Appending and replaying a run's ledger."""

    def test_replay_gives_the_last_state_of_each_fault(self, tmp_path: Path) -> None:
        """intent → applied → reverted leaves nothing pending; an applied fault stays pending."""
        ledger = Ledger.create("r1", {"experiment": "x"}, base=tmp_path)
        ledger.append(
            {
                "type": "fault",
                "label": "f0-latency",
                "family": "toxiproxy",
                "kind": "latency",
                "target": "a->b",
                "state": "intent",
                "record": {"toxics": ["t0"]},
            }
        )
        ledger.append({"type": "fault", "label": "f0-latency", "state": "applied"})
        ledger.append(
            {
                "type": "fault",
                "label": "f1-disk_fill",
                "family": "disk",
                "kind": "disk_fill",
                "target": "vector",
                "state": "intent",
                "record": {"dir": "/x"},
            }
        )
        ledger.append({"type": "fault", "label": "f0-latency", "state": "reverted"})
        state = read_ledger(ledger.path)
        pending = state.pending_faults()
        assert [f.label for f in pending] == ["f1-disk_fill"]
        assert pending[0].record == {"dir": "/x"}
        assert state.faults["f0-latency"].record == {"toxics": ["t0"]}  # kept from the intent entry
        assert state.header["experiment"] == "x"
        assert state.header["pid"] == os.getpid()

    def test_the_owner_of_a_live_ledger_is_alive(self, tmp_path: Path) -> None:
        """The process that created a ledger is its live owner; a made-up PID is not."""
        ledger = Ledger.create("r2", {}, base=tmp_path)
        assert read_ledger(ledger.path).owner_alive() is True
        ledger.append({"type": "run", "pid": 2**22 + 12345, "pid_create_time": 1.0})
        assert read_ledger(ledger.path).owner_alive() is False

    def test_processes_started_and_stopped(self, tmp_path: Path) -> None:
        """A process recorded as stopped is no longer live."""
        ledger = Ledger.create("r3", {}, base=tmp_path)
        ledger.append({"type": "process", "service": "api", "pid": 11, "state": "started"})
        ledger.append({"type": "process", "service": "db", "pid": 12, "state": "started"})
        ledger.append({"type": "process", "pid": 11, "state": "stopped"})
        assert [p["pid"] for p in read_ledger(ledger.path).live_processes()] == [12]

    def test_a_torn_last_line_is_skipped(self, tmp_path: Path) -> None:
        """A partial line (the harness died mid-write) does not stop the replay."""
        ledger = Ledger.create("r4", {}, base=tmp_path)
        ledger.append({"type": "process", "pid": 5, "state": "started", "service": "x"})
        with ledger.path.open("a") as fh:
            fh.write('{"type": "fault", "lab')
        assert [p["pid"] for p in read_ledger(ledger.path).live_processes()] == [5]

    def test_close_marks_the_end_and_can_remove(self, tmp_path: Path) -> None:
        """A closed ledger is ended; with remove=True its directory is gone."""
        kept = Ledger.create("r5", {}, base=tmp_path)
        kept.close(remove=False)
        assert read_ledger(kept.path).ended is True
        gone = Ledger.create("r6", {}, base=tmp_path)
        gone.close(remove=True)
        assert not gone.path.parent.exists()
        assert [s.run_id for s in iter_ledgers(tmp_path)] == ["r5"]


class TestLedgerSecrets:
    """Nothing written to a ledger holds a secret; references stay, for rollback to read again."""

    def test_entries_are_redacted(self, tmp_path: Path) -> None:
        """A launched command's secret flag, a DSN password and a remembered value: ***; ${env:...} kept."""
        remember("remembered-0123")
        ledger = Ledger.create(
            "r1",
            {"topology": {"services": {"db": {"dsn": "postgresql://app:${env:PGPW}@127.0.0.1/app"}}}},
            base=tmp_path,
        )
        ledger.append(
            {"type": "process", "pid": 1, "argv": ["svc", "--password", "pw-0123", "--dsn", "postgres://a:b-0123@h/d"]}
        )
        ledger.append({"type": "note", "text": "saw remembered-0123"})
        text = ledger.path.read_text()
        assert "pw-0123" not in text and "b-0123" not in text and "remembered-0123" not in text
        state = read_ledger(ledger.path)
        assert state.header["topology"]["services"]["db"]["dsn"] == "postgresql://app:${env:PGPW}@127.0.0.1/app"
        lines = text.splitlines()
        assert '"--password", "***"' in lines[1] and "postgres://a:***@h/d" in lines[1]
