"""Adaptations of BentoML 1.4's request parsing, so that no request can cause a 5xx or make the server
fetch a URL. Each was found by the fuzz run (benchmarks/serving_fuzz.py) or the bad-request tests, and
each turns the failure into a 400 that names the problem. Applied once when the service module loads.

1. Uploaded files are opened while the request is parsed. A file Pillow cannot identify, or one
   declaring a bomb's size, raised an OSError there (a 500). Now it is a ValueError, which becomes a
   validation error (a 400) naming the item.
2. A form field that should be a file but is plain text was taken as a URL and downloaded (an SSRF
   risk). It is now refused: images arrive as uploaded files or as base64 in JSON.
3. A multipart body that cannot be parsed (no boundary, broken parts) raised inside Starlette (a 500).
4. No body size was bounded: a 100 MB body was read in full before being refused. `BodyLimit` answers
   413 from the Content-Length header, or as soon as the bytes read pass the limit, before the service
   sees the request.
"""

from __future__ import annotations

import json

from _bentoml_impl.serde import MultipartSerde
from _bentoml_sdk.validators import PILImageEncoder
from bentoml.exceptions import BadInput
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

_APPLIED = "_alignops_hardened"


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 without being read past the limit. The body
    is buffered (BentoML reads it whole anyway) and handed on only once it is known to fit."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._too_large(send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self._too_large(send)
            more = message.get("more_body", False)
        body, delivered = b"".join(chunks), False

        async def replay():
            nonlocal delivered
            if delivered:
                return await receive()  # after the body: disconnect notices
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    async def _too_large(self, send) -> None:
        message = json.dumps({"error": f"request body over the limit of {self.max_bytes} bytes: send fewer or "
                                       "smaller items per request"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(message)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": message})


def apply() -> None:
    if getattr(MultipartSerde, _APPLIED, False):
        return
    _reject_unreadable_uploads()
    _refuse_urls_in_file_fields()
    _reject_malformed_multipart()
    setattr(MultipartSerde, _APPLIED, True)


def _reject_unreadable_uploads() -> None:
    decode = PILImageEncoder.decode

    def decode_or_reject(self, obj):
        try:
            return decode(self, obj)
        except UnidentifiedImageError:
            raise ValueError("not an image") from None
        except Image.DecompressionBombError:
            raise ValueError("declares too many pixels (a decompression bomb?)") from None
        except OSError as error:
            raise ValueError(f"does not decode: {error}") from None

    PILImageEncoder.decode = decode_or_reject


def _refuse_urls_in_file_fields() -> None:
    async def ensure_file(obj: object) -> UploadFile:
        if isinstance(obj, UploadFile):
            return obj
        raise BadInput("a file field held text: upload images as files, or send them as base64 strings in a "
                       "JSON body (URLs are not fetched)")

    MultipartSerde.ensure_file = staticmethod(ensure_file)


def _reject_malformed_multipart() -> None:
    parse_request = MultipartSerde.parse_request

    async def parse_or_reject(self, request, cls):
        try:
            return await parse_request(self, request, cls)
        except BadInput:
            raise
        except HTTPException as error:  # Starlette's own 4xx, which BentoML would answer with a 500
            raise BadInput(f"malformed multipart/form-data body: {error.detail}") from None
        except (KeyError, ValueError, AssertionError) as error:
            if isinstance(error, ValueError) and hasattr(error, "errors"):  # pydantic: BentoML answers 400
                raise
            raise BadInput(f"malformed multipart/form-data body ({type(error).__name__}: {error}); send a "
                           "boundary and well-formed parts, or use JSON") from None

    MultipartSerde.parse_request = parse_or_reject
