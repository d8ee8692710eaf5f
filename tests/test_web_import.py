"""The import page of a unit: who may use it, the template download, upload checks, and a real
import run by its task (the tests' immediate task backend runs it at once; tests/test_worker.py runs
it through the database queue and a `wuyiqu worker` process), followed on the job page."""

from __future__ import annotations

import io

import pytest
from conftest import TIANQIAO_COMMUNITY, WENLONG_COMMUNITY
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from import_flow import confirm

from wuyiqu.imports.models import ImportJob, ImportStatus
from wuyiqu.imports.registry import all_kinds
from wuyiqu.imports.services import create_job
from wuyiqu.units.models import Household, Unit, UnitKind


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def a_building(community_code: str) -> Unit:
    return Unit.objects.filter(path__contains=f"/{community_code}/", kind=UnitKind.BUILDING,
                               children__isnull=True).order_by("code").first()


def csv_upload(rows: list[str], name: str = "住户.csv") -> SimpleUploadedFile:
    text = "户编码,所属单位编码,地址,核实日期\n" + "\n".join(rows) + "\n"
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


def test_it_offers_every_registered_kind_and_its_template(world, alice, client_for):
    client = client_for(alice)
    html = client.get(f"/units/{WENLONG_COMMUNITY}/import/").content.decode()
    kinds = all_kinds()
    for name in ("units", "households", "residents", "verifications", "special-population"):
        assert name in kinds
    for name, cls in kinds.items():
        assert f'value="{name}"' in html
        assert f"/units/{WENLONG_COMMUNITY}/import/template/{name}/" in html
        assert cls.label in html
    response = client.get(f"/units/{WENLONG_COMMUNITY}/import/template/households/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(response.content)).active
    assert [c.value for c in sheet[1]][:3] == ["户编码", "所属单位编码", "地址"]
    assert client.get(f"/units/{WENLONG_COMMUNITY}/import/template/nonsense/").status_code == 404


def test_it_refuses_roles_that_may_not_import(world, dave, alice, client_for):
    client = client_for(dave)  # a building head, inside his own building
    refused = client.get(f"/units/{dave.unit.code}/import/")
    assert refused.status_code == 403 and "您的角色不能导入数据" in refused.content.decode()
    assert client.post(f"/units/{dave.unit.code}/import/",
                       {"kind": "households", "file": csv_upload(["X,Y,Z,"])}).status_code == 403
    assert client.get(f"/units/{dave.unit.code}/import/template/households/").status_code == 403
    assert f"/units/{dave.unit.code}/import/" not in client.get(f"/units/{dave.unit.code}/").content.decode()
    assert ImportJob.objects.count() == 0


def test_it_refuses_a_file_that_is_not_a_spreadsheet_or_text(world, alice, client_for, media):
    upload = SimpleUploadedFile("list.docx", b"PK\x03\x04", content_type="application/msword")
    response = client_for(alice).post(f"/units/{WENLONG_COMMUNITY}/import/", {"kind": "households", "file": upload})
    assert response.status_code == 400
    assert "只能上传 CSV、TSV/TXT、XLSX、XLS 或 ODS 文件" in response.content.decode()
    assert ImportJob.objects.count() == 0
    assert not (media / "imports").exists() or not any((media / "imports").iterdir())


@override_settings(IMPORT_MAX_UPLOAD_BYTES=50)
def test_it_refuses_a_file_over_the_size_limit(world, alice, client_for):
    upload = csv_upload([f"{WENLONG_COMMUNITY}-X-{i},{WENLONG_COMMUNITY}-B01,地址{i}," for i in range(5)])
    response = client_for(alice).post(f"/units/{WENLONG_COMMUNITY}/import/", {"kind": "households", "file": upload})
    assert response.status_code == 400
    assert "文件太大" in response.content.decode()
    assert ImportJob.objects.count() == 0


@override_settings(IMPORT_MAX_UPLOAD_BYTES=1000)
def test_it_refuses_an_upload_declared_far_over_the_limit_before_reading_it(world, alice, client_for):
    upload = csv_upload([f"{WENLONG_COMMUNITY}-X-{i},{WENLONG_COMMUNITY}-B01,地址{i}," for i in range(5000)])
    response = client_for(alice).post(f"/units/{WENLONG_COMMUNITY}/import/", {"kind": "households", "file": upload})
    assert response.status_code == 413
    assert "文件太大" in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_it_polls_a_running_job_and_stops_when_it_is_done(world, alice, client_for):
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    job = create_job(kind="households", filename="a.csv", actor=alice, scope=community)
    client = client_for(alice)
    partial = client.get(f"/imports/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in partial and "<html" not in partial
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, rows_total=200, rows_done=50)
    partial = client.get(f"/imports/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in partial
    assert '<progress max="200" value="50">' in partial and "25%" in partial
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.FAILED, rows_done=200, invalid=1,
                                               errors=[{"line": 7, "field": "unit_code", "message": "单位编码不存在"}])
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "hx-trigger" not in page
    assert "<td data-label=\"行号\">7</td>" in page and "所属单位编码" in page and "单位编码不存在" in page


@pytest.mark.django_db(transaction=True)
def test_it_imports_in_the_background_and_reports_the_result(world, alice, bob, client_for, media):
    building = a_building(WENLONG_COMMUNITY)
    rows = [f"{building.code}-Y{i:02d},{building.code},新楼Y{i:02d}室,2022-11-20" for i in range(1, 6)]
    client = client_for(alice)
    response = client.post(f"/units/{WENLONG_COMMUNITY}/import/", {"kind": "households", "file": csv_upload(rows)})
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert response["Location"] == f"/imports/{job.pk}/"
    assert job.created_by == alice and job.scope.code == WENLONG_COMMUNITY
    # First a preview: counted, nothing written, the upload kept for the confirmation.
    assert (job.status, job.created, job.dry_run) == (ImportStatus.PREVIEWED, 5, True), job.message
    assert not Household.objects.filter(code__startswith=f"{building.code}-Y").exists()
    assert len(list((media / "imports").iterdir())) == 1
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "确认后将新增 5 条" in page and "确认导入" in page and "hx-trigger" not in page
    job = confirm(client, response)
    assert list((media / "imports").iterdir()) == [] and job.stored_path == ""  # removed when the job ended
    assert job.status == ImportStatus.SUCCEEDED, job.message
    assert (job.rows_total, job.rows_done, job.created) == (5, 5, 5)
    assert Household.objects.filter(code__startswith=f"{building.code}-Y").count() == 5
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "已完成" in page and '<progress max="5" value="5">' in page and "hx-trigger" not in page
    # The job is alice's community's: bob, next door, does not see it.
    assert client_for(bob).get(f"/imports/{job.pk}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_it_imports_nothing_and_lists_every_bad_row(world, alice, client_for):
    building = a_building(WENLONG_COMMUNITY)
    outside = a_building(TIANQIAO_COMMUNITY)  # bob's: outside alice's scope
    rows = [
        f"{building.code}-Z801,{building.code},新楼801室,",
        f"{building.code}-Z802,{outside.code},新楼802室,",
        f"{building.code}-Z803,NO-SUCH-UNIT,新楼803室,",
        f"{building.code}-Z804,{building.code},新楼804室,2022-13-40",
    ]
    client = client_for(alice)
    response = client.post(f"/units/{WENLONG_COMMUNITY}/import/", {"kind": "households", "file": csv_upload(rows)})
    assert response.status_code == 302
    preview = ImportJob.objects.get()
    assert (preview.status, preview.invalid, preview.created) == (ImportStatus.PREVIEWED, 3, 1)
    page = client.get(f"/imports/{preview.pk}/").content.decode()
    for line in (3, 4, 5):  # every refused row is on the preview
        assert f'<td data-label="行号">{line}</td>' in page
    job = confirm(client, response)  # without 跳过错误行: all or nothing
    assert job.status == ImportStatus.FAILED
    assert job.invalid == 3
    assert not Household.objects.filter(code__startswith=f"{building.code}-Z80").exists()
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "未导入" in page
    for line in (3, 4, 5):
        assert f'<td data-label="行号">{line}</td>' in page
    assert "不在您的管辖范围内" in page and "NO-SUCH-UNIT" in page
