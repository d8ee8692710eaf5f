"""What poppler's pdffonts says about a PDF's fonts (poppler-utils must be installed)."""

from __future__ import annotations

import shutil
import subprocess


def pdf_fonts(body: bytes, tmp_path) -> list[dict[str, str]]:
    """One dict per font of the PDF: name, type, emb, sub (pdffonts' columns)."""
    assert body.startswith(b"%PDF-")
    assert shutil.which("pdffonts"), "pdffonts (apt-get install poppler-utils) lists a PDF's fonts"
    path = tmp_path / "fonts.pdf"
    path.write_bytes(body)
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, check=True, text=True).stdout
    lines = out.splitlines()
    # name type encoding emb sub uni object ID: the name and the type may hold spaces, so the columns
    # are cut where the dashes under the header are.
    dashes = lines[1]
    spans, start = [], 0
    for part in dashes.split(" "):
        spans.append((start, start + len(part)))
        start += len(part) + 1
    keys = ["name", "type", "encoding", "emb", "sub", "uni", "object", "id"]
    return [{k: line[a:b].strip() for k, (a, b) in zip(keys, spans, strict=False)} for line in lines[2:] if line.strip()]


def assert_fonts_embedded_subsets(body: bytes, tmp_path) -> list[dict[str, str]]:
    """Every font of the PDF is embedded (emb yes) as a subset (sub yes): it renders on a viewer that
    has no CJK font of its own. Returns the fonts."""
    fonts = pdf_fonts(body, tmp_path)
    assert fonts, "the PDF has text, so it has fonts"
    for font in fonts:
        assert font["emb"] == "yes", f"font not embedded: {font}"
        assert font["sub"] == "yes", f"font embedded whole, not as a subset: {font}"
    return fonts
