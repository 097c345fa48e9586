"""The vector search service: embedding, top-k, persistence, HTTP API, full-disk behaviour."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from chaoslab.demo.vector import QueryLog, VectorConfig, embed, generate_vectors, load_or_create, make_app, top_k
from tests.conftest import require
from tests.demo.conftest import Serve


class TestEmbedding:
    """Deterministic vectors from seeds and texts."""

    def test_same_text_same_vector(self) -> None:
        """Embedding is a pure function of the text."""
        assert np.array_equal(embed("red"), embed("red"))
        assert not np.array_equal(embed("red"), embed("blue"))

    def test_unit_length(self) -> None:
        """Embeddings and generated vectors have length one (so dot product = cosine)."""
        assert float(np.linalg.norm(embed("violet", 32))) == pytest.approx(1.0, abs=1e-5)
        norms = np.linalg.norm(generate_vectors(50, 16, seed=3), axis=1)
        assert np.allclose(norms, 1.0, atol=1e-5)

    def test_generation_is_seeded(self) -> None:
        """The same seed gives the same matrix; another seed another one."""
        assert np.array_equal(generate_vectors(10, 8, seed=1), generate_vectors(10, 8, seed=1))
        assert not np.array_equal(generate_vectors(10, 8, seed=1), generate_vectors(10, 8, seed=2))


class TestTopK:
    """Brute-force cosine ranking."""

    def test_finds_the_query_itself_first(self) -> None:
        """A stored vector used as the query ranks first with score 1."""
        matrix = generate_vectors(1000, 32, seed=5)
        hits = top_k(matrix, matrix[417], 3)
        assert hits[0].id == 417
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[0].score >= hits[1].score >= hits[2].score

    def test_k_is_clamped_to_the_number_of_vectors(self) -> None:
        """Asking for more results than vectors returns every vector once."""
        matrix = generate_vectors(4, 8, seed=5)
        assert sorted(h.id for h in top_k(matrix, embed("x", 8), 10)) == [0, 1, 2, 3]


class TestPersistence:
    """Vectors on disk are reused; the query log is a bounded ring of files."""

    def test_vectors_are_saved_and_reloaded(self, tmp_path: Path) -> None:
        """A second load reads the same matrix from vectors.npy."""
        first = load_or_create(tmp_path, 100, 16, seed=9)
        assert (tmp_path / "vectors.npy").exists()
        (tmp_path / "marker").write_text("x")
        second = load_or_create(tmp_path, 100, 16, seed=9)
        assert np.array_equal(first, second)

    def test_a_different_count_regenerates(self, tmp_path: Path) -> None:
        """A stored matrix of another shape is replaced."""
        load_or_create(tmp_path, 100, 16)
        assert load_or_create(tmp_path, 120, 16).shape == (120, 16)

    def test_query_log_ring_stays_bounded(self, tmp_path: Path) -> None:
        """Writing more records than slots keeps exactly ``slots`` files."""
        log = QueryLog(tmp_path, slots=4)
        for i in range(10):
            log.write({"query": f"q{i}"})
        assert sorted(p.name for p in (tmp_path / "queries").iterdir()) == ["0.json", "1.json", "2.json", "3.json"]
        assert (tmp_path / "queries" / "1.json").read_text() == '{"query": "q9"}'


class TestVectorHttp:
    """The service over real HTTP on 127.0.0.1."""

    async def test_search_returns_k_ranked_results(self, serve: Serve, tmp_path: Path) -> None:
        """POST /search gives k results, best first, the same for the same query."""
        url = await serve(make_app(VectorConfig(data_dir=tmp_path, vectors=2000)))
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/search", json={"query": "red", "k": 5}) as resp:
                assert resp.status == 200
                first = await resp.json()
            async with session.post(f"{url}/search", json={"query": "red", "k": 5}) as resp:
                second = await resp.json()
        assert len(first["results"]) == 5
        scores = [r["score"] for r in first["results"]]
        assert scores == sorted(scores, reverse=True)
        assert first["results"] == second["results"]

    @pytest.mark.parametrize(
        "body", [{"k": 5}, {"query": "", "k": 5}, {"query": "x", "k": 0}, {"query": "x", "k": 101}, [1, 2]]
    )
    async def test_bad_requests_get_400(self, serve: Serve, tmp_path: Path, body: object) -> None:
        """A missing/empty query or k outside 1..100 is a 400 with an error message."""
        url = await serve(make_app(VectorConfig(data_dir=tmp_path, vectors=100)))
        async with aiohttp.ClientSession() as session, session.post(f"{url}/search", json=body) as resp:
            assert resp.status == 400
            assert "error" in await resp.json()

    async def test_health_reports_vectors_and_disk(self, serve: Serve, tmp_path: Path) -> None:
        """GET /health is 200 with the vector count and a writable disk."""
        url = await serve(make_app(VectorConfig(data_dir=tmp_path, vectors=300)))
        async with aiohttp.ClientSession() as session, session.get(f"{url}/health") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok", "disk": "ok", "vectors": 300, "dim": 64}


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only), unmounted afterwards."""
    require(os.geteuid() == 0, "mounting a tmpfs needs root")
    mount = tmp_path / "fs"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    require(result.returncode == 0, f"cannot mount tmpfs: {result.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


class TestFullDisk:
    """A full data filesystem fails searches and health, and recovers when space returns."""

    async def test_enospc_gives_507_and_unhealthy_then_recovers(self, serve: Serve, small_tmpfs: Path) -> None:
        """With the tmpfs full: search 507, health 503 'full'; after removing the filler: 200 again."""
        url = await serve(make_app(VectorConfig(data_dir=small_tmpfs, vectors=200)))
        filler = small_tmpfs / "filler"
        with open(filler, "wb", buffering=0) as handle:
            for _ in range(2048):  # at most 2 MiB of 1 KiB writes; the 1 MiB tmpfs ends it first
                try:
                    handle.write(b"\0" * 1024)
                except OSError:
                    break
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/search", json={"query": "red", "k": 3}) as resp:
                assert resp.status == 507
                assert "no space left" in (await resp.json())["error"]
            async with session.get(f"{url}/health") as resp:
                assert resp.status == 503
                assert (await resp.json())["disk"] == "full"
            filler.unlink()
            async with session.post(f"{url}/search", json={"query": "red", "k": 3}) as resp:
                assert resp.status == 200
            async with session.get(f"{url}/health") as resp:
                assert resp.status == 200
