"""Adaptive batching on the caller's side of the model: concurrent requests merge into one encoder call.

BentoML's own batching merges requests inside the process that runs the model, but each request still
costs an HTTP call to that process, and on CPU that hop, not the model, was most of a request's cost
(benchmarks/serving_load.py). Here the front service queues each request's clean inputs and sends them
to the encoder together. While one call is out, requests queue up, and the next call takes all of
them, up to `max_batch_size` items. A lone request on an idle encoder goes at once, so batching adds
no latency at low load, and batches grow with the load. A request that waited longer than
`max_latency_ms` in the queue is answered 503 ("overloaded, retry"); the deadline sheds load instead
of letting the queue grow.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from bentoml.exceptions import ServiceUnavailable


@dataclass
class _Request:
    items: Sequence
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    queued_at: float = field(default_factory=time.monotonic)


class Batcher:
    """`await batcher(items)` returns `call(merged)[rows of items]`; `call` maps N items to N rows."""

    def __init__(self, call: Callable[[Sequence], Awaitable[np.ndarray]], max_batch_size: int, max_latency_ms: int,
                 observe_size: Callable[[int], None] = lambda size: None):
        self.call, self.max_batch_size, self.deadline_s = call, max_batch_size, max_latency_ms / 1000
        self.observe_size = observe_size  # items per call, e.g. into a /metrics histogram
        self.queue: deque[_Request] = deque()
        self._worker: asyncio.Task | None = None

    async def __call__(self, items: Sequence) -> np.ndarray:
        request = _Request(items)
        self.queue.append(request)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await request.future

    async def _drain(self) -> None:
        while self.queue:
            batch = self._take()
            if batch:
                await self._run(batch)

    def _take(self) -> list[_Request]:
        """Whole requests in arrival order, up to max_batch_size items (a larger request goes alone);
        those past the deadline are refused, those whose client left are dropped."""
        batch, size, now = [], 0, time.monotonic()
        while self.queue and (not batch or size + len(self.queue[0].items) <= self.max_batch_size):
            request = self.queue.popleft()
            if request.future.done():
                continue
            if now - request.queued_at > self.deadline_s:
                request.future.set_exception(ServiceUnavailable(
                    f"overloaded: waited over {self.deadline_s * 1000:.0f} ms for the encoder; retry later"))
                continue
            batch.append(request)
            size += len(request.items)
        return batch

    async def _run(self, batch: list[_Request]) -> None:
        merged = np.concatenate([r.items for r in batch]) if isinstance(batch[0].items, np.ndarray) \
            else [item for r in batch for item in r.items]
        self.observe_size(len(merged))
        try:
            rows = await self.call(merged)
        except Exception as error:  # every request of the batch gets the encoder's failure
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        start = 0
        for request in batch:
            if not request.future.done():
                request.future.set_result(rows[start:start + len(request.items)])
            start += len(request.items)
