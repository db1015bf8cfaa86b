"""The front service's batcher: concurrent requests merge into one call, each gets exactly its rows."""

import asyncio

import numpy as np
import pytest
from bentoml.exceptions import ServiceUnavailable

from serving.batching import Batcher


class Model:
    """Rows are a function of the item alone, so a merged call can be checked against single calls."""

    def __init__(self, seconds: float = 0.05, fail_on: str | None = None):
        self.calls: list[int] = []
        self.seconds, self.fail_on = seconds, fail_on

    async def __call__(self, items) -> np.ndarray:
        self.calls.append(len(items))
        await asyncio.sleep(self.seconds)
        if self.fail_on is not None and self.fail_on in list(items):
            raise RuntimeError("encoder failed")
        return np.array([[len(str(item)), hash(str(item)) % 1000] for item in items], dtype=np.float32)


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_share_calls_and_each_gets_its_own_rows():
    model = Model()
    requests = [[f"text {i}", f"other {i} {'x' * i}"] for i in range(20)]

    async def scenario():
        batcher = Batcher(model, max_batch_size=64, max_latency_ms=10_000)
        first = asyncio.ensure_future(batcher(requests[0]))
        await asyncio.sleep(0.01)  # the first call is out: the others queue behind it
        return [await first, *await asyncio.gather(*(batcher(items) for items in requests[1:]))]

    answers = run(scenario())
    for items, rows in zip(requests, answers, strict=True):
        np.testing.assert_array_equal(rows, run(Model(0)(items)))
    assert model.calls == [2, 38]


def test_batches_never_exceed_the_limit_and_a_larger_request_goes_alone():
    model = Model()
    requests = [["a"] * 3 for _ in range(10)] + [["b"] * 12]

    async def scenario():
        batcher = Batcher(model, max_batch_size=8, max_latency_ms=10_000)
        return await asyncio.gather(*(batcher(items) for items in requests))

    answers = run(scenario())
    assert [len(rows) for rows in answers] == [len(items) for items in requests]
    assert 12 in model.calls and all(size <= 8 for size in model.calls if size != 12)
    assert sum(model.calls) == 42


def test_arrays_merge_along_the_first_axis():
    async def identity(pixels):
        return pixels * 2

    parts = [np.full((n, 3), n, dtype=np.float32) for n in (1, 2, 3)]

    async def scenario():
        batcher = Batcher(identity, max_batch_size=64, max_latency_ms=1000)
        return await asyncio.gather(*(batcher(p) for p in parts))

    for part, rows in zip(parts, run(scenario()), strict=True):
        np.testing.assert_array_equal(rows, part * 2)


def test_requests_past_the_deadline_get_503_and_the_rest_are_answered():
    model = Model(seconds=0.2)

    async def scenario():
        batcher = Batcher(model, max_batch_size=4, max_latency_ms=100)
        return await asyncio.gather(*(batcher([f"t{i}"]) for i in range(13)), return_exceptions=True)

    answers = run(scenario())
    refused = [a for a in answers if isinstance(a, ServiceUnavailable)]
    answered = [a for a in answers if isinstance(a, np.ndarray)]
    assert len(refused) + len(answered) == 13 and refused and answered
    assert "overloaded" in str(refused[0]) and "retry" in str(refused[0])
    assert sum(model.calls) == len(answered)  # a refused request costs no model time


def test_a_failed_call_fails_the_requests_it_carried_and_the_batcher_goes_on():
    model = Model(fail_on="bad")

    async def scenario():
        batcher = Batcher(model, max_batch_size=64, max_latency_ms=10_000)
        shared = await asyncio.gather(batcher(["bad"]), batcher(["good"]), return_exceptions=True)
        return shared, await batcher(["after"])

    shared, after = run(scenario())
    assert model.calls == [2, 1] and all(isinstance(a, RuntimeError) for a in shared) and after.shape == (1, 2)


def test_a_request_whose_client_left_is_not_computed():
    model = Model()

    async def scenario():
        batcher = Batcher(model, max_batch_size=64, max_latency_ms=10_000)
        first = asyncio.ensure_future(batcher(["first"]))
        await asyncio.sleep(0)
        gone = asyncio.ensure_future(batcher(["gone", "gone too"]))
        kept = asyncio.ensure_future(batcher(["kept"]))
        await asyncio.sleep(0.01)
        gone.cancel()
        return await first, await kept

    first, kept = run(scenario())
    assert model.calls == [1, 1] and first.shape == kept.shape == (1, 2)


@pytest.mark.parametrize("size", [1, 5])
def test_an_idle_batcher_calls_at_once(size):
    model = Model(seconds=0)

    async def scenario():
        batcher = Batcher(model, max_batch_size=64, max_latency_ms=1)
        answer = asyncio.ensure_future(batcher(["x"] * size))
        for _ in range(3):  # a few loop turns and no timer: the call has gone out already
            await asyncio.sleep(0)
        calls = list(model.calls)
        return calls, await answer

    calls, answer = run(scenario())
    assert calls == [size] and answer.shape == (size, 2)

