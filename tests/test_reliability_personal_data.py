"""Personal data at rest and on the way out (issue 9, docs/reliability.md "Personal data").

- The raw database columns (read with plain SQL, not through the model) hold ciphertext under the
  current key: no ID number or phone of the generated world appears in them, nor anywhere else in any
  table of the database.
- A person is found by the keyed lookup hash, and only by it.
- Every GET page of the URL map (filled in with the world's units, households, residents and jobs),
  every export (Excel unzipped, PDF through pdftotext), the import reports, the API's answers and
  `evaluate --json` show masked values only: the scan looks for the plaintext of every generated ID
  number and phone in each of them.
- A reveal (the grid worker calling a resident) shows the number and writes its audit row; out of
  scope it is a 404 with no row and no number.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import shutil
import subprocess
import zipfile

import pytest
from conftest import TIANQIAO_COMMUNITY, WENLONG_COMMUNITY
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver

from wuyiqu.api.actions import do_create_api_token
from wuyiqu.api.models import FACT_KINDS, READ_SCOPES
from wuyiqu.audit.models import AuditEvent
from wuyiqu.certification.actions import write_existing_titles
from wuyiqu.imports.models import ImportJob, ImportStatus
from wuyiqu.imports.services import run_import
from wuyiqu.lib import crypto, dates
from wuyiqu.lib.idcard import check_digit
from wuyiqu.units.models import TITLE_BY_KIND, Household, Resident, Unit, UnitKind

DAY = dt.timedelta(days=1)
DIGIT_RUN = re.compile(r"[0-9][0-9\-]{6,}[0-9Xx]?")


def _outsider_id(seq: int) -> str:
    first17 = f"11010119800101{seq:03d}"
    return first17 + check_digit(first17)


class Secrets:
    """The plaintext of every ID number and phone that must not leak, and a scanner for them."""

    def __init__(self, numbers: list[str], phones: list[str]):
        self.numbers = numbers
        self.phones = phones
        # What must never be seen: the whole value, and the part its mask hides (an ID number's
        # 10 middle characters: region and birth date; a phone's last 8 digits).
        self.needles = {n: n for n in numbers} | {n[4:14]: n for n in numbers}
        self.needles |= {p: p for p in phones} | {p[3:]: p for p in phones if len(p) >= 11}

    def found_in(self, text: str) -> set[str]:
        """The plaintexts (whole values) that ``text`` shows, in whole or the masked-out part."""
        hits = set()
        for run in DIGIT_RUN.findall(text):
            for needle, whole in self.needles.items():
                if needle in run:
                    hits.add(whole)
        return hits


def _text_of(body: bytes, content_type: str, tmp_path) -> str:
    """What a person reads in a response: HTML/JSON/CSV as text, every XML part of an XLSX, a PDF's text."""
    if body.startswith(b"%PDF-"):
        path = tmp_path / "scan.pdf"
        path.write_bytes(body)
        return subprocess.run([shutil.which("pdftotext"), "-layout", str(path), "-"], capture_output=True,
                              text=True, check=True, timeout=60).stdout
    if body.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    if content_type.startswith("image/"):
        return ""
    return body.decode("utf-8", "replace")


@pytest.fixture
def facts_world(world, tmp_path):
    """The conftest world plus facts naming residents: cases, close contacts, nucleic-acid results
    (with an unregistered person), a special-population ledger, and an import job with bad rows."""
    today = dates.today()
    community = list(Resident.objects.filter(household__unit__path__contains=f"/{WENLONG_COMMUNITY}/")
                     .order_by("id")[:30])
    numbers = [r.reveal_id_number() for r in community]

    def imported(kind, lines, **kw):
        path = tmp_path / f"{kind}.csv"
        path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
        return run_import(kind=kind, path=path, **kw)

    # Titles on the community and every unit below it: the case withdraws those above its resident,
    # with a reason that names the resident (masked) in the ledger and the weekly report.
    with transaction.atomic():
        write_existing_titles([(u.pk, u.kind, today - 30 * DAY) for u in Unit.objects.filter(
            path__contains=f"/{WENLONG_COMMUNITY}/", kind__in=list(TITLE_BY_KIND))])
    assert imported("cases", ["id_number,reported_on,type",
                              f"{numbers[0]},{today - 2 * DAY},确诊"]).status == ImportStatus.SUCCEEDED
    assert imported("close-contacts", ["id_number,start_on,end_on",
                                       f"{numbers[1]},{today - 3 * DAY},{today + 4 * DAY}",
                                       f"{_outsider_id(1)},{today - 3 * DAY},{today + 4 * DAY}"]
                    ).status == ImportStatus.SUCCEEDED
    sampled = (today - DAY).isoformat() + " 08:30"
    assert imported("nat-results", ["id_number,sampled_at,result",
                                    *[f"{n},{sampled},阴性" for n in numbers[2:25]],
                                    f"{numbers[25]},{sampled},阳性",
                                    f"{_outsider_id(2)},{sampled},阴性"]).status == ImportStatus.SUCCEEDED
    assert imported("special-population", ["id_number,tags,needs",
                                           f"{numbers[3]},独居老人,送药",
                                           f"{numbers[4]},孕产妇,"]).status == ImportStatus.SUCCEEDED
    # A report with bad rows: a valid number on an unknown household, a duplicate row.
    household = community[5].household.code
    failed = imported("residents", ["id_number,name,household_code,phone",
                                    f"{numbers[5]},{community[5].name},NO-SUCH-HOUSEHOLD,13800000000",
                                    f"{numbers[6]},{community[6].name},{household},",
                                    f"{numbers[6]},{community[6].name},{household},"])
    assert failed.status == ImportStatus.FAILED and failed.errors
    return {"community": community, "failed_job": failed}


@pytest.fixture
def secrets(facts_world):
    rows = Resident.objects.values_list("id_enc", "phone_enc")
    c = crypto.cipher()
    numbers = [c.decrypt(i) for i, _p in rows] + [_outsider_id(1), _outsider_id(2)]
    phones = [c.decrypt(p) for _i, p in rows if p is not None]
    assert len(numbers) > 600 and len(phones) > 300
    return Secrets(numbers, phones)


def test_the_raw_columns_hold_ciphertext_under_the_current_key(secrets):
    c = crypto.cipher()
    by_hash = {c.lookup_hash(n): n for n in secrets.numbers}
    with connection.cursor() as cur:
        cur.execute("SELECT id_enc, id_hash, id_masked, phone_enc, phone_hash, phone_masked FROM units_resident")
        rows = cur.fetchall()
    assert len(rows) == len(secrets.numbers) - 2
    for id_enc, id_hash, id_masked, phone_enc, phone_hash, phone_masked in rows:
        blob = bytes(id_enc)
        number = by_hash[id_hash]  # the stored hash is the keyed hash of the number
        assert blob[:4] == c.current_key_id and len(blob) == 4 + 12 + len(number) + 16  # key id, nonce, AES-GCM
        assert c.decrypt(blob) == number
        raw = blob.decode("latin-1")
        assert number not in raw and number[4:14] not in raw and not secrets.found_in(raw)
        assert id_masked == number[:3] + "*" * 14 + number[-1:]
        assert hashlib.sha256(number.encode()).hexdigest() != id_hash  # keyed, not a plain digest
        if phone_enc is not None:
            phone = c.decrypt(phone_enc)
            assert phone not in bytes(phone_enc).decode("latin-1") and phone_hash == c.lookup_hash(phone)
            assert phone_masked == phone[:3] + "*" * (len(phone) - 5) + phone[-2:]
        else:
            assert phone_hash == "" and phone_masked == ""


def test_no_table_of_the_database_holds_a_plain_number_or_phone(secrets):
    """Every column of every table (facts, jobs and their reports, audit rows, notifications,
    evaluations, API batches…), read raw: the only places a number could hide."""
    leaks: dict[str, set[str]] = {}
    scanned = 0
    with connection.cursor() as cur:
        for table in connection.introspection.table_names():
            cur.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cur.fetchall():
                for value in row:
                    if value is None or isinstance(value, (int, float, bool, dt.date)):
                        continue
                    text = bytes(value).decode("latin-1") if isinstance(value, (bytes, memoryview)) else str(value)
                    if hits := secrets.found_in(text):
                        leaks.setdefault(table, set()).update(hits)
                    scanned += 1
    assert scanned > 5000
    assert leaks == {}


def test_a_person_is_found_by_the_keyed_hash(secrets, facts_world):
    c = crypto.cipher()
    resident = facts_world["community"][0]
    number, phone = resident.reveal_id_number(), resident.reveal_phone()
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM units_resident WHERE id_hash = %s", [c.lookup_hash(number.lower())])
        assert cur.fetchall() == [(resident.pk,)]
        cur.execute("SELECT count(*) FROM units_resident WHERE id_hash = %s", [number])
        assert cur.fetchone() == (0,)  # the number itself finds nothing
        cur.execute("SELECT count(*) FROM health_positivecase WHERE id_hash = %s", [c.lookup_hash(number)])
        assert cur.fetchone() == (1,)  # the facts carry the same hash
    if phone:
        assert resident.pk in Resident.objects.filter(phone_hash=c.lookup_hash(phone)).values_list("pk", flat=True)
    # Another key gives other hashes: a copy of the database alone finds no one.
    other = crypto.FieldCipher("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    assert not Resident.objects.filter(id_hash=other.lookup_hash(number)).exists()


def _get_patterns(resolver=None, prefix=""):
    """(route with <params>, pattern) of every URL of the site except the API (scanned through its client)."""
    for p in (resolver or get_resolver()).url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            if not route.startswith("api/"):
                yield from _get_patterns(p, route)
        elif isinstance(p, URLPattern):
            yield route, p


def _fill(route: str, values: dict[str, list[str]]) -> list[str]:
    """Every URL of ``route`` with its <params> taken from ``values`` (none when a param has no value)."""
    params = re.findall(r"<(?:\w+:)?(\w+)>", route)
    urls = ["/" + route.lstrip("^").rstrip("$")]
    for name in params:
        urls = [re.sub(rf"<(?:\w+:)?{name}>", v, u, count=1) for u in urls for v in values.get(name, [])]
    return urls


def test_pages_exports_reports_and_the_api_show_masked_values_only(client, secrets, facts_world, root, alice,
                                                                   tmp_path):
    community = facts_world["community"]
    compound = Unit.objects.filter(path__contains=f"/{WENLONG_COMMUNITY}/", kind=UnitKind.COMPOUND).first()
    building = Unit.objects.filter(path__startswith=compound.path, kind=UnitKind.BUILDING).first()
    households = {r.household.code for r in community[:8]} | set(
        Household.objects.filter(unit=building).values_list("code", flat=True)[:3])
    unit_codes = [WENLONG_COMMUNITY, "500110002", compound.code, building.code]
    values = {
        "resident_id": [str(r.pk) for r in community[:6]] + [str(community[25].pk)],
        "job_id": [str(pk) for pk in ImportJob.objects.values_list("pk", flat=True)],
        "kind": ["residents", "nat-results"],
    }
    texts: dict[str, str] = {}
    leaks: dict[str, set[str]] = {}

    def scan(url, resp):
        if resp.status_code != 200:
            return
        content = b"".join(resp.streaming_content) if resp.streaming else resp.content
        texts[url] = text = _text_of(content, resp.get("Content-Type", ""), tmp_path)
        if hits := secrets.found_in(text):
            leaks[url] = hits

    for user in (root, alice):
        client.force_login(user)
        for route, _p in _get_patterns():
            codes = sorted(households) if route.startswith("households/") else unit_codes
            for url in _fill(route, values | {"code": codes}):
                scan(f"{user.username} {url}", client.get(url))

    # The pages about these people were among them, and show them — masked.
    def shows(url, resident, phone=False):
        assert resident.id_masked in texts[url], url
        if phone and resident.phone_masked:
            assert resident.phone_masked in texts[url], url

    c = WENLONG_COMMUNITY
    shows(f"alice /units/{c}/ledger/", community[3])  # special population
    shows(f"alice /units/{c}/measures/", community[1])  # close contact
    shows(f"alice /units/{c}/measures/export.xlsx", community[1])
    shows(f"alice /units/{c}/testing/", community[0])  # a resident without a test, listed to be tested
    shows(f"alice /units/{c}/testing/export.xlsx", community[0])
    shows(f"alice /residents/{community[0].pk}/timeline/", community[0])
    shows(f"alice /households/{community[7].household.code}/", community[7], phone=True)
    shows(f"alice /units/{c}/assessment/", community[0])  # the case, named in the failed criterion
    for report in ("ledger.xlsx", "ledger.pdf", "weekly.xlsx", "weekly.pdf"):
        # The withdrawal's reason is there, and says how many, not who (issue 14: stored reasons are
        # read by volunteer roles too; the measures and testing pages above say who).
        text = texts[f"alice /units/{c}/dashboard/{report}"]
        assert community[0].id_masked not in text and community[0].name not in text, report
        if report.endswith(".xlsx"):
            assert "例阳性感染者" in text, report
    assert "NO-SUCH-HOUSEHOLD" in texts[f"root /imports/{facts_world['failed_job'].pk}/"]  # the report

    # The API: the reads of a district token, and the answer to a batch naming residents.
    _token, secret = do_create_api_token(actor=None, name="scan", unit=Unit.objects.get(code="500110"),
                                         kinds=list(FACT_KINDS), scopes=list(READ_SCOPES), days=30)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    for url in (f"/api/v1/units/{WENLONG_COMMUNITY}", f"/api/v1/units/{building.code}",
                f"/api/v1/units/{WENLONG_COMMUNITY}/evaluation", f"/api/v1/units/{WENLONG_COMMUNITY}/history",
                f"/api/v1/units/{WENLONG_COMMUNITY}/children", "/api/v1/evaluations?limit=500",
                "/api/v1/applications"):
        resp = client.get(url, **auth)
        assert resp.status_code == 200, (url, resp.content[:300])
        scan(url, resp)
    # The API's reasons, like every stored or shared reason, say how many, not who.
    api_evaluation = texts[f"/api/v1/units/{WENLONG_COMMUNITY}/evaluation"]
    i = api_evaluation.find(community[0].id_masked)
    assert community[0].id_masked not in api_evaluation, api_evaluation[max(0, i - 300):i + 100]
    assert "例阳性感染者" in json.loads(api_evaluation)["criteria"][0]["detail"]
    bad_and_good = {"batch_key": "scan-1", "records": [
        {"id_number": community[26].reveal_id_number(), "sampled_at": "2999-01-01 08:00", "result": "阴性"},
        {"id_number": community[27].reveal_id_number(), "sampled_at": f"{dates.today() - DAY} 09:00",
         "result": "阴性"},
        {"id_number": community[28].reveal_id_number()[:17] + "0", "sampled_at": "2022-11-01 09:00",
         "result": "阴性"}]}
    resp = client.post("/api/v1/facts/nat-results", json.dumps(bad_and_good), content_type="application/json", **auth)
    assert resp.status_code == 200 and resp.json()["rejected"] >= 1, resp.content
    scan("POST /api/v1/facts/nat-results", resp)

    out = io.StringIO()
    call_command("evaluate", "--json", stdout=out)
    if hits := secrets.found_in(out.getvalue()):
        leaks["evaluate --json"] = hits
    assert "例阳性感染者" in out.getvalue() and "*" not in out.getvalue()  # the reasons say how many, not who

    assert len(texts) > 100
    assert leaks == {}


def test_the_scanner_finds_a_number_where_there_is_one(secrets, tmp_path):
    """The scan above can fail: the same scanner sees a number in text, in an XLSX and in a PDF."""
    from openpyxl import Workbook
    from reportlab.pdfgen import canvas

    number, phone = secrets.numbers[0], secrets.phones[0]
    assert secrets.found_in(f"<td>{number}</td>") == {number}
    assert secrets.found_in(f"{number[:4]}-{number[4:14]}-") == {number}  # the hidden part alone
    assert secrets.found_in(f"tel:{phone}") == {phone}
    wb = Workbook()
    wb.active.append(["x", number])
    buf = io.BytesIO()
    wb.save(buf)
    assert secrets.found_in(_text_of(buf.getvalue(), "", tmp_path)) == {number}
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf)
    pdf.drawString(72, 720, f"ID {number}")
    pdf.save()
    assert secrets.found_in(_text_of(buf.getvalue(), "application/pdf", tmp_path)) == {number}


def test_a_reveal_shows_the_number_and_is_audited(client, secrets, facts_world, alice, bob):
    resident = facts_world["community"][7]
    number, phone = resident.reveal_id_number(), resident.reveal_phone()
    client.force_login(alice)
    resp = client.post(f"/residents/{resident.pk}/reveal/", HTTP_X_FORWARDED_FOR="", REMOTE_ADDR="10.1.2.3")
    assert resp.status_code == 200 and resp["Cache-Control"] == "no-store"
    assert number in resp.content.decode()
    if phone:
        assert phone in resp.content.decode()
    event = AuditEvent.objects.get(action="resident.reveal", target_type="units.resident", target_id=str(resident.pk))
    assert event.actor == alice and event.unit == resident.household.unit
    assert event.detail == {"fields": ["id_number", "phone"]}
    assert not secrets.found_in(json.dumps(event.detail))  # the row records the look, not the number

    # A reveal is a POST (a GET cannot be replayed from a link or a cache) …
    assert client.get(f"/residents/{resident.pk}/reveal/").status_code == 405
    # … and outside the user's scope it is a 404 that neither shows nor records anything.
    client.force_login(bob)
    resp = client.post(f"/residents/{resident.pk}/reveal/")
    assert resp.status_code == 404 and number not in resp.content.decode()
    assert AuditEvent.objects.filter(action="resident.reveal").count() == 1
    outsider = Resident.objects.filter(household__unit__path__contains=f"/{TIANQIAO_COMMUNITY}/").first()
    client.force_login(alice)
    assert client.post(f"/residents/{outsider.pk}/reveal/").status_code == 404
    assert AuditEvent.objects.filter(action="resident.reveal").count() == 1
