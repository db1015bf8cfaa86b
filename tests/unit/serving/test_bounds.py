"""Work a request asks for is bounded before it starts: templates, and bodies counted while they are read."""

import asyncio

import pytest
from bentoml.exceptions import InvalidArgument

from components.text.prompts import prompts
from serving.hardening import BodyLimit
from serving.inputs import Limits, check_templates

HOSTILE_TEMPLATES = [["{:>100000000}{{}}"] * 5, ["{}{x}"], ["{:>5}{}"], ["{0}"], ["no placeholder"], ["{}{}"],
                     ["{} {"], ["{!r}"], [None], ["{}"] * 17, ["a {} " + "x" * 200], [], "a {}"]


@pytest.mark.parametrize("templates", HOSTILE_TEMPLATES)
def test_hostile_templates_are_refused_before_formatting(templates):
    with pytest.raises(InvalidArgument):
        check_templates(templates, Limits())


def test_a_label_with_braces_is_placed_verbatim():
    assert prompts(["{0.__class__}", "x{}"], ["a photo of {}."]) == [["a photo of {0.__class__}."],
                                                                      ["a photo of x{}."]]
    assert check_templates(None, Limits()) is None and check_templates(["a {} b"], Limits()) == ["a {} b"]


async def _call(app, headers, chunks):
    sent, queue = [], list(chunks)

    async def receive():
        if not queue:
            return {"type": "http.disconnect"}
        body = queue.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(queue)}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "headers": headers}, receive, send)
    return sent, queue


def _echo():
    seen = {}

    async def app(scope, receive, send):
        message = await receive()
        seen["body"] = message["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app, seen


def test_body_over_the_limit_is_refused_from_its_header_or_while_it_is_read():
    app, seen = _echo()
    limited = BodyLimit(app, max_bytes=1000)
    sent, _ = asyncio.run(_call(limited, [(b"content-length", b"100000000")], [b"x" * 10]))
    assert sent[0]["status"] == 413 and b"over the limit of 1000 bytes" in sent[1]["body"] and not seen
    chunks = [b"x" * 400] * 10  # chunked, no length: refused after the third chunk, the rest never read
    sent, unread = asyncio.run(_call(limited, [], chunks))
    assert sent[0]["status"] == 413 and len(unread) == 7 and not seen
    sent, _ = asyncio.run(_call(limited, [], [b"a" * 500, b"b" * 500]))
    assert sent[0]["status"] == 200 and seen["body"] == b"a" * 500 + b"b" * 500  # exactly at the limit: whole
    sent, _ = asyncio.run(_call(limited, [(b"content-length", b"-1")], [b""]))
    assert sent[0]["status"] == 413
