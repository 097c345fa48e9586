"""The Locust user of a generated locustfile: chaoslab's weighted request mix (runs inside Locust).

One ``FastHttpUser`` class picks a request class by weight on every task, renders it with
chaoslab's templates (``{randint:..}``, ``{choice:..}``) and paces itself at ``rate / users``
task starts per second, so the swarm's rate follows the shape's user count. Its host, timeouts
and the mix come from the configuration (:mod:`chaoslab.load.locust.config`), which must be known
before any user starts.
"""

from __future__ import annotations

import bisect
import itertools
import random
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from locust import task
from locust.contrib.fasthttp import FastHttpUser

from chaoslab.load.locust import plugin
from chaoslab.load.locust.config import MixEntry, SwarmConfig
from chaoslab.load.templating import JsonTemplate, Template, compile_json, compile_template
from chaoslab.timeline import classify_status


@dataclass(frozen=True, slots=True)
class _Compiled:
    entry: MixEntry
    url: Template
    headers: dict[str, Template]
    json_body: JsonTemplate | None
    text_body: Template | None
    static: tuple[str, dict[str, str], bytes | None] | None = None
    """URL, headers and body when nothing varies per request: built once, not per request."""

    def render(self, rng: random.Random, extra: dict[str, str]) -> tuple[str, dict[str, str], bytes | None]:
        """URL, headers and body of one request."""
        if self.static is not None:
            static_url, static_headers, static_data = self.static
            return static_url, dict(static_headers), static_data  # a copy: the client may add to it
        headers = {k: t.render(rng) for k, t in self.headers.items()}
        data: bytes | None = None
        if self.json_body is not None:
            data = self.json_body.render_bytes(rng)
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        elif self.text_body is not None:
            data = self.text_body.render(rng).encode()
        headers.update(extra)
        return self.url.render(rng), headers, data


def _compile(entry: MixEntry, extra: dict[str, str]) -> _Compiled:
    compiled = _Compiled(
        entry=entry,
        url=compile_template(entry.url),
        headers={k: compile_template(v) for k, v in entry.headers.items()},
        json_body=compile_json(entry.json_body) if entry.json_body is not None else None,
        text_body=compile_template(entry.body) if entry.body is not None else None,
    )
    is_static = (
        compiled.url.is_static
        and all(t.is_static for t in compiled.headers.values())
        and (compiled.json_body is None or compiled.json_body.is_static)
        and (compiled.text_body is None or compiled.text_body.is_static)
    )
    if not is_static:
        return compiled
    return _Compiled(
        entry, compiled.url, compiled.headers, compiled.json_body, compiled.text_body,
        compiled.render(random.Random(0), extra),
    )  # fmt: skip


class _MixState:
    """The compiled mix and its cumulative weights (set once the configuration is known)."""

    def __init__(self) -> None:
        self.classes: list[_Compiled] = []
        self.cum_weights: list[float] = []
        self.extra_headers: dict[str, str] = {}
        self.seeds = itertools.count()
        self.seed: int | None = None


_Mix = _MixState()


def _configure(cfg: SwarmConfig) -> None:
    """Compile the mix and set the user class's host and timeouts."""
    _Mix.classes = [_compile(e, dict(cfg.extra_headers)) for e in cfg.mix]
    _Mix.cum_weights = list(itertools.accumulate(e.weight for e in cfg.mix))
    _Mix.extra_headers = dict(cfg.extra_headers)
    _Mix.seed = cfg.seed
    if cfg.mix:
        parts = urlsplit(cfg.mix[0].url)
        MixUser.host = f"{parts.scheme}://{parts.netloc}"
        timeout_s = max(e.timeout_s for e in cfg.mix)
        MixUser.network_timeout = timeout_s
        MixUser.connection_timeout = timeout_s


class MixUser(FastHttpUser):
    """chaoslab's request mix as a Locust user."""

    host = "http://127.0.0.1"  # replaced from the mix's first URL once the configuration is known
    network_timeout = 5.0
    connection_timeout = 5.0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        seed = _Mix.seed
        n = next(_Mix.seeds)
        self.rng = random.Random(None if seed is None else seed * 1_000_003 + n)
        self._last_start: float | None = None

    def wait_time(self) -> float:
        """Seconds until the next task: task starts are ``1 / (rate / users)`` apart (a random phase first)."""
        cfg = plugin.config()
        if cfg is None:
            return 0.1
        interval_s = 1.0 / cfg.per_user_rate()
        now = time.monotonic()
        if self._last_start is None:
            return self.rng.random() * interval_s
        return max(0.0, self._last_start + interval_s - now)

    @task
    def request(self) -> None:
        """Send one request of the mix, picked by weight."""
        self._last_start = time.monotonic()
        classes = _Mix.classes
        if not classes:
            return
        index = 0
        if len(classes) > 1:
            x = self.rng.random() * _Mix.cum_weights[-1]
            index = min(bisect.bisect_right(_Mix.cum_weights, x), len(classes) - 1)
        compiled = classes[index]
        entry = compiled.entry
        url, headers, data = compiled.render(self.rng, _Mix.extra_headers)
        with self.client.request(
            entry.method,
            url,
            name=entry.name,
            headers=headers,
            data=cast(Any, data),  # geventhttpclient sends bytes as they are
            catch_response=True,
        ) as response:
            status = int(response.status_code or 0)
            if status and classify_status(status, entry.expect_status) is None:
                response.success()
            elif status:
                response.failure(f"HTTP {status}")


plugin.add_config_listener(_configure)
