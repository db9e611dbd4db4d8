"""Slides drawn with Pillow: one consistent style per video, a readable title, wrapped text.

Pure functions of (scene, style, size): the same input draws the same image. Fonts are
DejaVu when the system has it, else Pillow's bundled scalable default.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True, slots=True)
class Palette:
    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    title: tuple[int, int, int]
    text: tuple[int, int, int]
    accent: tuple[int, int, int]


PALETTES: dict[str, Palette] = {
    "clean": Palette((246, 248, 252), (222, 230, 242), (24, 32, 56), (52, 62, 84), (45, 108, 223)),
    "dark": Palette((30, 34, 46), (12, 14, 20), (245, 247, 250), (196, 204, 218), (97, 175, 239)),
    "warm": Palette((255, 236, 210), (246, 196, 150), (92, 38, 18), (112, 60, 36), (214, 96, 40)),
    "ocean": Palette((20, 78, 118), (8, 36, 64), (236, 248, 255), (190, 222, 240), (64, 200, 210)),
    "noir": Palette((40, 40, 40), (5, 5, 5), (250, 250, 250), (200, 200, 200), (200, 40, 40)),
    "playful": Palette(
        (255, 244, 170), (255, 190, 200), (70, 30, 110), (90, 50, 120), (250, 100, 60)
    ),
}


@functools.lru_cache(maxsize=32)
def font(size: int, *, bold: bool = False) -> Font:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in _FONT_DIRS:
        if (folder / name).exists():
            return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size)


def wrap(text: str, face: Font, width: int, draw: ImageDraw.ImageDraw) -> list[str]:
    """Greedy word wrap to ``width`` pixels."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and draw.textlength(candidate, font=face) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _gradient(size: tuple[int, int], palette: Palette) -> Image.Image:
    width, height = size
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    top = np.array(palette.top, dtype=np.float32)
    bottom = np.array(palette.bottom, dtype=np.float32)
    column = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)  # (height, 3)
    return Image.fromarray(np.repeat(column[:, None, :], width, axis=1), "RGB")


def draw_slide(
    *,
    title: str,
    text: str,
    footer: str,
    index: int,
    count: int,
    style: str,
    size: tuple[int, int],
) -> Image.Image:
    palette = PALETTES[style]
    width, height = size
    image = _gradient(size, palette)
    draw = ImageDraw.Draw(image)
    margin = round(width * 0.07)
    unit = height / 720
    draw.rectangle((margin, round(120 * unit), margin + round(90 * unit), round(128 * unit)),
                   fill=palette.accent)  # fmt: skip
    small = font(max(10, round(22 * unit)))
    draw.text((margin, round(70 * unit)), f"{index} / {count}", font=small, fill=palette.accent)

    title_face = font(max(14, round(58 * unit)), bold=True)
    y = round(150 * unit)
    for line in wrap(title, title_face, width - 2 * margin, draw)[:2]:
        draw.text((margin, y), line, font=title_face, fill=palette.title)
        y += round(72 * unit)

    body = font(max(11, round(32 * unit)))
    y += round(24 * unit)
    line_height = round(46 * unit)
    limit = height - round(110 * unit)
    lines = wrap(text, body, width - 2 * margin, draw)
    for n, line in enumerate(lines):
        if y + line_height > limit:
            break
        more = n + 1 < len(lines) and y + 2 * line_height > limit
        draw.text((margin, y), line + (" …" if more else ""), font=body, fill=palette.text)
        y += line_height

    draw.line((margin, height - round(70 * unit), width - margin, height - round(70 * unit)),
              fill=palette.accent, width=max(1, round(2 * unit)))  # fmt: skip
    draw.text((margin, height - round(58 * unit)), footer, font=small, fill=palette.text)
    return image
