"""What the load is sent to over HTTP: ``dmitems serve``, started by bench or given by --url.

* :class:`HttpTarget`: aiohttp against ``dmitems serve`` (routes in the README).
* :class:`HttpxTarget`: httpx, only for ``--client sequential`` (the article).

Both run the same operation mix on the same rows as the database targets
(:class:`~dmitems.bench.targets.BenchRows`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from dmitems.bench.spec import LIST_PAGE
from dmitems.bench.targets import BenchRows, RequestFailed, Work

if TYPE_CHECKING:
    import aiohttp
    import httpx


def http_request(work: Work) -> tuple[str, str, dict[str, Any] | None]:
    """(method, path, JSON body) for ``work`` on the REST routes of ``dmitems serve``."""
    if work.operation == "get":
        return "GET", f"/items/{work.item_id}", None
    if work.operation == "list":
        return "GET", f"/items?skip=0&limit={LIST_PAGE}&total=false", None
    if work.operation == "create":
        return "POST", "/items", work.payload
    if work.operation == "update":
        return "PATCH", f"/items/{work.item_id}", work.payload
    if work.operation == "delete":
        return "DELETE", f"/items/{work.item_id}", None
    return "GET", "/livez", None


def _status_kind(status: int) -> str:
    return f"http_{status}"


def _created_id(work: Work, body: bytes) -> int | None:
    if work.operation != "create":
        return None
    import orjson

    try:
        return int(orjson.loads(body)["id"])
    except (ValueError, KeyError, TypeError):
        raise RequestFailed("bad_response") from None


def _aiohttp_kind(exc: BaseException) -> str:
    import aiohttp

    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected"
    return type(exc).__name__


class _HttpCalls:
    """One request per call: decide the work, send it, keep the row book straight."""

    rows: BenchRows

    async def _send(self, work: Work) -> int | None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def call(self, operation: str) -> Any:
        work = self.rows.next(operation)
        if not isinstance(work, Work):
            return work
        try:
            created = await self._send(work)
        except BaseException:
            self.rows.failed(work)
            raise
        self.rows.done(work, created)
        return None


class HttpTarget(_HttpCalls):
    """aiohttp over keep-alive connections, at most ``concurrency`` at once."""

    mode: str

    def __init__(
        self, mode: str, base_url: str, rows: BenchRows, concurrency: int, timeout: float,
        api_key: str | None = None,
    ) -> None:
        self.mode = mode
        self.base_url = base_url.rstrip("/")
        self.rows = rows
        self.concurrency = concurrency
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.session: aiohttp.ClientSession | None = None

    async def open(self, connections: int) -> float:
        """Start the session and open the keep-alive connections; return seconds taken."""
        import aiohttp

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers=self.headers,
        )
        started = time.perf_counter()
        await asyncio.gather(
            *(self._send(Work("livez")) for _ in range(min(connections, self.concurrency))),
            return_exceptions=True,
        )
        return time.perf_counter() - started

    async def pool(self) -> None:
        return None

    async def seed(self, count: int, deletable: int) -> None:
        gate = asyncio.Semaphore(16)

        async def create() -> int | None:
            work = Work("create", payload=self.rows.seed_payloads(1)[0])
            async with gate:
                try:
                    return await self._send(work)
                except Exception:
                    return None

        ids = [i for i in await asyncio.gather(*(create() for _ in range(count))) if i is not None]
        self.rows.seeded(ids, min(deletable, len(ids) // 2))

    async def _send(self, work: Work) -> int | None:
        import orjson

        assert self.session is not None
        method, path, payload = http_request(work)
        data = orjson.dumps(payload) if payload is not None else None
        try:
            async with self.session.request(method, self.base_url + path, data=data) as response:
                body = await response.read()
                status = response.status
        except RequestFailed:
            raise
        except (asyncio.TimeoutError, OSError) as exc:
            raise RequestFailed(_aiohttp_kind(exc)) from None
        except Exception as exc:
            import aiohttp

            if isinstance(exc, aiohttp.ClientError):
                raise RequestFailed(_aiohttp_kind(exc)) from None
            raise
        if status >= 400:
            raise RequestFailed(_status_kind(status))
        return _created_id(work, body)

    async def remove_remaining(self) -> int:
        """Delete, over HTTP, every row this target created and still knows of."""
        removed = 0
        gate = asyncio.Semaphore(16)

        async def delete(item_id: int) -> None:
            nonlocal removed
            async with gate:
                try:
                    await self._send(Work("delete", item_id))
                    removed += 1
                except Exception:
                    pass

        await asyncio.gather(*(delete(item_id) for item_id in self.rows.remaining()))
        return removed

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


class HttpxTarget(_HttpCalls):
    """The article's clients: a sync httpx.Client one request at a time, or httpx.AsyncClient."""

    def __init__(
        self, mode: str, base_url: str, rows: BenchRows, timeout: float, api_key: str | None
    ) -> None:
        self.mode = mode
        self.base_url = base_url.rstrip("/")
        self.rows = rows
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client: httpx.Client | None = None
        self.async_client: httpx.AsyncClient | None = None

    async def open(self, connections: int) -> float:
        import httpx

        started = time.perf_counter()
        if self.mode == "sequential":
            self.client = httpx.Client(
                base_url=self.base_url, timeout=self.timeout, headers=self.headers
            )
            await asyncio.to_thread(self._request, Work("livez"))
        else:
            self.async_client = httpx.AsyncClient(
                base_url=self.base_url, timeout=self.timeout, headers=self.headers
            )
            await self._send(Work("livez"))
        return time.perf_counter() - started

    def _check(self, work: Work, response: Any) -> int | None:
        if response.status_code >= 400:
            raise RequestFailed(_status_kind(response.status_code))
        return _created_id(work, response.content)

    def _request(self, work: Work) -> int | None:
        import httpx

        assert self.client is not None
        method, path, payload = http_request(work)
        try:
            response = self.client.request(method, path, json=payload)
        except httpx.HTTPError as exc:
            raise RequestFailed(type(exc).__name__) from None
        return self._check(work, response)

    async def _send(self, work: Work) -> int | None:
        import httpx

        assert self.async_client is not None
        method, path, payload = http_request(work)
        try:
            response = await self.async_client.request(method, path, json=payload)
        except httpx.HTTPError as exc:
            raise RequestFailed(type(exc).__name__) from None
        return self._check(work, response)

    def call_sync(self, operation: str) -> Any:
        work = self.rows.next(operation)
        if not isinstance(work, Work):
            return work
        try:
            created = self._request(work)
        except BaseException:
            self.rows.failed(work)
            raise
        self.rows.done(work, created)
        return None

    async def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.async_client is not None:
            await self.async_client.aclose()
