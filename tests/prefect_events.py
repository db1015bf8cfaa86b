"""Reading alignops' Prefect events back from the API a test runs against."""

from __future__ import annotations

import time

from flows.steps.candidate import ALIAS_MOVED


def alias_events(name: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    with get_client(sync_client=True) as client:
        page = client.read_events(filter=EventFilter(event=EventNameFilter(name=[ALIAS_MOVED]),
                                                     resource=EventResourceFilter(id=[f"alignops.model.{name}"])),
                                   limit=50)  # the client defaults to 100, which the server refuses
    return page.events


def wait_for_alias_events(name: str, count: int, timeout_s: float = 10) -> list:
    """The model's alias events once there are `count` (they reach the API asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while len(events := alias_events(name)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return events
