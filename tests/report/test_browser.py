"""The HTML report in a real browser: headless Chromium renders it without console errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from chaoslab.report import render_html
from chaoslab.testing import sample_journal
from tests.conftest import require

CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\] (.*)")


@dataclass(frozen=True)
class Rendered:
    png_bytes: int
    dom: str
    console: list[str]


def browse(chromium: str, page: Path, out: Path) -> Rendered:
    """Load ``page`` in headless Chromium: screenshot, DOM after load, and every console message."""
    with tempfile.TemporaryDirectory(prefix="chaoslab-chromium-") as profile:
        proc = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                "--hide-scrollbars",
                "--window-size=1400,2600",
                f"--screenshot={out}",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert out.is_file(), f"no screenshot; chromium said: {proc.stderr[-2000:]}"
    console = [m.group(1) for m in CONSOLE.finditer(proc.stderr)]
    return Rendered(out.stat().st_size, proc.stdout, console)


@pytest.fixture(scope="module")
def chromium() -> str:
    """The chromium binary (installed by scripts/setup)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    require(path is not None, "chromium not installed (apt-get install -y chromium)")
    assert path is not None
    return path


@pytest.mark.integration
@pytest.mark.browser
class TestReportInChromium:
    def test_report_renders_without_console_errors(self, chromium: str, tmp_path: Path) -> None:
        """The report draws its banner and charts, logs nothing to the console, and is far from blank."""
        control = tmp_path / "control.html"
        # a blank page that logs once: proves the console capture works and gives the size of "blank"
        control.write_text("<!DOCTYPE html><html><body><script>console.error('control')</script></body></html>")
        blank = browse(chromium, control, tmp_path / "control.png")
        assert blank.console and "control" in blank.console[0]

        report = tmp_path / "report.html"
        report.write_text(render_html(sample_journal(cascade=True)), encoding="utf-8")
        shot = browse(chromium, report, tmp_path / "report.png")
        assert shot.console == []
        assert 'class="banner fail"' in shot.dom
        assert shot.dom.count("<svg") == 19
        assert "api:documents" in shot.dom
        # a page of charts compresses far worse than an empty white page
        assert shot.png_bytes > 5 * blank.png_bytes, (shot.png_bytes, blank.png_bytes)
