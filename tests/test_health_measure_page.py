"""A measure on a person not (yet) registered has a page of its own (issue 15): the measures list of
the submitter's scope lists it and links to it; it is scoped like the other health pages (community
staff and above, inside the scope of whoever recorded it), audited, and shows the same words whether
the number is on no register or registered in another community (issue 14: no existence oracle)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from conftest import TIANQIAO_COMMUNITY, WENLONG_COMMUNITY

from wuyiqu.audit.models import AuditEvent
from wuyiqu.health.models import Measure, MeasureChange
from wuyiqu.imports.models import ImportStatus
from wuyiqu.imports.services import run_import
from wuyiqu.lib.idcard import check_digit
from wuyiqu.units.models import Resident

pytestmark = pytest.mark.django_db


def fresh_number(seq: int) -> str:
    first17 = f"50022219880214{seq:03d}"
    return first17 + check_digit(first17)


def record_close_contacts(tmp_path, user, numbers: list[str], start: dt.date, end: dt.date) -> list[Measure]:
    path = tmp_path / "cc.csv"
    path.write_text("id_number,start_on,end_on\n" + "".join(f"{n},{start},{end}\n" for n in numbers), encoding="utf-8")
    job = run_import(kind="close-contacts", path=path, actor=user, scope=user.unit)
    assert job.status == ImportStatus.SUCCEEDED, job.message
    return list(Measure.objects.filter(resident__isnull=True).order_by("id"))


def strip_tokens(html: str) -> str:
    return re.sub(r'(csrfmiddlewaretoken" value=|nonce=)"[^"]*"', r"\1", html)


def test_the_list_links_an_unregistered_persons_measure_to_its_page(world, alice, client_for, tmp_path, today):
    (m,) = record_close_contacts(tmp_path, alice, [fresh_number(1)], today - dt.timedelta(days=2),
                                 today + dt.timedelta(days=5))
    assert (m.resident_id, m.unit_id, m.scope_unit_id) == (None, None, alice.unit_id)
    client = client_for(alice)
    listing = client.get(f"/units/{WENLONG_COMMUNITY}/measures/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert f'href="/measures/{m.pk}/"' in html and "未登记人员" in html and m.id_masked in html
    page = client.get(f"/measures/{m.pk}/")
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    text = page.content.decode()
    assert m.id_masked in text and "密接" in text and (today + dt.timedelta(days=5)).isoformat() in text
    assert fresh_number(1) not in text  # never the whole number
    event = AuditEvent.objects.get(action="health.view_measure")
    assert (event.actor, event.target_id, event.unit_id, event.detail["registered"]) == (alice, str(m.pk),
                                                                                         alice.unit_id, False)
    # The export lists it too (masked).
    export = client.get(f"/units/{WENLONG_COMMUNITY}/measures/export.xlsx")
    assert export.status_code == 200


def test_it_is_scoped_like_the_other_health_pages(world, alice, bob, carol, dave, client_for, tmp_path, today):
    (m,) = record_close_contacts(tmp_path, alice, [fresh_number(2)], today, today + dt.timedelta(days=3))
    assert client_for(carol).get(f"/measures/{m.pk}/").status_code == 200  # the street above
    for other in (bob, dave):  # the sibling community, a building head of her own community
        assert client_for(other).get(f"/measures/{m.pk}/").status_code == 404
        assert client_for(other).post(f"/measures/{m.pk}/extend/", {"on": str(today + dt.timedelta(days=9)),
                                                                    "reason": "核实"}).status_code == 404
    assert f"/measures/{m.pk}/" not in client_for(bob).get(f"/units/{TIANQIAO_COMMUNITY}/measures/").content.decode()
    assert not AuditEvent.objects.filter(action="health.view_measure", actor__in=[bob, dave]).exists()


def test_it_can_be_extended_and_ended_early_from_its_page(world, alice, client_for, tmp_path, today):
    (m,) = record_close_contacts(tmp_path, alice, [fresh_number(3)], today - dt.timedelta(days=1),
                                 today + dt.timedelta(days=4))
    client = client_for(alice)
    later = today + dt.timedelta(days=10)
    r = client.post(f"/measures/{m.pk}/extend/", {"on": later.isoformat(), "reason": "再次接触"})
    assert (r.status_code, r["Location"]) == (302, f"/measures/{m.pk}/")
    m.refresh_from_db()
    assert m.end_on == later
    page = client.get(f"/measures/{m.pk}/").content.decode()
    assert "再次接触" in page and later.isoformat() in page
    r = client.post(f"/measures/{m.pk}/end-early/", {"on": today.isoformat(), "reason": "核酸阴性"})
    assert r["Location"] == f"/measures/{m.pk}/"
    m.refresh_from_db()
    assert m.end_on == today and MeasureChange.objects.filter(measure=m).count() == 2


def test_elsewhere_and_unknown_read_alike_on_the_page(world, alice, client_for, tmp_path, today):
    theirs = Resident.objects.filter(household__unit__path__contains=f"/{TIANQIAO_COMMUNITY}/").order_by("id").first()
    held, unknown = record_close_contacts(tmp_path, alice, [theirs.reveal_id_number(), fresh_number(4)],
                                          today, today + dt.timedelta(days=3))
    assert held.resident_id is None and unknown.resident_id is None
    client = client_for(alice)
    pages = []
    for m in (held, unknown):
        html = strip_tokens(client.get(f"/measures/{m.pk}/").content.decode())
        pages.append(html.replace(f"/measures/{m.pk}/", "/measures/N/").replace(m.id_masked, "X")
                     .replace(m.created_at.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M"),
                              "T"))
    assert pages[0] == pages[1]
    assert theirs.name not in pages[0]
