"""Helpers for the spec tests: a small valid experiment, file writing, and the CLI run in-process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from chaoslab.cli import main

SHOP = """\
name: shop
parameters:
  mode: fragile
  vectors: 100
services:
  api:
    url: http://127.0.0.1:18080
    launch: {kind: process, command: ["${python}", "-m", "http.server", "18080"], env: {MODE: "${mode}"}}
  vector:
    url: http://127.0.0.1:18081
  postgres:
    address: 127.0.0.1:15432
links:
  api->vector: {listen: "127.0.0.1:18181", upstream: "127.0.0.1:18081"}
  api->postgres: {listen: "127.0.0.1:15433", upstream: "127.0.0.1:15432"}
"""
"""A topology written next to every test experiment as ``shop.yaml`` (stable, unlike the demo's)."""

TINY = """\
name: tiny
topology: shop.yaml
load:
  rate: 10/s
  mix:
    - name: search
      url: ${service:api}/search
faults:
  - kind: latency
    target: api->vector
    latency: 100ms
"""
"""A valid experiment on the shop topology; line 4 is load.rate, line 9 the fault's kind, 11 its latency."""


@dataclass(frozen=True)
class CliResult:
    """What one ``chaoslab`` invocation printed and returned."""

    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``chaoslab ARGS...`` through :func:`chaoslab.cli.main` in this process."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main([*args])
        captured = capsys.readouterr()
        code = exited.value.code
        return CliResult(code if isinstance(code, int) else 1, captured.out, captured.err)

    return run


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write text (or bytes) to ``tmp_path/NAME`` and return the path."""

    def put(text: str | bytes, name: str = "exp.yaml") -> Path:
        (tmp_path / "shop.yaml").write_text(SHOP, encoding="utf-8")
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return put
