"""Pagination (issue 12, point 6): every list pages with a cursor that stays right under concurrent inserts (no
row twice, none of those present at the start skipped), on both backends; JSON-array routes keep the seed's
array and give the next page in a Link header; the client walks the pages by itself; bad limits and cursors
are 422s naming the parameter."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import BACKENDS, connection_of, thread_server
from support import write_method

from dshpc_jupyter.backends import http_pages
from dshpc_jupyter.backends.http import HttpBackend
from dshpc_jupyter.domain.errors import InvalidInputError
from dshpc_jupyter.domain.models import BatchStatistics, Page
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store.sqlite import NewJob

ECHO = "print('x')\n"


def add_jobs(engine: Engine, count: int) -> list[str]:
    """Job rows recorded directly (on a scheduler nobody runs: nothing starts, nothing is polled)."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    with engine.store.write() as tx:
        tx.insert_jobs(NewJob(i, i, "", "Echo", "0" * 64, "{}", time.time(), "nowhere") for i in ids)
    return ids


def add_batch(engine: Engine) -> str:
    batch_id = uuid.uuid4().hex
    with engine.store.write() as tx:
        tx.insert_batch(batch_id, time.time(), BatchStatistics(), [])
    return batch_id


def add_file(engine: Engine) -> str:
    return engine.upload_file(uuid.uuid4().bytes).file_hash


def add_method(engine: Engine, root: Path) -> str:
    name = f"M {uuid.uuid4().hex[:8]}"
    engine.register_method(write_method(root, name, ECHO))
    return name


@pytest.fixture(params=BACKENDS)
def setup(request: pytest.FixtureRequest, home: Path) -> Iterator[tuple[Connection, Engine]]:
    """A connection of each kind, and an engine on the same home to insert rows with meanwhile."""
    with ExitStack() as stack:
        engine = open_engine(home)
        stack.callback(engine.close)
        conn = connection_of(request.param, home, stack)
        yield conn, engine


def walk(
    fetch: Callable[[str | None], Page[Any]], key: Callable[[Any], str], during: Callable[[], object]
) -> list[str]:
    """Every key of a paged list, calling ``during`` between pages (the concurrent inserts)."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10_000):
        page = fetch(cursor)
        seen.extend(key(item) for item in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return seen
        during()
    raise AssertionError("the walk did not end")


def concurrently(insert: Callable[[], object], most: int = 30) -> Iterator[None]:
    """Up to ``most`` inserts in a thread while the walk goes on (a list in insertion order would otherwise
    grow as fast as it is walked); stopped when the generator is closed."""
    stop = threading.Event()

    def run() -> None:
        for _ in range(most):
            if stop.is_set():
                return
            insert()
            time.sleep(0.005)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def check_walk(
    before: list[str],
    fetch: Callable[[str | None], Page[Any]],
    key: Callable[[Any], str],
    insert: Callable[[], list[str]],
) -> None:
    added: list[str] = []
    inserting = concurrently(lambda: added.extend(insert()))
    next(inserting)
    try:
        seen = walk(fetch, key, lambda: added.extend(insert()) if len(added) < 60 else None)
    finally:
        inserting.close()
    assert len(seen) == len(set(seen)), "a row came twice"
    assert set(before) <= set(seen), f"{len(set(before) - set(seen))} rows present at the start were skipped"
    assert set(seen) <= set(before) | set(added)
    assert len(added) >= 2, "rows were inserted while the walk went on"


def test_jobs_page_under_concurrent_inserts(setup: tuple[Connection, Engine]) -> None:
    conn, engine = setup
    before = add_jobs(engine, 60)
    check_walk(before, lambda c: conn.jobs_page(limit=7, cursor=c), lambda j: j.job_id, lambda: add_jobs(engine, 2))
    newest_first = [j.job_id for j in conn.jobs_page(limit=3).items]
    assert newest_first == [j.job_id for j in conn.list_jobs(limit=3)]


def test_files_page_under_concurrent_inserts(setup: tuple[Connection, Engine]) -> None:
    conn, engine = setup
    before = [add_file(engine) for _ in range(30)]
    check_walk(before, lambda c: conn.files_page(limit=4, cursor=c), lambda f: f.file_hash, lambda: [add_file(engine)])


def test_batches_page_under_concurrent_inserts(setup: tuple[Connection, Engine]) -> None:
    conn, engine = setup
    before = [add_batch(engine) for _ in range(30)]
    check_walk(
        before, lambda c: conn.batches_page(limit=4, cursor=c), lambda b: b.batch_id, lambda: [add_batch(engine)]
    )


def test_methods_page_under_concurrent_inserts(setup: tuple[Connection, Engine], tmp_path: Path) -> None:
    conn, engine = setup
    before = [add_method(engine, tmp_path) for _ in range(12)]
    check_walk(
        before, lambda c: conn.methods_page(limit=5, cursor=c), lambda m: m.name, lambda: [add_method(engine, tmp_path)]
    )


def test_a_batchs_results_page_and_the_client_joins_them(setup: tuple[Connection, Engine]) -> None:
    conn, _ = setup
    response = conn.simulate_jobs([{"method_name": f"missing {i}"} for i in range(25)])
    assert response.batch_id and response.failed_submissions == 25
    pages, cursor = [], None
    for _ in itertools.count():
        page = conn.batch_page(response.batch_id, limit=10, cursor=cursor)
        assert page.total_jobs == 25 and page.live.errors == 25  # the whole batch's counts on every page
        pages.append([r.method_name for r in page.results])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert list(itertools.chain(*pages)) == [f"missing {i}" for i in range(25)]
    whole = conn.batch(response.batch_id)
    assert [r.method_name for r in whole.results] == [f"missing {i}" for i in range(25)] and whole.next_cursor is None


def test_bad_limits_and_cursors_name_the_parameter(setup: tuple[Connection, Engine]) -> None:
    conn, engine = setup
    add_jobs(engine, 3)
    with pytest.raises(InvalidInputError, match="limit"):
        conn.jobs_page(limit=0)
    for bad in ("nonsense", conn.files_page(limit=1).next_cursor or "x"):
        with pytest.raises(InvalidInputError, match="cursor: not a cursor of this list"):
            conn.jobs_page(limit=1, cursor=bad)


def test_array_routes_keep_the_seeds_array_and_link_the_next_page(home: Path) -> None:
    engine = open_engine(home)
    try:
        ids = add_jobs(engine, 150)
        with thread_server(home) as url:
            first = httpx.get(f"{url}/jobs", timeout=30)
            assert first.status_code == 200 and isinstance(first.json(), list) and len(first.json()) == 100
            assert first.links["next"]["url"].startswith(f"{url}/jobs?") and "cursor=" in first.headers["link"]
            second = httpx.get(first.links["next"]["url"], timeout=30)
            assert len(second.json()) == 50 and "link" not in second.headers
            assert {j["job_id"] for j in first.json() + second.json()} == set(ids)
            failed = httpx.get(f"{url}/jobs", params={"cursor": "%%%"}, timeout=30)
            assert failed.status_code == 422 and failed.json()["detail"].startswith("cursor:")
            too_many = httpx.get(f"{url}/files", params={"limit": 10**6}, timeout=30)
            assert too_many.status_code == 422 and "limit" in too_many.json()["detail"]
    finally:
        engine.close()


def test_the_client_walks_the_pages_by_itself(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_pages, "MAX_PAGE", 7)  # the client asks for pages of 7: many requests per list
    engine = open_engine(home)
    requests: list[str] = []
    try:
        ids = add_jobs(engine, 40)
        files = [add_file(engine) for _ in range(15)]
        with thread_server(home) as url:

            class Counting(httpx.AsyncHTTPTransport):
                async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                    requests.append(request.url.path)
                    return await super().handle_async_request(request)

            with Connection(HttpBackend(url, transport=Counting())) as conn:
                assert [j.job_id for j in conn.list_jobs(limit=30)] == ids[::-1][:30]
                assert [f.file_hash for f in conn.list_files()] == files
    finally:
        engine.close()
    assert requests.count("/jobs") == 5 and requests.count("/files") == 3
