"""Seed the demo database: a ``documents`` table with :data:`DOCUMENT_COUNT` rows (idempotent).

The launcher calls ``await seed_demo(dsn)`` after creating the ``chaoslab`` role and database;
running it again leaves the same rows.
"""

from __future__ import annotations

import argparse
import asyncio

import asyncpg

DOCUMENT_COUNT = 500
"""Rows in the documents table; experiments read ids 1..500."""

_TOPICS = ("retry budgets", "circuit breakers", "bulkheads", "timeouts", "back-pressure", "load shedding")

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id integer PRIMARY KEY,
    title text NOT NULL,
    body text NOT NULL,
    topic text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z'
)
"""


def document_row(doc_id: int) -> tuple[int, str, str, str]:
    """The deterministic (id, title, body, topic) of document ``doc_id``."""
    topic = _TOPICS[doc_id % len(_TOPICS)]
    title = f"Note {doc_id}: {topic}"
    body = f"Document {doc_id} of the chaoslab demo explains {topic}. " * 4
    return doc_id, title, body.strip(), topic


async def seed_demo(dsn: str, count: int = DOCUMENT_COUNT) -> int:
    """Create the documents table and its rows if missing; return the number of rows afterwards."""
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        async with connection.transaction():
            await connection.execute(SCHEMA)
            await connection.executemany(
                "INSERT INTO documents (id, title, body, topic) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                [document_row(i) for i in range(1, count + 1)],
            )
        rows = await connection.fetchval("SELECT count(*) FROM documents")
        return int(rows)
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m chaoslab.demo.seed --dsn DSN``: seed a database (used by the compose file)."""
    parser = argparse.ArgumentParser(prog="python -m chaoslab.demo.seed", description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", required=True, help="postgresql://user@host:port/database")
    parser.add_argument("--retry-s", type=float, default=30.0, help="keep retrying the connection this long")
    args = parser.parse_args(argv)
    print(f"documents: {asyncio.run(_seed_with_retry(args.dsn, args.retry_s))}")


async def _seed_with_retry(dsn: str, retry_s: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_s
    while True:
        try:
            return await seed_demo(dsn)
        except (OSError, asyncpg.CannotConnectNowError):
            # the server may still be starting (compose's healthcheck can pass before the role exists)
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


if __name__ == "__main__":
    main()
