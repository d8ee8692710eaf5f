"""Every string of the web templates has an English translation in the committed catalogue."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import wuyiqu

ROOT = Path(wuyiqu.__file__).parent
TRANSLATE = re.compile(r"""\{%\s*translate\s+(["'])(.+?)\1""")
BLOCK = re.compile(r"\{%\s*blocktranslate[^%]*%\}(.*?)\{%\s*endblocktranslate\s*%\}", re.S)
VAR = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def catalogue() -> dict[str, str]:
    with (ROOT / "locale/en/LC_MESSAGES/django.mo").open("rb") as f:
        return gettext.GNUTranslations(f)._catalog  # noqa: SLF001 — the plain msgid -> msgstr mapping


def template_strings() -> set[str]:
    found = set()
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        found.update(m.group(2) for m in TRANSLATE.finditer(text))
        # blocktranslate's msgid: a literal % doubled, each {{ var }} as %(var)s
        found.update(VAR.sub(r"%(\1)s", m.group(1).replace("%", "%%")) for m in BLOCK.finditer(text))
    return found


def test_every_template_string_is_translated_to_english():
    strings = template_strings()
    assert len(strings) > 50
    translations = catalogue()
    missing = sorted(s for s in strings if not translations.get(s))
    assert missing == []


def test_the_catalogue_translates_unit_kinds_and_titles():
    translations = catalogue()
    for chinese, english in (("楼栋", "Building"), ("社区", "Community"), ("无疫楼栋", "Epidemic-free building"),
                             ("独居老人", "Elderly living alone"), ("村/社区工作人员", "Village/community staff")):
        assert translations[chinese] == english
