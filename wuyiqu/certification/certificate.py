"""The certificate (证书) as an A4 PDF: unit, title, naming date, number and a QR code to the public
verification page. Chinese in the embedded subset of ``wuyiqu.lib.pdffont``; the unit is named by its
full path (綦江区 文龙街道 文龙社区 江畔小区 1栋), as a plaque read away from its building must say."""

from __future__ import annotations

import io

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen import canvas

from wuyiqu.lib.pdffont import cjk_font

ISSUER = "綦江区疫情防控指挥部"


def certificate_pdf(*, unit_name: str, title: str, named_on, number: str, verify_url: str) -> bytes:
    """The PDF bytes of one certificate."""
    font = cjk_font()
    buf = io.BytesIO()
    width, height = A4
    c = canvas.Canvas(buf, pagesize=A4, initialFontName=font)  # not Helvetica: no font goes unembedded
    c.setTitle(f"{title}证书 {number}")
    c.setAuthor(ISSUER)
    # A double frame, as on a printed plaque.
    c.setStrokeColorRGB(0.65, 0.1, 0.1)
    c.setLineWidth(3)
    c.rect(15 * mm, 15 * mm, width - 30 * mm, height - 30 * mm)
    c.setLineWidth(1)
    c.rect(19 * mm, 19 * mm, width - 38 * mm, height - 38 * mm)

    c.setFillColorRGB(0.65, 0.1, 0.1)
    c.setFont(font, 40)
    c.drawCentredString(width / 2, height - 65 * mm, "荣 誉 证 书")
    c.setFillColorRGB(0, 0, 0)
    # The unit's full path at 22 pt, smaller when it would run past the inner frame.
    size = 22
    while size > 12 and pdfmetrics.stringWidth(unit_name, font, size) > width - 50 * mm:
        size -= 1
    c.setFont(font, size)
    c.drawCentredString(width / 2, height - 100 * mm, unit_name)
    c.setFont(font, 16)
    c.drawCentredString(width / 2, height - 118 * mm, "经审核，符合创建标准，特命名为")
    c.setFillColorRGB(0.65, 0.1, 0.1)
    c.setFont(font, 34)
    c.drawCentredString(width / 2, height - 140 * mm, f"“{title}”")
    c.setFillColorRGB(0, 0, 0)
    c.setFont(font, 14)
    c.drawCentredString(width / 2, height - 165 * mm, "称号实行动态管理，不符合标准的将摘牌销号。扫码可查验当前是否有效。")

    c.setFont(font, 14)
    c.drawString(30 * mm, 84 * mm, f"证书编号：{number}")
    c.drawString(30 * mm, 74 * mm, f"命名日期：{named_on:%Y年%m月%d日}")
    c.drawRightString(width - 30 * mm, 84 * mm, ISSUER)
    c.drawRightString(width - 30 * mm, 74 * mm, f"{named_on:%Y年%m月%d日}")

    size = 38 * mm
    qr = QrCodeWidget(verify_url, barLevel="M")
    x0, y0, x1, y1 = qr.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.initialFontName = font  # the graphics state's default font would be Helvetica, unembedded
    drawing.add(qr)
    renderPDF.draw(drawing, c, width / 2 - size / 2, 28 * mm)
    c.setFont(font, 9)
    c.drawCentredString(width / 2, 24 * mm, verify_url)
    c.showPage()
    c.save()
    return buf.getvalue()
