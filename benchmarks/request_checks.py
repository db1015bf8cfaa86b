"""What the request bounds cost the serving front, side by side in one run: the body cap (`BodyLimit`, which
buffers and counts the body before the service sees it) against the same ASGI app without it, and the
template check against none. Bodies arrive in 64 KiB chunks, as uvicorn hands them on. Alternating, best of
7 rounds of 2,000 requests, in microseconds per request; compare with the front's ~1-2 ms per request
(README, `serving_load.py`).
Usage: python -m benchmarks.request_checks
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

from serving.hardening import BodyLimit
from serving.inputs import Limits, check_templates

ROUNDS, REQUESTS, CHUNK = 7, 2000, 64 * 2**10


async def app(scope, receive, send) -> None:
    """Reads the whole body, as BentoML's parsing does, and answers."""
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def serve(handler, body: bytes) -> None:
    chunks = [body[i:i + CHUNK] for i in range(0, len(body), CHUNK)] or [b""]
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]

    async def send(message) -> None:
        pass

    for _ in range(REQUESTS):
        queue = iter(range(len(chunks)))

        async def receive(queue=queue):
            i = next(queue, None)
            if i is None:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunks[i], "more_body": i < len(chunks) - 1}

        await handler({"type": "http", "headers": headers}, receive, send)


def per_request_us(handler, body: bytes) -> float:
    started = time.perf_counter()
    asyncio.run(serve(handler, body))
    return (time.perf_counter() - started) / REQUESTS * 1e6


def main() -> None:
    def image_body(size: int) -> bytes:
        return json.dumps({"images": [base64.b64encode(b"\xff" * size).decode()]}).encode()

    bodies = {"encode_text (60 B)": json.dumps({"texts": ["two red circles on the left"]}).encode(),
              "encode_image (200 KB)": image_body(150_000), "encode_image (4 MB)": image_body(3_000_000)}
    limited = BodyLimit(app, Limits().max_body_bytes)
    print(f"{'body':<24}{'bare us':>10}{'capped us':>11}{'added us':>10}")
    for name, body in bodies.items():
        bare, capped = [], []
        for _ in range(ROUNDS):
            bare.append(per_request_us(app, body))
            capped.append(per_request_us(limited, body))
        print(f"{name:<24}{min(bare):>10.1f}{min(capped):>11.1f}{min(capped) - min(bare):>10.1f}")
    templates = ["a photo of a {}.", "a picture of a {}.", "an image showing a {}.", "a drawing of a {}."]
    started = time.perf_counter()
    for _ in range(REQUESTS * 10):
        check_templates(templates, Limits())
    print(f"template check, 4 templates: {(time.perf_counter() - started) / (REQUESTS * 10) * 1e6:.1f} us per request")


if __name__ == "__main__":
    main()
