"""The shutdown gate: a drain waits for every request, and starts none after it ends."""

from __future__ import annotations

import json

import anyio
import pytest

from memlane.daemon.api.drain import Gate
from memlane.daemon.api.server import Request, Response, json_response

REQUEST = Request(method="POST", path="/v1/memories", query={}, headers={}, body=b"",
                  transport="unix")


@pytest.mark.anyio
async def test_a_request_starting_as_the_last_one_ends_is_waited_for_too() -> None:
    """The last request in flight ends and, before the drain looks again, a kept-alive
    connection's next request starts: the drain waits for that one as well."""
    gate = Gate()
    first_done, second_may_end = anyio.Event(), anyio.Event()
    ended: list[str] = []

    async def first(_request: Request) -> Response:
        await first_done.wait()
        ended.append("first")
        return json_response({})

    async def second(_request: Request) -> Response:
        await second_may_end.wait()
        ended.append("second")
        return json_response({})

    outcome: list[bool] = []

    async def drain() -> None:
        outcome.append(await gate.drain(5.0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(gate.wrap(first), REQUEST)
        await anyio.sleep(0.01)
        tg.start_soon(drain)
        await anyio.sleep(0.01)
        first_done.set()
        tg.start_soon(gate.wrap(second), REQUEST)  # in the same tick as the first one's end
        await anyio.sleep(0.05)
        assert outcome == []  # the second is still in flight
        second_may_end.set()
    assert outcome == [True]
    assert ended == ["first", "second"]


@pytest.mark.anyio
async def test_a_request_after_the_drain_is_refused_with_a_reason_and_never_started() -> None:
    gate = Gate()
    started: list[Request] = []

    async def handler(request: Request) -> Response:
        started.append(request)
        return json_response({})

    assert await gate.drain(1.0) is True
    response = await gate.wrap(handler)(REQUEST)
    assert started == []
    assert response.status == 503
    assert json.loads(response.body)["error"]["code"] == "shutting_down"
    assert ("connection", "close") in response.headers


@pytest.mark.anyio
async def test_a_drain_that_runs_out_of_time_says_so() -> None:
    gate = Gate()

    async def stuck(_request: Request) -> Response:
        await anyio.sleep(10)
        return json_response({})

    async with anyio.create_task_group() as tg:
        tg.start_soon(gate.wrap(stuck), REQUEST)
        await anyio.sleep(0.01)
        assert await gate.drain(0.05) is False
        assert gate.inflight == 1
        tg.cancel_scope.cancel()
