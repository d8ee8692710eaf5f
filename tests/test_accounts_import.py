"""The `users` import: many accounts from the Excel/CSV template, all or nothing, each row checked like an
account made on the web; one-time passwords taken once by the person who ran the import."""

from __future__ import annotations

import io
from io import StringIO

import openpyxl
import pytest
from conftest import TIANQIAO_COMMUNITY, WENLONG_COMMUNITY
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from import_flow import confirm

from wuyiqu.accounts.models import PasswordSheet, Role, User
from wuyiqu.audit.models import AuditEvent
from wuyiqu.imports.models import ImportJob, ImportStatus
from wuyiqu.imports.services import run_import
from wuyiqu.lib import crypto
from wuyiqu.lib.idcard import mask_phone
from wuyiqu.units.models import Unit, UnitKind

HEADER = "用户名,姓名,电话,角色,单位编码"


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


def units_of(community_code: str) -> tuple[Unit, Unit, Unit]:
    compound = Unit.objects.filter(path__contains=f"/{community_code}/", kind=UnitKind.COMPOUND).order_by("code").first()
    b1, b2 = Unit.objects.filter(parent=compound, kind=UnitKind.BUILDING).order_by("code")[:2]
    return compound, b1, b2


def csv_file(tmp_path, rows: list[str], name="accounts.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def good_rows() -> list[str]:
    compound, b1, b2 = units_of(WENLONG_COMMUNITY)
    return [f"zhang,张楼长,13800000001,楼栋长,{b1.code}", f"li,李楼长,,building_head,{b2.code}",
            f"wy,王物业,023-6666666,物业,{compound.code}"]


def take_sheet(client, job_id: int) -> list[tuple]:
    response = client.post(f"/accounts/passwords/{job_id}/")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    return [tuple(r) for r in book.active.iter_rows(min_row=2, values_only=True)]


def test_community_staff_create_accounts_from_a_file_and_take_their_passwords_once(alice, client_for, tmp_path):
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    job = run_import(kind="users", path=csv_file(tmp_path, good_rows()), actor=alice, scope=community)
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 3), job.errors
    zhang = User.objects.get(username="zhang")
    assert (zhang.role, zhang.display_name, zhang.must_change_password) == (Role.BUILDING_HEAD, "张楼长", True)
    assert zhang.phone_masked == mask_phone("13800000001") and crypto.cipher().decrypt(zhang.phone_enc) == "13800000001"
    assert User.objects.get(username="wy").role == Role.PROPERTY_MANAGER
    # The passwords are kept encrypted until taken.
    assert b"zhang" not in b"".join(bytes(s.content_enc) for s in PasswordSheet.objects.all())

    client = client_for(alice)
    assert f"/accounts/passwords/{job.pk}/" in client.get("/accounts/").content.decode()
    assert f"/accounts/passwords/{job.pk}/" in client.get(f"/imports/{job.pk}/").content.decode()
    rows = take_sheet(client, job.pk)
    assert [r[:3] for r in rows] == [("zhang", "张楼长", units_of(WENLONG_COMMUNITY)[1].code),
                                     ("li", "李楼长", units_of(WENLONG_COMMUNITY)[2].code),
                                     ("wy", "王物业", units_of(WENLONG_COMMUNITY)[0].code)]
    for username, _name, _unit, password in rows:
        assert User.objects.get(username=username).check_password(password)
    # Once: then they are gone, and the page says so.
    assert not PasswordSheet.objects.exists()
    again = client.post(f"/accounts/passwords/{job.pk}/")
    assert again.status_code == 302
    assert 'id="no-sheet"' in client.get(f"/accounts/passwords/{job.pk}/").content.decode()
    event = AuditEvent.objects.get(action="accounts.take_password_sheet")
    assert event.actor == alice and event.detail["accounts"] == ["zhang", "li", "wy"]
    assert all(r[3] not in str(event.detail) for r in rows)
    run = AuditEvent.objects.get(action="imports.run", target_id=str(job.pk))
    assert run.detail["usernames"] == ["zhang", "li", "wy"]


def test_re_importing_the_same_file_adds_nothing_and_issues_no_new_password(alice, tmp_path):
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    path = csv_file(tmp_path, good_rows())
    run_import(kind="users", path=path, actor=alice, scope=community)
    before = {u.username: u.password for u in User.objects.all()}
    job = run_import(kind="users", path=path, actor=alice, scope=community)
    assert (job.status, job.created, job.unchanged) == (ImportStatus.SUCCEEDED, 0, 3)
    assert {u.username: u.password for u in User.objects.all()} == before
    assert PasswordSheet.objects.filter(job=job).count() == 0


def test_a_file_with_any_bad_row_creates_no_account_and_names_each_row_and_field(alice, bob, tmp_path):
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    compound, b1, _b2 = units_of(WENLONG_COMMUNITY)
    _theirs, their_building, _ = units_of(TIANQIAO_COMMUNITY)
    rows = [
        *good_rows(),
        f"wl2,网格员,,社区工作人员,{WENLONG_COMMUNITY}",  # 5: a role alice may not give
        f"tq,天桥,,楼栋长,{their_building.code}",  # 6: outside her scope
        f"bad kind,某人,,楼栋长,{b1.code}",  # 7: a space in the user name
        f"pm2,某人,,物业,{b1.code}",  # 8: a property manager belongs to a compound
        f"Zhang,张三,,楼栋长,{b1.code}",  # 9: the same name as line 2, in other case
        f"bob,鲍勃,,楼栋长,{b1.code}",  # 10: taken
        f"ph,某人,12345,楼栋长,{b1.code}",  # 11: not a phone
        f"x1,某人,,市长,{b1.code}",  # 12: no such role
        "x2,某人,,楼栋长,NO-SUCH-UNIT",  # 13
    ]
    job = run_import(kind="users", path=csv_file(tmp_path, rows), actor=alice, scope=community)
    assert job.status == ImportStatus.FAILED
    got = {(e["line"], e["field"]) for e in job.errors}
    assert got >= {(5, "role"), (6, "unit_code"), (7, "username"), (8, "unit_code"), (10, "username"),
                   (11, "phone"), (12, "role"), (13, "unit_code")}, job.errors
    assert job.duplicate == 1  # line 9
    assert not User.objects.filter(username__in=["zhang", "li", "wy"]).exists()
    assert not PasswordSheet.objects.exists()


def test_the_import_page_runs_it_and_only_the_importer_takes_the_passwords(alice, carol, client_for):
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    text = HEADER + "\n" + "\n".join(good_rows()) + "\n"
    upload = SimpleUploadedFile("账号.csv", text.encode("gbk"), content_type="text/csv")
    client = client_for(alice)
    response = client.post(f"/units/{community.code}/import/", {"kind": "users", "file": upload})
    assert response.status_code == 302
    preview = ImportJob.objects.get(kind="users")  # previewed first: no account, no password yet
    assert preview.status == ImportStatus.PREVIEWED and not PasswordSheet.objects.exists()
    job = confirm(client, response)
    assert job.status == ImportStatus.SUCCEEDED and job.created == 3
    # carol (the street, above alice) sees the job but the passwords are alice's to take.
    street = client_for(carol)
    assert 'id="no-sheet"' in street.get(f"/accounts/passwords/{job.pk}/").content.decode()
    assert street.post(f"/accounts/passwords/{job.pk}/").status_code == 302
    assert PasswordSheet.objects.filter(job=job).exists()
    assert len(take_sheet(client_for(alice), job.pk)) == 3


def test_the_console_imports_accounts_and_prints_their_passwords_once(world, tmp_path):
    out = StringIO()
    call_command("import", "users", str(csv_file(tmp_path, good_rows())), "--no-progress", stdout=out)
    job = ImportJob.objects.get(kind="users")
    printed = StringIO()
    call_command("user", "passwords", "--job", str(job.pk), stdout=printed)
    lines = printed.getvalue().strip().splitlines()[1:]
    assert [line.split("\t")[0] for line in lines] == ["zhang", "li", "wy"]
    assert all(User.objects.get(username=u).check_password(p) for u, _n, _c, p in (line.split("\t") for line in lines))
    with pytest.raises(CommandError, match="已经取过"):
        call_command("user", "passwords", "--job", str(job.pk), stdout=StringIO())
