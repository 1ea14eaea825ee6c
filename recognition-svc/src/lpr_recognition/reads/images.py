"""Checking a posted image before anything is stored.

The type is decided by the file's magic bytes, not by the part's declared content type;
the pixel count is read from the header before decoding (so a decompression bomb is
refused cheaply); then the whole image is decoded, which refuses corrupt and truncated
files.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile

from lpr_common.errors import FieldError, InvalidInput, PayloadTooLarge, UnsupportedMediaType

JPEG, PNG = "image/jpeg", "image/png"
_MAGIC = ((b"\xff\xd8\xff", JPEG), (b"\x89PNG\r\n\x1a\n", PNG))
_PIL_FORMATS = {JPEG: "JPEG", PNG: "PNG"}
# Declared types a camera may send along with a JPEG or PNG body.
_NEUTRAL_TYPES = {None, "", "application/octet-stream"}

# Refuse truncated files instead of padding them with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


@dataclass(frozen=True)
class CheckedImage:
    """An image that decoded completely within the limits."""

    content_type: str
    width: int
    height: int
    size: int


def sniff_content_type(data: bytes) -> str | None:
    """``image/jpeg`` or ``image/png`` from the magic bytes, else None."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    return None


def check_image(
    data: bytes,
    *,
    declared_type: str | None,
    max_bytes: int,
    max_pixels: int,
    field: str = "image",
) -> CheckedImage:
    """Check a posted image; raise a 4xx error naming ``field`` when it is refused.

    Raises:
        PayloadTooLarge: Over ``max_bytes``.
        UnsupportedMediaType: Not a JPEG or PNG, or not what the part declared.
        InvalidInput: Empty, over ``max_pixels``, corrupt or truncated.
    """
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"{field}: {len(data)} bytes is over the limit of {max_bytes} bytes",
            errors=[_error(field, f"larger than {max_bytes} bytes")],
        )
    if not data:
        raise InvalidInput.field(field, "empty file")
    content_type = sniff_content_type(data)
    if content_type is None:
        raise UnsupportedMediaType(
            f"{field}: not a JPEG or PNG image", errors=[_error(field, "not a JPEG or PNG image")]
        )
    declared = (declared_type or "").split(";")[0].strip().lower() or None
    if declared not in _NEUTRAL_TYPES and declared != content_type:
        reason = f"declared {declared} but the content is {content_type}"
        raise UnsupportedMediaType(f"{field}: {reason}", errors=[_error(field, reason)])
    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies; PIL's bomb warning would only duplicate it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[content_type]]) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise InvalidInput.field(
                        field, f"{width}x{height} pixels is over the limit of {max_pixels} pixels"
                    )
                if width == 0 or height == 0:
                    raise InvalidInput.field(field, "image has no pixels")
                image.load()
    except InvalidInput:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput.field(field, f"corrupt or truncated image: {exc}") from None
    if content_type == JPEG and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        # A JPEG cut short after its last full scan decodes, but it is still truncated.
        raise InvalidInput.field(field, "corrupt or truncated image: no end-of-image marker")
    return CheckedImage(content_type=content_type, width=width, height=height, size=len(data))


def _error(field: str, reason: str) -> FieldError:
    return FieldError(field=field, reason=reason)
