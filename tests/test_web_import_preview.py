"""The web import of an office's own ledger (issue 17): the preview with the column mapping, the
mapped first rows and the counts; changing the mapping or the sheets; confirming (and the mapping
remembered for the unit and the file's shape); the error workbook; scope and double clicks."""

from __future__ import annotations

import io

import openpyxl
import pytest
from conftest import WENLONG_COMMUNITY, WENLONG_STREET
from django.core.files.uploadedfile import SimpleUploadedFile
from import_flow import job_of
from ledger_files import (
    LEDGERS,
    OFFICE,
    Town,
    delimited,
    office_rows,
    one_sheet_per_building,
    people,
    sheets_with_other_headers,
    xlsx,
)

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.audit.models import AuditEvent
from wuyiqu.imports.models import ColumnMapping, ImportJob, ImportStatus
from wuyiqu.lib import crypto
from wuyiqu.lib.idcard import mask_id_number
from wuyiqu.units.models import Household, Resident, Unit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def town(world) -> Town:
    """Two households of alice's community in two buildings."""
    households = Household.objects.filter(unit__path__contains=f"/{WENLONG_COMMUNITY}/").order_by("code")
    first = households.first()
    second = households.exclude(unit=first.unit).first()
    return Town(first.code, second.code)


def upload(client, name: str, data: bytes, kind: str = "residents"):
    return client.post(f"/units/{WENLONG_COMMUNITY}/import/", {"kind": kind, "file": SimpleUploadedFile(name, data)})


def registered(number: str) -> bool:
    return Resident.objects.filter(id_hash=crypto.cipher().lookup_hash(number)).exists()


OWN_WORDS = next(led for led in LEDGERS if led.id == "csv-own-words-with-a-mapping")


def test_a_workbook_of_sheets_is_previewed_with_its_mapping_then_imported_on_confirmation(town, alice, client_for):
    client = client_for(alice)
    job = job_of(upload(client, "各楼栋.xls", one_sheet_per_building(town)))
    assert (job.status, job.created, job.invalid) == (ImportStatus.PREVIEWED, 4, 0), job.message
    expected = people(town, 2) + people(town, 2, start=11, household=town.h2)
    assert not any(registered(p.id_number) for p in expected)  # nothing written yet
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "确认后将新增 4 条" in page
    assert "工作表“1号楼”第2行是列标题；工作表“2号楼”第2行是列标题" in page
    assert '<option value="id_number" selected>身份证号 *</option>' in page  # 公民身份号码 found
    assert "工作表“说明”未导入：找不到列标题" in page
    masked = mask_id_number(expected[0].id_number)
    assert masked in page and expected[0].id_number not in page  # the first rows, masked
    response = client.post(f"/imports/{job.pk}/confirm/", {"action": "confirm"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 4), job.message
    assert all(registered(p.id_number) for p in expected)
    remembered = ColumnMapping.objects.get(unit__code=WENLONG_COMMUNITY, kind="residents")
    assert remembered.columns["公民身份号码"] == "id_number" and remembered.updated_by == alice
    assert AuditEvent.objects.filter(action="imports.confirm", actor=alice).count() == 1
    # A second click finds nothing left to confirm, and says so.
    again = client.post(f"/imports/{job.pk}/confirm/", {"action": "confirm"})
    assert again.status_code == 409 and "不是待确认的预览" in again.content.decode()


def test_columns_mapped_by_hand_are_previewed_again_and_remembered_for_next_month(town, alice, bob, client_for):
    client = client_for(alice)
    job = job_of(upload(client, "花名册.csv", OWN_WORDS.make(town)))
    assert job.status == ImportStatus.FAILED and "找不到列标题行" in job.message
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert '<label for="col-1">B 人员名</label>' in page  # the form to map the columns is offered
    columns = {f"col-{n}": key for n, key in enumerate(["", "name", "id_number", "household_code"])}
    job = job_of(client.post(f"/imports/{job.pk}/confirm/", {"action": "remap", **columns}))
    assert (job.status, job.created) == (ImportStatus.PREVIEWED, 3), job.message
    assert AuditEvent.objects.filter(action="imports.remap").count() == 1
    job = job_of(client.post(f"/imports/{job.pk}/confirm/", {"action": "confirm"}))
    assert job.status == ImportStatus.SUCCEEDED and all(registered(p.id_number) for p in people(town))
    # Next month, the same shape with other people: mapped as confirmed, straight to the preview.
    rows = [["编号", "人员名", "证件", "住户"], *[[i, p.name, p.id_number, p.household]
                                              for i, p in enumerate(people(town, 2, start=40), start=1)]]
    job = job_of(upload(client, "花名册12月.csv", delimited(rows).encode()))
    assert (job.status, job.created) == (ImportStatus.PREVIEWED, 2), job.message
    assert "沿用了上次为本单位确认的同样格式文件的对应关系" in client.get(f"/imports/{job.pk}/").content.decode()
    # bob, next door, can neither confirm nor map alice's preview; his community has confirmed nothing.
    assert client_for(bob).post(f"/imports/{job.pk}/confirm/", {"action": "confirm"}).status_code == 404
    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED
    other = job_of(client_for(bob).post(f"/units/{bob.unit.code}/import/",
                                        {"kind": "residents", "file": SimpleUploadedFile("r.csv", delimited(rows).encode())}))
    assert other.status == ImportStatus.FAILED


def test_sheets_with_other_headers_are_refused_until_the_person_chooses_the_sheets(town, alice, client_for):
    client = client_for(alice)
    job = job_of(upload(client, "各楼栋.xlsx", sheets_with_other_headers(town)))
    assert job.status == ImportStatus.FAILED and "工作表“汇总”第1行的列标题与工作表“1号楼”不同" in job.message
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert 'name="sheet" value="汇总" checked' in page
    refused = client.post(f"/imports/{job.pk}/confirm/", {"action": "remap", "sheets_shown": "1"})
    assert refused.status_code == 409 and "请至少选择一张工作表" in refused.content.decode()
    job = job_of(client.post(f"/imports/{job.pk}/confirm/", {"action": "remap", "sheets_shown": "1", "sheet": "1号楼"}))
    assert (job.status, job.created) == (ImportStatus.PREVIEWED, 2), job.message


def test_the_error_workbook_is_offered_downloaded_in_scope_and_audited(town, alice, bob, client_for):
    client = client_for(alice)
    ps = people(town)
    rows = office_rows(ps)
    rows[2][2] = "5.00222E+17"
    job = job_of(upload(client, "花名册.xlsx", xlsx([("花名册", [["标题"], OFFICE, *rows])])))
    assert (job.status, job.invalid, job.created) == (ImportStatus.PREVIEWED, 1, 2)
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert f"/imports/{job.pk}/errors.xlsx" in page and "科学计数法" in page
    response = client.get(f"/imports/{job.pk}/errors.xlsx")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    ws = openpyxl.load_workbook(io.BytesIO(response.content))["花名册"]
    assert [c.value for c in ws[1]] == [*OFFICE, "错误原因"]
    assert ws["B2"].value == ps[2].name and ws["C2"].value == "5.00222E+17" and "文本" in ws["F2"].value
    assert AuditEvent.objects.filter(action="imports.error_workbook", actor=alice).count() == 1
    # Confirmed with 跳过错误行, the good rows are imported.
    job = job_of(client.post(f"/imports/{job.pk}/confirm/", {"action": "confirm", "skip_invalid": "on"}))
    assert (job.status, job.created, job.invalid) == (ImportStatus.SUCCEEDED, 2, 1)
    assert ImportJob.objects.count() == 1
    # bob, next door, neither sees the job nor gets its refused rows.
    assert client_for(bob).get(f"/imports/{job.pk}/errors.xlsx").status_code == 404
    # Nor does the street above, who sees the job: the full numbers go back only to who uploaded them.
    street = do_create_user(actor=None, username="zhang", password="correct-horse-battery",
                            role=Role.STREET_STAFF, unit=Unit.objects.get(code=WENLONG_STREET), display_name="s")
    above = client_for(street)
    assert above.get(f"/imports/{job.pk}/").status_code == 200
    assert f"/imports/{job.pk}/errors.xlsx" not in above.get(f"/imports/{job.pk}/").content.decode()
    assert above.get(f"/imports/{job.pk}/errors.xlsx").status_code == 404
    assert client_for(alice).get(f"/imports/{job.pk}/errors.xlsx").status_code == 200  # still there, for her


def test_an_error_workbook_under_a_data_key_rotated_away_is_gone_not_an_error(town, alice, client_for, settings):
    client = client_for(alice)
    rows = office_rows(people(town))
    rows[0][2] = "5.00222E+17"
    job = job_of(upload(client, "花名册.xlsx", xlsx([("Sheet1", [OFFICE, *rows])])))
    assert client.get(f"/imports/{job.pk}/errors.xlsx").status_code == 200
    settings.DATA_KEY = "A" * 43 + "="  # another key, the old one not kept
    assert client.get(f"/imports/{job.pk}/errors.xlsx").status_code == 404


def test_the_preview_says_a_hidden_sheet_was_not_imported(town, alice, client_for):
    from test_import_ledgers import HIDDEN, hidden_sheet_workbook

    client = client_for(alice)
    job = job_of(upload(client, "花名册.xlsx", hidden_sheet_workbook(town, "xlsx")))
    assert (job.status, job.created) == (ImportStatus.PREVIEWED, 3), job.message
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert f"工作表“去年名单”未导入：{HIDDEN}" in page
