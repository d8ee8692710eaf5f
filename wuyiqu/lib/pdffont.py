"""The CJK font every PDF of ours is set in, embedded as a subset of the glyphs the document uses.

WenQuanYi Micro Hei (文泉驿微米黑; Apache License 2.0 or GPLv3 with the font-embedding exception),
a TrueType collection shipped by the PyPI package ``paperang-p2-fonts-cjk``. reportlab subsets
TrueType outlines only (not the CFF outlines of Noto/Source Han OTFs), which is why this font and not
those. reportlab's built-in CID fonts (STSong-Light) are never embedded: a viewer without a CJK
fallback shows blanks, so they are not used."""

from __future__ import annotations

from importlib import resources

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT = "WenQuanYiMicroHei"


def font_path() -> str:
    return str(resources.files("paperang_p2_fonts_cjk") / "fonts" / "wqy-microhei.ttc")


def cjk_font() -> str:
    """The registered font's name (registered on first use). reportlab embeds each document's subset."""
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, font_path(), subfontIndex=0))
    return FONT
