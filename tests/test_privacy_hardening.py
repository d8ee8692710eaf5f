"""The smaller findings of issue 14 (9), one test each: a NUL byte in a URL is a clean 404/400, never
a 500 (PostgreSQL cannot hold one in text); a refused API token is counted, not audited each; pages
are not cached; `wuyiqu import` prints cell values with their control characters escaped; certificate
numbers cannot be guessed by counting (the old ones still verify). The start checks of `wuyiqu
serve` (a data key that is not random, any host name) are in tests/test_serve.py."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from conftest import WENLONG_COMMUNITY
from django.core.management import CommandError, call_command

from wuyiqu.api.actions import UNAUTHENTICATED_AUDITED_AT
from wuyiqu.audit.models import AuditEvent
from wuyiqu.certification.actions import CERTIFICATE_ALPHABET, new_certificate_number
from wuyiqu.certification.models import Title
from wuyiqu.units.models import Household, Unit, UnitKind

pytestmark = pytest.mark.django_db

NUL_PATHS_ANONYMOUS = ["/verify/a%00b/", "/s/a%00b/", "/certificates/a%00b.pdf", "/api/v1/public/certificates/a%00b"]
NUL_PATHS_SIGNED_IN = [f"/units/{WENLONG_COMMUNITY}%00/", "/units/a%00b/dashboard/", "/households/a%00b/",
                       "/units/a%00b/measures/", "/units/a%00b/assessment/", "/units/a%00b/history/",
                       f"/units/{WENLONG_COMMUNITY}/import/template/a%00b/"]
NUL_QUERIES = ["/units/search/?q=a%00b", f"/units/{WENLONG_COMMUNITY}/measures/?kind=a%00b",
               "/accounts/?q=%00", f"/units/{WENLONG_COMMUNITY}/assessment/?date=2022%00"]


# --- NUL bytes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NUL_PATHS_ANONYMOUS)
def test_a_nul_in_a_public_path_is_a_404(world, client, path):
    response = client.get(path)
    assert response.status_code == 404, (path, response.status_code)


@pytest.mark.parametrize("path", NUL_PATHS_SIGNED_IN)
def test_a_nul_in_a_signed_in_path_is_a_404(world, root, alice, client_for, path):
    for user in (alice, root):
        response = client_for(user).get(path)
        assert response.status_code == 404, (path, user.username, response.status_code)


@pytest.mark.parametrize("path", NUL_QUERIES)
def test_a_nul_in_the_query_string_is_a_400(world, root, alice, client_for, path):
    for user in (alice, root):
        response = client_for(user).get(path)
        assert response.status_code == 400, (path, user.username, response.status_code)


def test_a_nul_in_a_form_field_is_refused_by_the_form(world, alice, client_for):
    response = client_for(alice).post(f"/units/{WENLONG_COMMUNITY}/inspections/",
                                      {"inspected_on": "2022-11-20", "inspector": "王\x00五", "item_masks": "pass"})
    assert response.status_code in (200, 400) and "空字符" in response.content.decode()


# --- the API: a refused token is counted, not audited each -----------------------------------------------


def test_refused_tokens_write_a_few_rows_an_hour_not_one_each(world, client):
    for i in range(250):
        headers = {"HTTP_AUTHORIZATION": f"Bearer wyq_guess{i}"} if i % 2 else {}
        assert client.get("/api/v1/units/500110", **headers).status_code == 401
    events = list(AuditEvent.objects.filter(action__startswith="api.").order_by("id"))
    assert [e.action for e in events] == ["api.unauthenticated"] * 2  # the 1st and the 100th of the hour
    assert [e.detail["count_this_hour"] for e in events] == [1, 100] == list(UNAUTHENTICATED_AUDITED_AT[:2])
    assert events[1].detail["code"] == "invalid_token" and events[1].ip == "127.0.0.1"
    assert events[1].detail["op"] == "/api/v1/units/500110"


def test_a_query_parameter_the_document_does_not_declare_is_refused_after_the_token(world, carol, client):
    from wuyiqu.api.actions import do_create_api_token
    from wuyiqu.api.models import SCOPES

    _token, secret = do_create_api_token(actor=None, name="q", unit=world, kinds=[], scopes=list(SCOPES),
                                         acts_as=carol, days=30)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get("/api/v1/units/500110002015/children?limit=5", **auth).status_code == 200
    refused = client.get("/api/v1/units/500110002015/children?limit=5&x-unknown=1", **auth)
    assert refused.status_code == 422 and refused.json()["code"] == "invalid"
    assert refused.json()["fields"] == {"x-unknown": "接口文档中没有此参数"}
    assert client.get("/api/v1/units/500110002015/children?x-unknown=1").status_code == 401  # no token: 401 first
    assert client.get("/api/v1/public/certificates/WYQ-2022-000001?x=1").status_code == 422


def test_a_field_name_with_a_nul_is_refused_for_its_record_not_a_database_error(world, carol, client):
    import json

    from wuyiqu.api.actions import do_create_api_token
    from wuyiqu.api.models import FACT_KINDS, SCOPES

    _token, secret = do_create_api_token(actor=None, name="n", unit=world, kinds=list(FACT_KINDS),
                                         scopes=list(SCOPES), acts_as=carol, days=30)
    body = {"batch_key": "nul-names", "records": [{"a\x00b": 1}]}
    response = client.post("/api/v1/facts/cases", json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200, response.content  # PostgreSQL answered 422: jsonb holds no NUL
    error = response.json()["errors"][0]
    assert error["code"] == "unknown_field" and "a\\x00b" in error["message"]


# --- pages are not cached ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", f"/units/{WENLONG_COMMUNITY}/", "/units/search/?q=1", "/notifications/",
                                  f"/units/{WENLONG_COMMUNITY}/measures/", f"/units/{WENLONG_COMMUNITY}/assessment/"])
def test_every_signed_in_page_is_no_store(world, alice, client_for, path):
    response = client_for(alice).get(path)
    assert response.status_code in (200, 302), response.status_code
    assert response["Cache-Control"] == "private, no-store"


def test_a_household_page_with_names_is_no_store(world, alice, client_for):
    household = Household.objects.filter(unit__path__contains=f"/{WENLONG_COMMUNITY}/").order_by("code").first()
    response = client_for(alice).get(f"/households/{household.code}/")
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"


def test_anonymous_pages_are_no_store_unless_their_view_says_otherwise(world, client):
    assert "no-store" in client.get("/login/")["Cache-Control"]  # Django's never_cache, kept
    assert client.get("/api/v1/units/500110")["Cache-Control"] == "no-store"


# --- `wuyiqu import`: control characters in printed values ------------------------------------------------


def test_the_import_command_escapes_control_characters_of_the_file(world, tmp_path):
    building = Unit.objects.filter(path__contains=f"/{WENLONG_COMMUNITY}/", kind=UnitKind.BUILDING,
                                   children__isnull=True).order_by("code").first()
    hostile = "\x1b]0;pwned\x07\x1b[2J\u202eX"
    path = tmp_path / "h.csv"
    path.write_text(f"户编码,所属单位编码,地址,核实日期\n{building.code}-Z1,{hostile},地址,\n", encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("import", "households", str(path), "--no-progress", stderr=err)
    printed = err.getvalue() + str(failed.value)
    assert "\x1b" not in printed and "\x07" not in printed and "\u202e" not in printed
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\u202eX" in err.getvalue()  # shown, escaped, on the row's line
    header = tmp_path / "header.csv"  # a header cell and a sheet's words, printed with the column mapping
    header.write_text(f"户编码,所属单位编码,地址,\x1b[31m红\n{building.code}-Z2,{building.code},地址2,x\n",
                      encoding="utf-8")
    out = io.StringIO()
    try:
        call_command("import", "households", str(header), "--no-progress", stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        out.write(str(exc))
    assert "\x1b" not in out.getvalue() and "\\x1b[31m红" in out.getvalue()


# --- certificate numbers --------------------------------------------------------------------------------------


def test_certificate_numbers_are_random_and_old_ones_still_verify(world, client):
    numbers = {new_certificate_number(dt.date(2022, 11, 28)) for _ in range(500)}
    assert len(numbers) == 500
    pattern = re.compile(rf"^WYQ-2022-[{CERTIFICATE_ALPHABET}]{{4}}-[{CERTIFICATE_ALPHABET}]{{4}}-[{CERTIFICATE_ALPHABET}]{{4}}$")
    assert all(pattern.match(n) for n in numbers)
    # 60 random bits: consecutive numbers share no more than chance would give
    ordered = sorted(numbers)
    assert not any(a[:-1] == b[:-1] for a, b in zip(ordered, ordered[1:], strict=False))
    # A certificate given under the old scheme (the row id) keeps verifying, on the page and the API.
    unit = Unit.objects.filter(path__contains=f"/{WENLONG_COMMUNITY}/", kind=UnitKind.BUILDING).order_by("code").first()
    Title.objects.create(unit=unit, title="无疫楼栋", named_on=dt.date(2022, 11, 28), certificate_number="WYQ-2022-000042")
    assert client.get("/verify/WYQ-2022-000042/").status_code == 200
    assert client.get("/api/v1/public/certificates/WYQ-2022-000042").json()["number"] == "WYQ-2022-000042"
    assert client.get("/verify/WYQ-2022-000043/").status_code == 404
