"""``chaoslab toxiproxy``: run the embedded Toxiproxy-compatible server in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import click

from chaoslab.errors import HarnessError


async def _serve(
    host: str, port: int, config: Path | None, seed: int | None, proxy_metrics: bool, splice: bool
) -> None:
    """Run until SIGINT/SIGTERM, then close listeners and connections."""
    from chaoslab.proxy import ToxiproxyServer

    server = ToxiproxyServer(host=host, port=port, seed=seed, proxy_metrics=proxy_metrics, config=config, splice=splice)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
    except OSError as exc:
        raise HarnessError(f"toxiproxy: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(f"chaoslab toxiproxy: API on {server.url}", err=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _raise_open_files_limit() -> None:
    """Lift the soft open-files limit to the hard one: each proxied connection holds two sockets (Go does this too)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@click.command("toxiproxy")
@click.option("--host", default="127.0.0.1", show_default=True, help="API listen host.")
@click.option("--port", default=8474, show_default=True, type=click.IntRange(0, 65535), help="API listen port.")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON array of proxies to create at start (the /populate format).",
)
@click.option("--seed", type=int, default=None, help="Seed the toxics' random draws (toxicity, jitter, slicer).")
@click.option("--proxy-metrics", is_flag=True, help="Expose toxiproxy_proxy_* byte counters on /metrics.")
@click.option(
    "--splice/--no-splice",
    default=True,
    show_default=True,
    help="Move bytes of links without toxics with zero-copy splice (Linux); --no-splice copies them through Python.",
)
def toxiproxy_command(
    host: str, port: int, config: Path | None, seed: int | None, proxy_metrics: bool, splice: bool
) -> None:
    """Run the embedded Toxiproxy-compatible server until SIGINT/SIGTERM (exit 0)."""
    _raise_open_files_limit()
    coroutine = _serve(host, port, config, seed, proxy_metrics, splice)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(coroutine)
        return
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(coroutine)
