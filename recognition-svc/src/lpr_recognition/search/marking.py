"""The FOUO marking: a response header, a body field, and a watermark on shared images.

IACP D: LPR data is For Official Use Only. Every answer carrying reads, hits or images is
marked with ``X-LPR-Marking: FOUO``; images leaving the owning agency also carry a
visible watermark naming the recipient, so a leaked copy shows where it came from.
"""

from __future__ import annotations

import io
from typing import Final

from PIL import Image, ImageDraw, ImageFont

from lpr_recognition.search.schemas import FOUO

MARKING_HEADER: Final = "X-LPR-Marking"
WATERMARK_HEADER: Final = "X-LPR-Watermark"


def watermark_text(recipient_agency: str) -> str:
    """The text drawn on an image released to ``recipient_agency``."""
    return f"{FOUO} — {recipient_agency}"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def watermark(data: bytes, recipient_agency: str) -> tuple[bytes, str]:
    """Draw a visible FOUO banner naming the recipient across the bottom of an image.

    Returns:
        The JPEG (or PNG, for a PNG input) bytes and their media type.
    """
    with Image.open(io.BytesIO(data)) as source:
        kind = source.format or "JPEG"
        image = source.convert("RGB")
    width, height = image.size
    size = max(10, min(width // 18, height // 6))
    font = _font(size)
    text = watermark_text(recipient_agency)
    draw = ImageDraw.Draw(image, "RGBA")
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    band = bottom - top + size // 2
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0, 150))
    draw.text(
        (max(2, (width - (right - left)) // 2), height - band + size // 4 - top),
        text,
        font=font,
        fill=(255, 255, 0, 255),
    )
    # A diagonal repeat over the picture so cropping the banner away does not remove it.
    draw.text((width // 10, height // 3), text, font=font, fill=(255, 255, 255, 90))
    buffer = io.BytesIO()
    if kind == "PNG":
        image.save(buffer, format="PNG")
        return buffer.getvalue(), "image/png"
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue(), "image/jpeg"
