"""Ground truth for secrets: an HTTP service that only answers requests carrying the right credentials.

Run as ``python auth_target.py --port P --counts FILE --debug-token T`` with the expected secrets in
its environment (``AUTH_TARGET_PASSWORD``, ``AUTH_TARGET_API_KEY``, ``AUTH_TARGET_TOKEN``), as a
topology's ``launch.env`` hands them over. It counts what it saw in FILE (JSON, rewritten after
every request), so a test knows the secrets really were used:

- ``POST /login`` with ``{"user": ..., "password": ...}``: the right password gets
  ``{"token": AUTH_TARGET_TOKEN}``; a wrong one gets a 401 that quotes user and password back, as a
  careless service does — the error chaoslab then reports must not repeat it.
- ``GET /data``: 200 only with ``Authorization: Bearer <token>``, ``X-Api-Key: <api key>`` and
  ``X-Debug-Token: <debug token>``; 401 otherwise.
- ``GET /health``: 200.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from aiohttp import web


class AuthTarget:
    """The expected credentials and the tallies of what came in."""

    def __init__(self, counts: Path, debug_token: str) -> None:
        self.counts_path = counts
        self.password = os.environ["AUTH_TARGET_PASSWORD"]
        self.api_key = os.environ["AUTH_TARGET_API_KEY"]
        self.token = os.environ["AUTH_TARGET_TOKEN"]
        self.debug_token = debug_token
        self.counts = {"login_ok": 0, "login_failed": 0, "authorized": 0, "unauthorized": 0}

    def _count(self, key: str) -> None:
        self.counts[key] += 1
        tmp = self.counts_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.counts))
        tmp.replace(self.counts_path)

    async def login(self, request: web.Request) -> web.Response:
        """A token for the right password; a 401 quoting the body for a wrong one."""
        body: Any = await request.json()
        if isinstance(body, dict) and body.get("password") == self.password:
            self._count("login_ok")
            return web.json_response({"token": self.token})
        self._count("login_failed")
        # quoted bare, not under a key named like a secret: only masking by value can catch it
        user, password = (body.get("user"), body.get("password")) if isinstance(body, dict) else (None, None)
        return web.json_response({"error": f"bad credentials {user}/{password}"}, status=401)

    async def data(self, request: web.Request) -> web.Response:
        """200 with every credential right, 401 otherwise."""
        ok = (
            request.headers.get("Authorization") == f"Bearer {self.token}"
            and request.headers.get("X-Api-Key") == self.api_key
            and request.headers.get("X-Debug-Token") == self.debug_token
        )
        self._count("authorized" if ok else "unauthorized")
        return web.json_response({"ok": ok}, status=200 if ok else 401)

    async def health(self, request: web.Request) -> web.Response:
        """Always healthy."""
        return web.json_response({"status": "ok"})


def main() -> None:
    """Parse arguments and serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--counts", type=Path, required=True)
    parser.add_argument("--debug-token", required=True)
    args = parser.parse_args()
    target = AuthTarget(args.counts, args.debug_token)
    app = web.Application()
    app.router.add_post("/login", target.login)
    app.router.add_get("/data", target.data)
    app.router.add_get("/health", target.health)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
