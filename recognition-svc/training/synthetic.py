"""Synthetic plates rendered with the machine's fonts, already cropped and degraded.

Each plate carries what confuses a reader on real ones: a state name, a slogan,
stickers, separators inside the number, dealer frames, then perspective, light,
noise and blur. The label is the plate number only.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from plate_data import INPUT_HEIGHT, INPUT_WIDTH, degrade

FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts"))
NUMBER_FONT_NAMES = (
    "DejaVuSansCondensed-Bold.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansMono-Bold.ttf",
    "LiberationSans-Bold.ttf",
    "LiberationSansNarrow-Bold.ttf",
    "LiberationMono-Bold.ttf",
    "DejaVuSerifCondensed-Bold.ttf",
    "LiberationSerif-Bold.ttf",
    "DejaVuSansCondensed.ttf",
    "LiberationSansNarrow-Regular.ttf",
)
SMALL_FONT_NAMES = (
    "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSans-Oblique.ttf",
    "LiberationSerif-Italic.ttf",
    "LiberationSans-Regular.ttf",
    "DejaVuSans.ttf",
    "LiberationSerif-BoldItalic.ttf",
)
STATES = (
    "CALIFORNIA",
    "TEXAS",
    "NEW YORK",
    "FLORIDA",
    "ILLINOIS",
    "OHIO",
    "GEORGIA",
    "MICHIGAN",
    "ARIZONA",
    "Colorado",
    "Oregon",
    "NEVADA",
    "Virginia",
    "MARYLAND",
    "New Jersey",
    "PENNSYLVANIA",
    "Washington",
    "Massachusetts",
    "UTAH",
    "IDAHO",
    "Montana",
    "KANSAS",
)
SLOGANS = (
    "dmv.ca.gov",
    "Sunshine State",
    "THE LONE STAR STATE",
    "Empire State",
    "Land of Lincoln",
    "Great Lakes",
    "Grand Canyon State",
    "Famous Potatoes",
    "Garden State",
    "Life Elevated",
    "Keystone State",
    "visitPA.com",
    "Evergreen State",
    "Virginia is for Lovers",
    "Big Sky",
    "Peach State",
    "Pure Michigan",
    "Battle Born",
    "Spirit of America",
    "Live Free or Die",
)
# Letter/digit layouts per region: L letter, D digit, a space marks a possible separator.
LAYOUTS = {
    "us": (
        "DLLL DDD",
        "LLL DDDD",
        "LLL DDD",
        "DDD LLL",
        "LL DDDDD",
        "D LLL DDD",
        "DDD DDD",
        "LLL DDDD",
        "DLL DDD",
        "DD LLLD",
        "LLL LDD",
        "DDDD LL",
        "LDD LLL",
        "*",
        "*",
    ),
    "eu": (
        "LL DDD LL",
        "LL DD LLL",
        "LLL DDD",
        "L DDD LLL",
        "D LLL DDD",
        "LL LL DDDD",
        "LLL DDDD",
        "DDDD LLL",
        "LL DDDD LL",
        "LL DDDDD",
    ),
    "br": ("LLL DDDD", "LLL DLDD", "LLL DLDD"),
}


def _find_fonts(names: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    for name in names:
        for root in FONT_DIRS:
            hits = sorted(root.rglob(name)) if root.exists() else []
            if hits:
                found.append(hits[0])
                break
    return found


def random_number(rng: random.Random, region: str) -> list[str]:
    """Groups of characters making one plate number (joined, it is the label)."""
    layout = rng.choice(LAYOUTS[region])
    if layout == "*":
        # Vanity and odd formats: any 4 to 7 letters and digits.
        chars = string.ascii_uppercase + string.digits
        return ["".join(rng.choice(chars) for _ in range(rng.randint(4, 7)))]
    groups = []
    for group in layout.split(" "):
        groups.append(
            "".join(
                rng.choice(string.ascii_uppercase if kind == "L" else string.digits)
                for kind in group
            )
        )
    return groups


class PlateRenderer:
    """Renders synthetic plate crops with a seeded random generator."""

    def __init__(self) -> None:
        """Find the fonts on this machine.

        Raises:
            FileNotFoundError: No usable fonts (install fonts-dejavu-core fonts-liberation).
        """
        self.number_fonts = _find_fonts(NUMBER_FONT_NAMES)
        self.small_fonts = _find_fonts(SMALL_FONT_NAMES) or self.number_fonts
        if len(self.number_fonts) < 3:
            raise FileNotFoundError(
                "fonts missing: apt-get install fonts-dejavu-core fonts-liberation"
            )
        self._cache: dict[tuple[Path, int], ImageFont.FreeTypeFont] = {}

    def _font(self, path: Path, size: int) -> ImageFont.FreeTypeFont:
        key = (path, size)
        if key not in self._cache:
            self._cache[key] = ImageFont.truetype(str(path), size)
        return self._cache[key]

    def _fit_font(
        self, path: Path, text: str, width: float, height: float
    ) -> ImageFont.FreeTypeFont:
        size = max(8, int(height))
        font = self._font(path, size)
        box = font.getbbox(text)
        text_w, text_h = box[2] - box[0], box[3] - box[1]
        scale = min(width / max(text_w, 1), height / max(text_h, 1))
        return self._font(path, max(8, int(size * scale)))

    def _centred_line(
        self,
        draw: ImageDraw.ImageDraw,
        rng: random.Random,
        text: str,
        band: tuple[float, float, float, float],
        width_share: tuple[float, float],
        height_share: tuple[float, float],
        color: tuple[int, ...],
    ) -> None:
        """A line of small print (state name, slogan) centred across the plate.

        ``band`` is ``(left, top, plate width, plate height)``; the font and its size are
        drawn at random within the given shares of the plate's width and height.
        """
        left, top, plate_w, plate_h = band
        font = self._fit_font(
            rng.choice(self.small_fonts),
            text,
            plate_w * rng.uniform(*width_share),
            plate_h * rng.uniform(*height_share),
        )
        width = font.getbbox(text)[2]
        draw.text((left + (plate_w - width) / 2, top), text, font=font, fill=color)

    def plate(
        self, rng: random.Random, region: str
    ) -> tuple[npt.NDArray[np.uint8], str, tuple[int, int, int, int]]:
        """Render a flat plate: BGR image, label, and the plate's box on that image."""
        groups = random_number(rng, region)
        label = "".join(groups)
        aspect = {
            "us": rng.uniform(1.8, 2.2),
            "eu": rng.uniform(3.2, 4.8),
            "br": rng.uniform(2.8, 3.2),
        }[region]
        plate_h = 120
        plate_w = int(plate_h * aspect)
        dark = rng.random() < 0.12
        if dark:
            background = tuple(rng.randint(0, 90) for _ in range(3))
            ink = tuple(rng.randint(190, 255) for _ in range(3))
        else:
            base = rng.randint(190, 255)
            background = (base, base - rng.randint(0, 40), base - rng.randint(0, 60))
            if rng.random() < 0.5:
                background = (base, base, base)
            if rng.random() < 0.3:
                channels = list(background)
                rng.shuffle(channels)
                background = tuple(channels)
            ink = rng.choice(
                [(10, 10, 10), (20, 30, 120), (120, 20, 20), (20, 80, 30), (60, 0, 60)]
            )
            ink = tuple(max(0, c + rng.randint(-10, 30)) for c in ink)
        # Surroundings: the car body around the plate.
        surround = tuple(rng.randint(0, 255) for _ in range(3))
        margin_x, margin_y = int(plate_w * 0.45), int(plate_h * 0.6)
        canvas = Image.new("RGB", (plate_w + 2 * margin_x, plate_h + 2 * margin_y), surround)
        draw = ImageDraw.Draw(canvas)
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 4)):
                x0, y0 = rng.randint(0, canvas.width), rng.randint(0, canvas.height)
                shade = tuple(rng.randint(0, 255) for _ in range(3))
                draw.rectangle(
                    (x0, y0, x0 + rng.randint(10, 200), y0 + rng.randint(5, 60)), fill=shade
                )
        px, py = margin_x, margin_y
        draw.rounded_rectangle(
            (px, py, px + plate_w, py + plate_h), radius=rng.randint(0, 12), fill=background
        )
        if rng.random() < 0.3:
            # Background art: hills, a sun, waves.
            for _ in range(rng.randint(1, 3)):
                art = tuple(min(255, max(0, c + rng.randint(-60, 20))) for c in background)
                cx, cy = px + rng.randint(0, plate_w), py + rng.randint(0, plate_h)
                r = rng.randint(15, 70)
                draw.ellipse((cx - r, cy - r // 2, cx + r, cy + r // 2), fill=art)
        if rng.random() < 0.5:
            draw.rounded_rectangle(
                (px + 3, py + 3, px + plate_w - 3, py + plate_h - 3),
                radius=rng.randint(0, 10),
                outline=ink,
                width=rng.randint(1, 4),
            )
        top_band, bottom_band = 0.0, 0.0
        if region == "eu" and rng.random() < 0.8:
            strip_w = int(plate_h * 0.35)
            draw.rectangle((px, py, px + strip_w, py + plate_h), fill=(30, 50, 170))
            letters = rng.choice(["D", "F", "I", "NL", "PL", "CZ", "E", "B", "A", "GB"])
            font = self._fit_font(
                rng.choice(self.small_fonts), letters, strip_w * 0.8, plate_h * 0.22
            )
            draw.text(
                (px + strip_w * 0.1, py + plate_h * 0.68), letters, font=font, fill=(240, 240, 240)
            )
            left_edge = px + strip_w
        else:
            left_edge = px
        if region == "br":
            band_h = int(plate_h * 0.22)
            draw.rectangle((px, py, px + plate_w, py + band_h), fill=(20, 60, 160))
            font = self._fit_font(
                rng.choice(self.small_fonts), "BRASIL", plate_w * 0.3, band_h * 0.8
            )
            draw.text((px + plate_w * 0.35, py + 2), "BRASIL", font=font, fill=(240, 240, 240))
            top_band = 0.24
        if region == "us":
            if rng.random() < 0.85:
                state = rng.choice(STATES)
                color = rng.choice([ink, (30, 40, 150), (160, 20, 20), (20, 20, 20)])
                band = (px, py + plate_h * 0.04, plate_w, plate_h)
                self._centred_line(draw, rng, state, band, (0.4, 0.8), (0.14, 0.24), color)
                top_band = 0.26
            if rng.random() < 0.6:
                slogan = rng.choice(SLOGANS)
                band = (px, py + plate_h * 0.82, plate_w, plate_h)
                self._centred_line(draw, rng, slogan, band, (0.3, 0.7), (0.09, 0.15), ink)
                bottom_band = 0.2
            for corner in (0, 1):
                if rng.random() < 0.4:
                    sticker = tuple(rng.randint(0, 255) for _ in range(3))
                    sx = px + (6 if corner == 0 else plate_w - 40)
                    draw.rectangle(
                        (sx, py + 5, sx + rng.randint(22, 34), py + rng.randint(16, 26)),
                        fill=sticker,
                    )
                    tiny = self._font(rng.choice(self.small_fonts), 10)
                    draw.text((sx + 2, py + 7), str(rng.randint(20, 29)), font=tiny, fill=(0, 0, 0))
        # The number itself.
        separator = rng.choice(["", "", " ", "-", "·", "  "]) if len(groups) > 1 else ""
        shown = separator.join(groups)
        area_top = py + plate_h * (top_band + rng.uniform(0.0, 0.05))
        area_bottom = py + plate_h * (1 - bottom_band - rng.uniform(0.02, 0.06))
        area_left = left_edge + plate_w * rng.uniform(0.04, 0.1)
        area_right = px + plate_w * (1 - rng.uniform(0.04, 0.1))
        font = self._fit_font(
            rng.choice(self.number_fonts), shown, area_right - area_left, area_bottom - area_top
        )
        box = font.getbbox(shown)
        text_w, text_h = box[2] - box[0], box[3] - box[1]
        tx = area_left + (area_right - area_left - text_w) / 2 - box[0]
        ty = area_top + (area_bottom - area_top - text_h) / 2 - box[1]
        if rng.random() < 0.25:
            # Embossed plates: a shadow under the characters.
            draw.text(
                (tx + 2, ty + 2), shown, font=font, fill=tuple(max(0, c - 70) for c in background)
            )
        draw.text((tx, ty), shown, font=font, fill=ink)
        if region == "us" and rng.random() < 0.3:
            # Dealer frame covering the plate's bottom edge (and often the slogan).
            frame = tuple(rng.randint(0, 60) for _ in range(3))
            frame_h = int(plate_h * rng.uniform(0.12, 0.2))
            draw.rectangle(
                (px - 8, py + plate_h - frame_h, px + plate_w + 8, py + plate_h + 10), fill=frame
            )
            dealer = rng.choice(["TOYOTA OF CITY", "HONDA WORLD", "AutoNation", "CARMAX", "FORD"])
            font = self._fit_font(
                rng.choice(self.small_fonts), dealer, plate_w * 0.5, frame_h * 0.8
            )
            draw.text(
                (px + plate_w * 0.25, py + plate_h - frame_h),
                dealer,
                font=font,
                fill=(230, 230, 230),
            )
        image = np.asarray(canvas)[:, :, ::-1].copy()
        return image, label, (px, py, plate_w, plate_h)

    def sample(self, rng: random.Random) -> tuple[npt.NDArray[np.uint8], str]:
        """A degraded synthetic crop at the recognizer's input size, and its label."""
        region = rng.choices(("us", "eu", "br"), weights=(0.6, 0.25, 0.15))[0]
        image, label, (x, y, w, h) = self.plate(rng, region)
        # Perspective: move the plate's corners, then crop around where the plate went.
        src = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float32)
        jitter = np.array(
            [[rng.uniform(-0.06, 0.06) * w, rng.uniform(-0.1, 0.1) * h] for _ in range(4)],
            dtype=np.float32,
        )
        angle = np.deg2rad(rng.uniform(-5, 5))
        center = src.mean(axis=0)
        rotation = np.array(
            [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=np.float32
        )
        dst = (src - center) @ rotation.T + center + jitter
        matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
        warped = cv2.warpPerspective(
            image, matrix, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REPLICATE
        )
        bx0, by0 = dst.min(axis=0)
        bx1, by1 = dst.max(axis=0)
        bw, bh = bx1 - bx0, by1 - by0
        pads = [rng.uniform(-0.03, 0.27) for _ in range(4)]
        left = int(max(0, bx0 - pads[0] * bw))
        top = int(max(0, by0 - pads[1] * bh))
        right = int(min(warped.shape[1], bx1 + pads[2] * bw))
        bottom = int(min(warped.shape[0], by1 + pads[3] * bh))
        crop = warped[top:bottom, left:right]
        # Render at a realistic crop resolution before degrading.
        target_w = rng.randint(60, 260)
        target_h = max(12, int(target_w * crop.shape[0] / max(crop.shape[1], 1)))
        crop = cv2.resize(crop, (target_w, target_h), interpolation=cv2.INTER_AREA)
        crop = degrade(np.ascontiguousarray(crop), rng)
        crop = cv2.resize(crop, (INPUT_WIDTH, INPUT_HEIGHT), interpolation=cv2.INTER_AREA)
        return np.asarray(crop, dtype=np.uint8), label


def generate(count: int, seed: int) -> tuple[npt.NDArray[np.uint8], list[str]]:
    """``count`` synthetic crops [N, 48, 160, 3] (BGR) and their labels."""
    rng = random.Random(seed)
    renderer = PlateRenderer()
    images = np.zeros((count, INPUT_HEIGHT, INPUT_WIDTH, 3), dtype=np.uint8)
    labels: list[str] = []
    for i in range(count):
        images[i], label = renderer.sample(rng)
        labels.append(label)
    return images, labels


if __name__ == "__main__":
    import time

    start = time.monotonic()
    images, labels = generate(200, 0)
    print(f"{len(labels)} plates in {time.monotonic() - start:.1f} s")
    sheet = np.concatenate(
        [np.concatenate(list(images[r * 4 : r * 4 + 4]), axis=1) for r in range(10)], axis=0
    )
    cv2.imwrite("/tmp/synthetic_sheet.png", sheet)
    print(labels[:40])
