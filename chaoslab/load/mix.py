"""The request mix compiled for sending, and how outcomes are classified.

A :class:`RequestClass` is one ``load.mix`` entry with its ``${...}`` references resolved,
its per-request templates compiled and, when nothing varies per request, its whole HTTP/1.1
request prebuilt as bytes. Statuses and transport exceptions map to
:class:`~chaoslab.timeline.ErrorClass`; the optional login step yields the header that every
request then carries.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from chaoslab.errors import HarnessError, SpecError
from chaoslab.load.http import request_head, split_origin
from chaoslab.load.templating import JsonTemplate, Template, compile_json, compile_template
from chaoslab.model.experiment import LoginSpec, RequestSpec
from chaoslab.model.loading import resolve_runtime_refs
from chaoslab.redact import remember


@dataclass(frozen=True, slots=True)
class RequestClass:
    """A request class compiled for sending: templates resolved, static bytes prebuilt."""

    spec: RequestSpec
    signal: str
    service: str | None
    scheme: str
    host: str
    port: int
    host_header: str
    target: Template
    headers: Mapping[str, Template]
    json_body: JsonTemplate | None
    text_body: Template | None
    static_payload: bytes | None
    timeout_s: float
    is_head: bool

    def body(self, rng: random.Random) -> bytes | None:
        """The body bytes for one request (None for no body)."""
        if self.json_body is not None:
            return self.json_body.render_bytes(rng)
        if self.text_body is not None:
            return self.text_body.render(rng).encode()
        return None

    def header_values(self, rng: random.Random, extra: Mapping[str, str]) -> dict[str, str]:
        """Headers for one request, with the login header added."""
        out = {k: t.render(rng) for k, t in self.headers.items()}
        if self.json_body is not None and not any(k.lower() == "content-type" for k in out):
            out["Content-Type"] = "application/json"
        out.update(extra)
        return out

    def payload(self, rng: random.Random, extra: Mapping[str, str]) -> bytes:
        """The whole HTTP/1.1 request for one send."""
        if self.static_payload is not None:
            return self.static_payload
        body = self.body(rng)
        head = request_head(
            self.spec.method,
            self.target.render(rng),
            self.host_header,
            self.header_values(rng, extra),
            len(body) if body is not None else None,
        )
        return head + body if body is not None else head


def service_of(url: str) -> str | None:
    """``api`` for a URL written ``${service:api}/...`` (the signal's service), else None."""
    if url.startswith("${service:"):
        end = url.find("}")
        return url[len("${service:") : end] if end > 0 else None
    return None


def compile_request(spec: RequestSpec, refs: Mapping[str, str], extra_headers: Mapping[str, str]) -> RequestClass:
    """Resolve a request class's references and prebuild its bytes when nothing varies per request."""
    url = resolve_runtime_refs(spec.url, refs)
    try:
        scheme, host, port, target_text = split_origin(url)
    except ValueError as exc:
        raise SpecError(f"load.mix.{spec.name}.url: {exc}") from None
    default_port = 443 if scheme == "https" else 80
    name = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets in Host
    host_header = name if port == default_port else f"{name}:{port}"
    target = compile_template(target_text)
    headers = {k: compile_template(v, refs) for k, v in spec.headers.items()}
    json_body = compile_json(spec.json_body, refs) if spec.json_body is not None else None
    text_body = compile_template(spec.body, refs) if spec.body is not None else None
    cls = RequestClass(
        spec=spec,
        signal=spec.signal_name,
        service=service_of(spec.url),
        scheme=scheme,
        host=host,
        port=port,
        host_header=host_header,
        target=target,
        headers=headers,
        json_body=json_body,
        text_body=text_body,
        static_payload=None,
        timeout_s=float(spec.timeout),
        is_head=spec.method == "HEAD",
    )
    static = (
        target.is_static
        and all(t.is_static for t in headers.values())
        and (json_body is None or json_body.is_static)
        and (text_body is None or text_body.is_static)
    )
    if static:
        rng = random.Random(0)
        return replace(cls, static_payload=cls.payload(rng, extra_headers))
    return cls


async def login_headers(login: LoginSpec, refs: Mapping[str, str]) -> dict[str, str]:
    """POST (or GET) the login request and build the auth header from the token in its JSON answer."""
    url = resolve_runtime_refs(login.url, refs)
    body = compile_json(login.json_body, refs).render(random.Random(0)) if login.json_body is not None else None
    timeout = aiohttp.ClientTimeout(total=float(login.timeout))
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(login.method, url, json=body) as response,
        ):
            text = await response.text()
            if response.status >= 400:
                raise HarnessError(f"login to {url} failed: HTTP {response.status}: {text[:200]}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise HarnessError(f"login to {url} failed: {exc or type(exc).__name__}") from exc
    try:
        token: Any = json.loads(text)
        for part in login.token_field.split("."):
            token = token[part]
    except (ValueError, KeyError, TypeError, IndexError):
        raise HarnessError(f"login to {url}: no field {login.token_field!r} in the answer {text[:200]!r}") from None
    # the token is a secret like the password that got it: masked wherever it would be written
    remember(str(token))
    value = login.template.format(token=token)
    remember(value)
    return {login.header: value}


_login = login_headers
"""Former name of :func:`login_headers` (the Locust runner imports it)."""
