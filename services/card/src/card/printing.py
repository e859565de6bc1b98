"""The printable card image for the print shop: a PNG at 300 dpi, ISO/IEC 7810 ID-1
size (85.60 x 53.98 mm), photo on the left, particulars on the right."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from card.domain.card import Card

WIDTH, HEIGHT = 1011, 638  # ID-1 at 300 dpi
PHOTO_BOX = (48, 150, 348, 550)  # 3:4 portrait
DPI = (300, 300)
BANNER = "STUDENT CARD 學生證"

# Fonts with Chinese glyphs, where the platform has one; without, the Chinese name
# is left off rather than printed as empty boxes.
_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
_LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(candidates: tuple[str, ...], size: int) -> Font | None:
    for path in candidates:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return None


def _latin(size: int) -> Font:
    return _font(_LATIN_FONTS, size) or ImageFont.load_default(size)


def render_card_png(card: Card, student_no: str, photo_jpeg: bytes) -> bytes:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 110), fill=(0, 51, 102))
    cjk_banner = _font(_CJK_FONTS, 44)
    banner = BANNER if cjk_banner else BANNER.split(" 學")[0]
    draw.text((48, 30), banner, font=cjk_banner or _latin(44), fill="white")

    photo = Image.open(io.BytesIO(photo_jpeg)).convert("RGB")
    box_w, box_h = PHOTO_BOX[2] - PHOTO_BOX[0], PHOTO_BOX[3] - PHOTO_BOX[1]
    photo = _cover(photo, box_w, box_h)
    image.paste(photo, PHOTO_BOX[:2])
    draw.rectangle(PHOTO_BOX, outline=(0, 51, 102), width=3)

    x, y = 390, 150
    draw.text((x, y), card.surname.upper(), font=_latin(46), fill="black")
    y += 58
    draw.text((x, y), card.given_names, font=_latin(38), fill="black")
    y += 52
    cjk = _font(_CJK_FONTS, 40)
    if card.chinese_name and cjk is not None:
        draw.text((x, y), card.chinese_name, font=cjk, fill="black")
        y += 52
    small = _latin(28)
    for line in (
        card.programme_name,
        f"Student no. {student_no}",
        f"Card no. {card.card_no}",
        f"Valid until {card.expires_on:%d/%m/%Y}",
    ):
        y += 12
        draw.text((x, y), _fit(draw, line, small, WIDTH - x - 30), font=small, fill="black")
        y += 34

    out = io.BytesIO()
    image.save(out, format="PNG", dpi=DPI)
    return out.getvalue()


def _cover(photo: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to fill the box, then crop the centre: the face keeps its proportions."""
    scale = max(width / photo.width, height / photo.height)
    resized = photo.resize(
        (max(width, round(photo.width * scale)), max(height, round(photo.height * scale)))
    )
    left = (resized.width - width) // 2
    top = (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
