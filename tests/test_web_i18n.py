"""Every string of the templates of every app has an English translation in the committed catalogue,
the compiled catalogue is the .po as committed (nothing untranslated, nothing fuzzy), and pages of
the other apps render in English when English is chosen."""

from __future__ import annotations

import ast
import datetime as dt
import gettext
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import WENLONG_COMMUNITY, WENLONG_STREET
from django.conf import settings
from test_web_crawler import crew  # noqa: F401 (the fixture: one person of every role, alice's side)

import wuyiqu

ROOT = Path(wuyiqu.__file__).parent
PO = ROOT / "locale/en/LC_MESSAGES/django.po"
MO = ROOT / "locale/en/LC_MESSAGES/django.mo"
TRANSLATE = re.compile(r"""\{%\s*translate\s+(["'])(.+?)\1(?:\s+context\s+(["'])(.+?)\3)?""")
UNDERSCORE = re.compile(r"""\b_\((["'])(.+?)\1\)""")  # _("...") as a filter or tag argument in a template
BLOCK = re.compile(r"\{%\s*blocktranslate([^%]*)%\}(.*?)\{%\s*endblocktranslate\s*%\}", re.S)
PLURAL = re.compile(r"\{%\s*plural\s*%\}")
VAR = re.compile(r"\{\{\s*(\w+)\s*\}\}")
# The apps that have their own templates; each must contribute strings to the check below.
APPS = ("health", "standards", "inspections", "applications", "certification", "notifications", "supervision",
        "dashboard")


def catalogue() -> dict:
    with MO.open("rb") as f:
        return gettext.GNUTranslations(f)._catalog  # noqa: SLF001 — the plain msgid -> msgstr mapping


def po_entries() -> list[dict]:
    """The entries of the .po (header included): msgctxt, msgid, msgid_plural, msgstr / msgstr[i], flags."""
    entries = []
    for block in PO.read_text(encoding="utf-8").split("\n\n"):
        entry: dict = {"flags": set()}
        key = None
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"].update(f.strip() for f in line[2:].split(","))
            elif m := re.match(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) (".*")$', line):
                key = m.group(1)
                entry[key] = ast.literal_eval(m.group(2))
            elif line.startswith('"') and key:
                entry[key] += ast.literal_eval(line)
            elif line.startswith("#~"):
                entry["obsolete"] = True
        if "msgid" in entry or entry.get("obsolete"):
            entries.append(entry)
    return entries


def _block_msgid(options: str, body: str) -> tuple[str, str | None]:
    """blocktranslate's msgid as makemessages writes it: a literal % doubled, each {{ var }} as %(var)s,
    whitespace trimmed with `trimmed`; with `count` the singular and the plural."""
    parts = PLURAL.split(body)
    if "trimmed" in options.split():
        parts = [re.sub(r"\s*\n\s*", " ", p.strip()) for p in parts]
    parts = [VAR.sub(r"%(\1)s", p.replace("%", "%%")) for p in parts]
    return parts[0], (parts[1] if len(parts) > 1 else None)


def template_paths() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.html") if "templates" in p.relative_to(ROOT).parts)


def template_strings(path: Path) -> set[tuple[str, str | None]]:
    """(msgid, msgid_plural or None) of every literal translation in one template."""
    text = path.read_text(encoding="utf-8")
    # With a context, the catalogue's key: "context\x04msgid".
    found = {((m.group(4) + "\x04" if m.group(4) else "") + m.group(2), None) for m in TRANSLATE.finditer(text)}
    found |= {(m.group(2), None) for m in UNDERSCORE.finditer(text)}
    found |= {_block_msgid(m.group(1), m.group(2)) for m in BLOCK.finditer(text)}
    return found


def all_template_strings() -> dict[tuple[str, str | None], list[str]]:
    where: dict[tuple[str, str | None], list[str]] = {}
    for path in template_paths():
        for s in template_strings(path):
            where.setdefault(s, []).append(str(path.relative_to(ROOT)))
    return where


def test_the_template_scan_reaches_every_app():
    apps_with_strings = {p.relative_to(ROOT).parts[0] for p in template_paths() if template_strings(p)}
    assert set(APPS) <= apps_with_strings
    assert "templates" in apps_with_strings  # the project's own templates (web)
    assert len(all_template_strings()) > 250


def test_the_blocktranslate_msgid_is_the_one_makemessages_writes():
    assert _block_msgid(" with n=x ", "共 {{ n }} 项，100% 达标") == ("共 %(n)s 项，100%% 达标", None)
    assert _block_msgid(" count n=k ", "{{ n }} 户{% plural %}{{ n }} 户们") == ("%(n)s 户", "%(n)s 户们")
    assert _block_msgid(" trimmed ", "\n  一行\n  两行\n") == ("一行 两行", None)


def test_every_template_string_of_every_app_is_translated_to_english():
    translations = catalogue()
    missing = []
    for (msgid, plural), paths in sorted(all_template_strings().items()):
        if plural is None:
            ok = bool(translations.get(msgid))
        else:
            ok = all(translations.get((msgid, i)) for i in range(2))
        if not ok:
            missing.append((msgid, paths[0]))
    assert missing == []


def test_no_template_string_is_fuzzy_or_untranslated_in_the_po():
    by_id = {(e["msgctxt"] + "\x04" if "msgctxt" in e else "") + e["msgid"]: e for e in po_entries() if e.get("msgid")}
    bad = []
    for (msgid, _plural), paths in sorted(all_template_strings().items()):
        entry = by_id.get(msgid)
        if entry is None or "fuzzy" in entry["flags"]:
            bad.append((msgid, paths[0]))
    assert bad == []


def test_the_po_has_no_untranslated_fuzzy_or_obsolete_entries():
    untranslated, fuzzy, obsolete = [], [], []
    for e in po_entries():
        if e.get("obsolete"):
            obsolete.append(e)
            continue
        if not e["msgid"]:
            continue  # the header
        strs = [v for k, v in e.items() if k.startswith("msgstr")]
        if not strs or not all(strs):
            untranslated.append(e["msgid"])
        if "fuzzy" in e["flags"]:
            fuzzy.append(e["msgid"])
    assert (untranslated, fuzzy, obsolete) == ([], [], [])


def test_the_compiled_catalogue_is_the_po_as_committed():
    """msgfmt leaves untranslated and fuzzy entries out of the .mo: every .po entry in the .mo with
    the same translation means the .mo was compiled from this .po and nothing is missing."""
    translations = catalogue()
    expected: dict = {}
    for e in po_entries():
        if not e.get("msgid"):
            continue
        key = f"{e['msgctxt']}\x04{e['msgid']}" if "msgctxt" in e else e["msgid"]  # as the .mo keys it
        if "msgid_plural" in e:
            for k, v in e.items():
                if m := re.fullmatch(r"msgstr\[(\d+)\]", k):
                    expected[(key, int(m.group(1)))] = v
        else:
            expected[key] = e["msgstr"]
    assert len(expected) > 500
    assert {k: translations.get(k) for k in expected} == expected
    assert set(translations) - {""} == set(expected)


def test_placeholders_survive_translation():
    pattern = re.compile(r"%\(\w+\)[sd]|\{\w+\}")
    wrong = []
    for e in po_entries():
        if not e.get("msgid"):
            continue
        want = sorted(pattern.findall(e["msgid"]))
        for k, v in e.items():
            if k.startswith("msgstr") and sorted(pattern.findall(v)) != want:
                wrong.append((e["msgid"], v))
    assert wrong == []


def test_the_catalogue_translates_unit_kinds_and_titles():
    translations = catalogue()
    for chinese, english in (("楼栋", "Building"), ("社区", "Community"), ("无疫楼栋", "Epidemic-free building"),
                             ("独居老人", "Elderly living alone"), ("村/社区工作人员", "Village/community staff")):
        assert translations[chinese] == english


# Pages of the other apps, rendered in Chinese (no choice made) and in English (the language cookie).
# No template literal may stand as a whole text (a text node or an attribute value) on the English
# page. Whole texts, not substrings: names and policy quotations are data and stay Chinese.

class _Texts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.texts: set[str] = set()

    def handle_data(self, data):
        self.texts.add(data.strip())

    def handle_starttag(self, tag, attrs):
        self.texts.update((v or "").strip() for _k, v in attrs)


def texts_of(html: str) -> set[str]:
    parser = _Texts()
    parser.feed(html)
    return parser.texts - {""}


def _chinese_literals() -> set[str]:
    return {m for (m, plural) in all_template_strings() if plural is None and "%(" not in m}


@pytest.fixture
def application(dave):
    from wuyiqu.applications.actions import do_open_application

    return do_open_application(actor=dave, unit=dave.unit)


def _pages(alice, carol, dave, application):
    return [
        (alice, f"/units/{WENLONG_COMMUNITY}/assessment/"),
        (alice, f"/units/{WENLONG_COMMUNITY}/measures/"),
        (alice, f"/units/{WENLONG_COMMUNITY}/testing/"),
        (alice, f"/units/{WENLONG_COMMUNITY}/inspections/"),
        (alice, f"/units/{WENLONG_COMMUNITY}/history/"),
        (alice, "/notifications/"),
        (alice, "/applications/queue/"),
        (carol, f"/units/{WENLONG_STREET}/dashboard/"),
        (carol, f"/units/{WENLONG_STREET}/blockers/"),
        (dave, "/applications/"),
        (dave, f"/applications/{application.pk}/"),
        (dave, f"/applications/{application.pk}/progress/"),
    ]


def test_pages_of_the_other_apps_render_in_english_when_chosen(client, alice, carol, dave, application):
    literals = _chinese_literals()
    left_in_chinese = {}
    for user, url in _pages(alice, carol, dave, application):
        client.force_login(user)
        client.cookies.pop(settings.LANGUAGE_COOKIE_NAME, None)
        zh = client.get(url)
        assert zh.status_code == 200, url
        zh_html = zh.content.decode()
        fragment = "<html" not in zh_html  # the co-signature progress is an htmx fragment
        assert fragment or '<html lang="zh-hans">' in zh_html, url
        shown = literals & texts_of(zh_html)
        assert shown, url  # the page does show template text in Chinese
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        en = client.get(url)
        assert en.status_code == 200, url
        en_html = en.content.decode()
        assert fragment or '<html lang="en">' in en_html, url
        left = sorted(literals & texts_of(en_html))
        if left:
            left_in_chinese[url] = left
    assert left_in_chinese == {}


def test_the_dashboard_reads_in_english(client, carol, today):
    client.force_login(carol)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(f"/units/{WENLONG_STREET}/dashboard/?date={today:%Y-%m-%d}").content.decode()
    for english in ("Epidemic-free zones overview", "Status by level", "Residents covered", "Weekly report (PDF)"):
        assert english in html


def test_the_application_pages_name_the_title_in_english(client, dave, application):
    client.force_login(dave)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    for url in ("/applications/", f"/applications/{application.pk}/"):
        html = client.get(url).content.decode()
        assert "Epidemic-free building" in html, url
        assert "无疫楼栋" not in html, url


def test_the_self_assessment_names_the_consequence_in_english(client, alice):
    client.force_login(alice)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(f"/units/{WENLONG_COMMUNITY}/assessment/").content.decode()
    assert "if failed: title withdrawn" in html
    assert "if failed: warning" in html
    assert "：摘牌）" not in html and "：警示）" not in html


def test_every_criterion_name_of_the_bundled_profile_has_an_english_name():
    """Criterion names and rule texts are profile data (zh-hans); the pages show them through gettext,
    so each one of the bundled profile is a msgid of the catalogue (wuyiqu/web/i18n_strings.py)."""
    from wuyiqu.standards.profiles import bundled_profile_content, parse_profile

    profile = parse_profile(bundled_profile_content())
    names = {c.name for c in profile.criteria} | {"人工警示"}
    names |= {profile.rule(c, level).text for c in profile.criteria for level in c.levels}  # the rule texts
    english = catalogue()
    missing = sorted(n for n in names if not english.get(n))
    assert missing == []
    assert english["近8天无疫情"] == "No case in the last 8 days"


# --- the English walk: every role's main pages carry no Chinese but names ---------------------------------

CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")


class _Visible(HTMLParser):
    """The text a reader sees (and the attributes read aloud), outside <script>/<style> and outside
    elements marked as another language (the language switcher's 简体中文)."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self.skip: list[str] = []  # the open tags whose content is not read

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self.skip:
            if tag == self.skip[0]:
                self.skip.append(tag)
            return
        if tag in ("script", "style") or (attrs.get("lang") or "en").startswith("zh"):
            self.skip.append(tag)
            return
        self.texts += [attrs[a] for a in SHOWN_ATTRIBUTES if attrs.get(a)]

    def handle_endtag(self, tag):
        if self.skip and tag == self.skip[0]:
            self.skip.pop()

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.texts.append(data.strip())


def visible_texts(html: str) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    return parser.texts


@dataclass
class StoredTexts:
    """The records the system wrote in the walk's world (their zh-hans text), and what people typed."""

    warned: object  # a building under automatic warnings (the daily run)
    withdrawn: object  # a building whose title the command withdrew
    warnings: list  # the automatic warnings
    events: list  # the withdrawals' events (automatic: the compound; by the command)
    typed: str  # the command's words


@pytest.fixture
def stored_texts(crew, erin):  # noqa: F811
    """alice's side with the records the system writes itself: the daily run (its evaluations stored)
    withdraws the side's compound automatically (a resident under home quarantine: a ``revoke``
    criterion) and warns a second building named 20 days ago (``warn`` criteria: households not
    verified, no inspections …); before it, the command withdraws the community's title with its words."""
    from wuyiqu.certification.models import Title
    from wuyiqu.lib.dates import today
    from wuyiqu.supervision.actions import do_withdraw_title
    from wuyiqu.supervision.models import MANUAL, TitleEvent, Warning
    from wuyiqu.supervision.services import run_daily
    from wuyiqu.units.models import TITLE_BY_KIND, Unit, UnitKind

    side, _people = crew
    on = today()
    warned = Unit.objects.filter(path__startswith=side.community.path, kind=UnitKind.BUILDING).exclude(
        pk=side.building.pk).order_by("code").first()
    withdrawn = side.community
    for i, unit in enumerate((warned, withdrawn)):
        Title.objects.create(unit=unit, title=TITLE_BY_KIND[unit.kind], named_on=on - dt.timedelta(days=20),
                             certificate_number=f"WYQ-S-{i}")
    typed = "门岗无人值守，经核查属实"
    do_withdraw_title(actor=erin, unit=withdrawn, reason=typed)
    run_daily(on=on)
    warnings = list(Warning.objects.exclude(criterion=MANUAL).filter(unit=warned))
    events = list(TitleEvent.objects.filter(unit__in=[side.compound, withdrawn], kind="withdrawn").order_by("id"))
    assert warnings and all(w.detail_form for w in warnings)
    assert {e.unit_id for e in events} == {side.compound.pk, withdrawn.pk} and all(e.reason_form for e in events)
    assert Title.objects.get(pk=side.title.pk).withdrawn_form
    return StoredTexts(warned, withdrawn, warnings, events, typed)


def names_pattern(side, *typed: str) -> re.Pattern:
    """Names of units, people and places, and what people typed into the side's records (a manual
    warning's detail, the words of a withdrawal made by hand, a negative opinion, an import's refusal,
    a notification without a template): shown as written in every language (DEVELOPERS.md,
    "Translations"). What the system wrote (automatic warnings and withdrawals, the frame of the
    command's withdrawal, stored evaluations) is not among them: it reads in English."""
    from wuyiqu.accounts.models import User
    from wuyiqu.units.models import Household, HouseholdVerification, Resident, Unit

    names = set(Unit.objects.values_list("name", flat=True))
    names |= {str(u.display_name) for u in Unit.objects.filter(path__startswith=side.community.parent.path)}
    names |= set(User.objects.values_list("display_name", flat=True)) | set(User.objects.values_list("username", flat=True))
    names |= set(Resident.objects.values_list("name", flat=True))
    names |= set(Household.objects.exclude(address="").values_list("address", flat=True))
    names |= set(HouseholdVerification.objects.values_list("verifier", flat=True))  # who verified (核实人), as written
    names |= {side.warning.detail, side.withdrawn.withdrawn_reason, side.opinion.description, side.notification.text}
    names |= set(typed)  # more words people typed (a command's reason for a withdrawal)
    names |= {e["message"] for e in side.job.errors}
    # The column headers of the import files: the files' own format, in Chinese in every language.
    from wuyiqu.imports.registry import all_kinds

    names |= {col.header for kind in all_kinds().values() for col in kind.columns}
    names = sorted((n for n in names if n and CJK.search(n)), key=len, reverse=True)
    # A masked name (顾**) is a person's name too.
    return re.compile(r"[\u4e00-\u9fff]\*+|" + "|".join(re.escape(n) for n in names))


def chinese_left(html: str, names: re.Pattern) -> list[str]:
    return [t for t in visible_texts(html) if CJK.search(names.sub("", t))]


def _own_pages(side, stored: StoredTexts) -> list[str]:
    b, c, comm = side.building.code, side.compound.code, side.community.code
    return [f"/units/{comm}/", f"/units/{c}/", f"/units/{b}/", f"/households/{side.household.code}/",
            f"/units/{b}/assessment/", f"/units/{comm}/assessment/", f"/units/{comm}/measures/",
            f"/units/{comm}/testing/", f"/units/{comm}/ledger/", f"/units/{c}/history/", f"/units/{b}/history/",
            f"/units/{comm}/blockers/", f"/applications/{side.application.pk}/", f"/imports/{side.job.pk}/",
            f"/units/{b}/inspections/", f"/units/{stored.warned.code}/history/",
            f"/units/{stored.withdrawn.code}/history/"]


def test_every_roles_main_pages_read_in_english_but_for_names(crew, stored_texts, client):  # noqa: F811
    """English chosen: the header's pages of every role and the pages about its side's units (unit,
    household, self-assessment, measures, tests, ledger, supervision record, application, import),
    and the public sign-in and co-signing pages, show no Chinese character except in names of units,
    people and places and in what people wrote into records — in a world where the system wrote its
    own records too (automatic warnings, an automatic withdrawal, a command's withdrawal, the day's
    stored evaluations, the notices of them): those read in English."""
    from wuyiqu.accounts.models import Role

    side, people = crew
    names = names_pattern(side, stored_texts.typed)
    own = _own_pages(side, stored_texts)
    left: dict[str, list[str]] = {}
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    for url in ("/login/", f"/s/{side.application.token}/", f"/verify/{side.title.certificate_number}/"):
        html = client.get(url).content.decode()
        assert '<html lang="en">' in html, url
        if found := chinese_left(html, names):
            left[f"public {url}"] = found
    opened = 0
    for role in Role.values:
        client.force_login(people[role])
        home = client.get("/", follow=True).content.decode()
        header = re.findall(r'<a href="(/[^"#]*)" data-nav="', home)
        assert len(header) >= 4, role
        for url in dict.fromkeys(header + own):
            r = client.get(url, follow=True)
            if r.status_code in (403, 404) and url in own:
                continue
            assert r.status_code == 200, (role, url, r.status_code)
            opened += 1
            if found := chinese_left(r.content.decode(), names):
                left[f"{role} {url}"] = found
    assert opened >= 60
    assert left == {}


def test_the_chinese_pages_show_the_stored_texts_as_written(crew, stored_texts, client):  # noqa: F811
    """zh-hans (the default): the supervision records and the notices show exactly the zh-hans text
    stored on the rows (the machine form writes out to it), the command's words included."""
    from django.utils.html import escape

    from wuyiqu.certification.models import Title
    from wuyiqu.notifications.models import Notification
    from wuyiqu.standards.models import Evaluation

    side, people = crew
    client.force_login(people["command"])
    pages = {u: client.get(u).content.decode() for u in (f"/units/{side.compound.code}/history/",
                                                         f"/units/{stored_texts.warned.code}/history/",
                                                         f"/units/{stored_texts.withdrawn.code}/history/")}
    for html in pages.values():
        assert '<html lang="zh-hans">' in html
    shown = "".join(pages.values())
    for record in stored_texts.warnings:
        assert escape(record.detail) in shown, record.detail
    for event in stored_texts.events:
        assert escape(event.reason) in shown, event.reason
    assert escape(f"指挥部摘牌：{stored_texts.typed}") in shown
    withdrawn = Title.objects.get(unit=stored_texts.withdrawn)
    assert withdrawn.withdrawn_reason == f"指挥部摘牌：{stored_texts.typed}"
    assert escape(withdrawn.withdrawn_reason) in pages[f"/units/{stored_texts.withdrawn.code}/history/"]
    stored = Evaluation.objects.get(unit=stored_texts.warned, on=stored_texts.warnings[0].opened_on)
    assert stored.details and all(escape(v) in pages[f"/units/{stored_texts.warned.code}/history/"]
                                  for v in stored.details.values())
    # The inbox of the command: each notice as it was stored (and e-mailed).
    inbox = client.get("/notifications/").content.decode()
    notices = list(Notification.objects.filter(user=people["command"], template__startswith="supervision."))
    assert notices and all(escape(n.text) in inbox for n in notices)
    # The same pages in English carry the English texts, the command's words as written.
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.get(f"/units/{stored_texts.withdrawn.code}/history/").content.decode()
    assert escape(f"Withdrawn by the command: {stored_texts.typed}") in english


def test_the_api_documentation_page_reads_in_the_chosen_language(client):
    """The API's documentation page (Swagger UI, public) is titled and tagged in the reader's language."""
    from django.conf import settings

    zh = client.get("/api/v1/docs").content.decode()
    assert '<html lang="zh-hans">' in zh and "接口文档" in zh
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    en = client.get("/api/v1/docs").content.decode()
    assert '<html lang="en">' in en and "API documentation" in en
    assert not re.search(r"[\u4e00-\u9fff]", en)
