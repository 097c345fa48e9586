"""The demo vector search service: brute-force cosine search over stored vectors (numpy, aiohttp).

Run it as ``python -m chaoslab.demo.vector --port 28081 --data-dir DIR --vectors 20000``.

- ``GET /health`` — 200 ``{"status": "ok", ...}``; 503 when its data directory cannot be written.
- ``POST /search {"query": "red", "k": 5}`` — the ``k`` stored vectors closest to the query's
  embedding (a deterministic hash of the text), as ``{"results": [{"id", "score"}], ...}``.

The vectors are generated from a fixed seed and persisted in ``DIR/vectors.npy`` (reused when
present). Every search writes its record into a new file under ``DIR/queries/`` (a ring of
:data:`QUERY_SLOTS` files), so a full disk makes searches fail: 507 on ENOSPC, 500 on other
write errors — the target of the ``vector-disk-fill`` experiment.
"""

from __future__ import annotations

import os

# One matrix-vector product per query: BLAS threads only fight the other services for the cores
# (5 ms instead of 0.4 ms per search on a busy 2-core machine). Must be set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import errno  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from aiohttp import web  # noqa: E402

from chaoslab.demo.serving import run, serve  # noqa: E402

DEFAULT_DIM = 64
DEFAULT_SEED = 7
MAX_K = 100
QUERY_SLOTS = 256
"""Query records are written round-robin into this many files, so the directory stays bounded."""

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a stored vector's id and its cosine similarity to the query."""

    id: int
    score: float


def generate_vectors(count: int, dim: int = DEFAULT_DIM, seed: int = DEFAULT_SEED) -> Matrix:
    """``count`` unit vectors of ``dim`` floats, the same for the same seed."""
    if count < 1 or dim < 1:
        raise ValueError(f"expected positive count and dim, got {count} and {dim}")
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((count, dim), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def embed(text: str, dim: int = DEFAULT_DIM) -> Matrix:
    """A deterministic unit vector for ``text`` (seeded by its SHA-256): same text, same vector."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    vector = rng.standard_normal(dim, dtype=np.float32)
    vector /= np.linalg.norm(vector)
    return vector


def top_k(matrix: Matrix, query: Matrix, k: int) -> list[Hit]:
    """The ``k`` rows of ``matrix`` (unit vectors) with the highest cosine similarity to ``query``, best first."""
    k = max(1, min(k, matrix.shape[0]))
    scores = matrix @ query
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [Hit(id=int(i), score=round(float(scores[i]), 6)) for i in best]


def load_or_create(data_dir: Path, count: int, dim: int = DEFAULT_DIM, seed: int = DEFAULT_SEED) -> Matrix:
    """The stored vectors from ``data_dir/vectors.npy``, generating and saving them when missing or different."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "vectors.npy"
    if path.exists():
        try:
            stored: Matrix = np.load(path)
            if stored.shape == (count, dim) and stored.dtype == np.float32:
                return stored
        except (OSError, ValueError):
            pass  # a torn or foreign file: regenerate it below
    matrix = generate_vectors(count, dim, seed)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, matrix)
    os.replace(tmp, path)
    return matrix


class QueryLog:
    """Writes each query's record into a new file (a bounded ring), so every search needs fresh disk space."""

    def __init__(self, data_dir: Path, slots: int = QUERY_SLOTS) -> None:
        self.directory = data_dir / "queries"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.slots = slots
        self._next = 0

    def write(self, record: dict[str, object]) -> None:
        """Persist one record; raises OSError (ENOSPC on a full disk)."""
        slot = self._next % self.slots
        self._next += 1
        tmp = self.directory / f".{slot}.tmp"
        # a new file each time: on a full filesystem even a small write needs a new block
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(record))
                handle.flush()
            os.replace(tmp, self.directory / f"{slot}.json")
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def check_writable(self) -> None:
        """Write and remove a small file; raises OSError when the disk is full or read-only."""
        probe = self.directory / ".health.tmp"
        try:
            with open(probe, "w", encoding="utf-8") as handle:
                handle.write("ok")
                handle.flush()
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()


@dataclass(frozen=True, slots=True)
class VectorConfig:
    """Settings of the vector service."""

    data_dir: Path
    vectors: int = 20_000
    dim: int = DEFAULT_DIM
    seed: int = DEFAULT_SEED


MATRIX_KEY = web.AppKey("matrix", np.ndarray)
LOG_KEY = web.AppKey("query_log", QueryLog)
CONFIG_KEY = web.AppKey("config", VectorConfig)


def _write_error(exc: OSError) -> web.Response:
    status = 507 if exc.errno == errno.ENOSPC else 500
    reason = "no space left on device" if status == 507 else (exc.strerror or "write failed")
    return web.json_response({"error": f"cannot write query log: {reason}"}, status=status)


async def health(request: web.Request) -> web.Response:
    """Liveness and disk writability."""
    config = request.app[CONFIG_KEY]
    try:
        request.app[LOG_KEY].check_writable()
    except OSError as exc:
        reason = "full" if exc.errno == errno.ENOSPC else (exc.strerror or "error")
        return web.json_response({"status": "degraded", "disk": reason, "vectors": config.vectors}, status=503)
    return web.json_response({"status": "ok", "disk": "ok", "vectors": config.vectors, "dim": config.dim})


async def search(request: web.Request) -> web.Response:
    """Embed the query, find its nearest stored vectors, log the query to disk."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return web.json_response({"error": "expected a JSON body"}, status=400)
    query = body.get("query") if isinstance(body, dict) else None
    k = body.get("k", 5) if isinstance(body, dict) else None
    if not isinstance(query, str) or not query:
        return web.json_response({"error": "expected 'query' to be a non-empty string"}, status=400)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        return web.json_response({"error": f"expected 'k' to be an integer from 1 to {MAX_K}, got {k!r}"}, status=400)
    started = time.perf_counter()
    config = request.app[CONFIG_KEY]
    hits = top_k(request.app[MATRIX_KEY], embed(query, config.dim), k)
    took_ms = round((time.perf_counter() - started) * 1000, 3)
    try:
        request.app[LOG_KEY].write({"query": query, "k": k, "took_ms": took_ms, "top": hits[0].id})
    except OSError as exc:
        return _write_error(exc)
    return web.json_response(
        {"query": query, "results": [{"id": h.id, "score": h.score} for h in hits], "took_ms": took_ms}
    )


def make_app(config: VectorConfig) -> web.Application:
    """The aiohttp application (vectors loaded or generated now)."""
    app = web.Application()
    app[CONFIG_KEY] = config
    app[MATRIX_KEY] = load_or_create(config.data_dir, config.vectors, config.dim, config.seed)
    app[LOG_KEY] = QueryLog(config.data_dir)
    app.router.add_get("/health", health)
    app.router.add_post("/search", search)
    return app


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m chaoslab.demo.vector", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=28081)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--vectors", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=DEFAULT_DIM)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    config = VectorConfig(data_dir=args.data_dir, vectors=args.vectors, dim=args.dim, seed=args.seed)
    run(serve(make_app(config), args.host, args.port))


if __name__ == "__main__":
    main()
