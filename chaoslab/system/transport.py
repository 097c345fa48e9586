"""How a request to the system under test failed: the error class of a transport exception.

Shared by the load generator and the probes, so that a refused connection or a reset counts the
same in ``probe:<service>`` as in a load signal.
"""

from __future__ import annotations

import asyncio

import aiohttp

from chaoslab.timeline import ErrorClass


def classify_exception(exc: BaseException) -> ErrorClass:
    """The error class of a transport exception (aiohttp's or the socket's)."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return ErrorClass.TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ErrorClass.REFUSED if isinstance(exc.os_error, ConnectionRefusedError) else ErrorClass.TRANSPORT
    if isinstance(exc, ConnectionRefusedError):
        return ErrorClass.REFUSED
    if isinstance(exc, ConnectionResetError | aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return ErrorClass.RESET
    if isinstance(exc, aiohttp.ClientOSError) and isinstance(exc.__cause__ or exc, ConnectionResetError):
        return ErrorClass.RESET
    return ErrorClass.TRANSPORT
