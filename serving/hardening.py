"""Adaptations of BentoML 1.4's request parsing, so that no request can cause a 5xx or make the server
fetch a URL. Each was found by the fuzz run (benchmarks/serving_fuzz.py) or the bad-request tests, and
each turns the failure into a 400 that names the problem. Applied once when the service module loads.

1. Uploaded files are opened while the request is parsed. A file Pillow cannot identify, or one
   declaring a bomb's size, raised an OSError there (a 500). Now it is a ValueError, which becomes a
   validation error (a 400) naming the item.
2. A form field that should be a file but is plain text was taken as a URL and downloaded (an SSRF
   risk). It is now refused: images arrive as uploaded files or as base64 in JSON.
3. A multipart body that cannot be parsed (no boundary, broken parts) raised inside Starlette (a 500).
"""

from __future__ import annotations

from _bentoml_impl.serde import MultipartSerde
from _bentoml_sdk.validators import PILImageEncoder
from bentoml.exceptions import BadInput
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

_APPLIED = "_alignops_hardened"


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
