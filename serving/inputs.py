"""Request inputs checked before they reach the model: every failure is a clear 4xx, never a 5xx, and
never touches another request's batch.

Images arrive as uploaded files (multipart) or as base64 strings (JSON, optionally a `data:` URI). A
string is never taken as a path on the server.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings

from bentoml.exceptions import InvalidArgument
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field

from components.data.transforms import ImageTransform
from components.text.prompts import check_template


class Limits(BaseModel):
    """Every size a request can ask for, bounded before the work starts."""

    max_items: int = Field(64, ge=1, description="texts, images or labels in one request")
    max_pixels: int = Field(40_000_000, ge=1, description="an image's declared width x height, checked unread")
    max_image_bytes: int = Field(20 * 2**20, ge=1, description="one image's encoded bytes")
    max_text_chars: int = Field(10_000, ge=1, description="one text or label")
    max_templates: int = Field(16, ge=1, description="zero-shot prompt templates in one request")
    max_template_chars: int = Field(200, ge=3, description="one template, `{}` included")
    max_body_bytes: int = Field(64 * 2**20, ge=1024, description="a request body, counted while it is read "
                                                                 "(413 past it)")


def check_templates(templates: object, limits: Limits) -> list[str] | None:
    """None (the domain's templates), or a bounded list of templates with one bare `{}` each."""
    if templates is None:
        return None
    if not isinstance(templates, list) or not templates:
        raise InvalidArgument("templates must be a non-empty list, or left out for the domain's")
    if len(templates) > limits.max_templates:
        raise InvalidArgument(f"templates: {len(templates)} items, over the limit of {limits.max_templates}")
    for i, template in enumerate(templates):
        if isinstance(template, str) and len(template) > limits.max_template_chars:
            raise InvalidArgument(f"templates[{i}] has {len(template)} characters, over the limit of "
                                  f"{limits.max_template_chars}")
        try:
            check_template(template, f"templates[{i}]")
        except ValueError as error:
            raise InvalidArgument(str(error)) from None
    return templates


def check_list(items: object, what: str, limits: Limits) -> list:
    if not isinstance(items, list) or not items:
        raise InvalidArgument(f"{what} must be a non-empty list")
    if len(items) > limits.max_items:
        raise InvalidArgument(f"{what}: {len(items)} items, over the limit of {limits.max_items} per request; "
                              "split the request")
    return items


def check_texts(texts: object, limits: Limits, what: str = "texts") -> list[str]:
    for i, text in enumerate(check_list(texts, what, limits)):
        if not isinstance(text, str):
            raise InvalidArgument(f"{what}[{i}] must be a string, not {type(text).__name__}")
        if not text.strip():
            raise InvalidArgument(f"{what}[{i}] is empty")
        if len(text) > limits.max_text_chars:
            raise InvalidArgument(f"{what}[{i}] has {len(text)} characters, over the limit of {limits.max_text_chars}")
    return texts


def decode_images(images: object, limits: Limits, transform: ImageTransform) -> list[Image.Image]:
    """RGB images, fully decoded (large JPEGs at the reduced scale `transform` allows); the first bad one is
    named in a 400."""
    return [_decode(item, i, limits, transform) for i, item in enumerate(check_list(images, "images", limits))]


def _decode(item: object, index: int, limits: Limits, transform: ImageTransform) -> Image.Image:
    where = f"images[{index}]"
    if isinstance(item, str):
        payload = item.split(",", 1)[1] if item.startswith("data:") else item
        try:
            item = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument(f"{where} is a string but not base64 image data") from None
    if isinstance(item, bytes | bytearray):
        if len(item) > limits.max_image_bytes:
            raise InvalidArgument(f"{where} has {len(item)} bytes, over the limit of {limits.max_image_bytes}")
        item = io.BytesIO(item)
    elif not isinstance(item, Image.Image):
        raise InvalidArgument(f"{where} must be an image file or base64 string, not {type(item).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = item if isinstance(item, Image.Image) else Image.open(item)
            if image.width * image.height > limits.max_pixels:
                raise InvalidArgument(f"{where} is {image.width}x{image.height}, over the limit of "
                                      f"{limits.max_pixels} pixels")
            return transform.decode(image)  # decodes every byte: truncated data fails here
    except InvalidArgument:
        raise
    except UnidentifiedImageError:
        raise InvalidArgument(f"{where} is not an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidArgument(f"{where} declares too many pixels") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidArgument(f"{where} does not decode: {error}") from None

