"""No plaintext at rest for web uploads (issue 14, 1): an import file is sealed under the data key as
it is written (mode 0600), read through decryption, and removed when its job ends — succeeded,
failed, refused before it ran, or killed (the worker's recovery removes it too). `wuyiqu
seal-uploads` removes what earlier versions left behind. Attachments and inspection photos are
sealed the same way (tests/test_privacy_attachments.py)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from conftest import WENLONG_COMMUNITY
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from import_flow import job_of

from wuyiqu.imports import parsers, services, storage
from wuyiqu.imports.models import ImportJob, ImportStatus
from wuyiqu.lib import sealed
from wuyiqu.lib.idcard import check_digit
from wuyiqu.units.models import Household, Resident, Unit

pytestmark = pytest.mark.django_db


def an_id(n: int) -> str:
    first17 = f"500110198203{n:02d}7{n:02d}"
    return first17 + check_digit(first17)


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def files_holding(root: Path, needle: str) -> list[Path]:
    """Every file below ``root`` whose bytes hold ``needle`` (as UTF-8 or GBK): a grep of the disk."""
    if not root.exists():
        return []
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if needle.encode() in data or needle.encode("gbk") in data:
                found.append(path)
    return found


def residents_csv(rows: list[tuple[str, str, str]]) -> bytes:
    text = "身份证号,姓名,户编码\n" + "".join(f"{i},{n},{h}\n" for i, n, h in rows)
    return text.encode("utf-8")


def a_household() -> Household:
    return Household.objects.filter(unit__path__contains=f"/{WENLONG_COMMUNITY}/").order_by("code").first()


def upload_as(client, data: bytes, name: str = "居民.csv"):
    """Upload, then confirm the preview (the page's 确认导入); the response of the last step."""
    response = client.post(f"/units/{WENLONG_COMMUNITY}/import/",
                           {"kind": "residents", "file": SimpleUploadedFile(name, data)})
    job = job_of(response)
    if job.status == ImportStatus.PREVIEWED:
        response = client.post(f"/imports/{job.pk}/confirm/", {"action": "confirm"})
    return response


# --- the sealed format ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, sealed.CHUNK - 1, sealed.CHUNK, sealed.CHUNK + 1, 3 * sealed.CHUNK + 7])
def test_a_sealed_file_reads_back_exactly_and_seeks(tmp_path, size):
    data = os.urandom(size)
    path = sealed.seal(tmp_path / "f", [data[i:i + 5000] for i in range(0, size, 5000)])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sealed.is_sealed(path) and sealed.plain_size(path) == size
    with sealed.open_plain(path) as f:
        assert f.read() == data
        for start in (0, size // 3, max(size - 10, 0), size):
            f.seek(start)
            assert f.read(sealed.CHUNK + 3) == data[start:start + sealed.CHUNK + 3]
    with open(tmp_path / "plain", "wb") as out:
        out.write(data)
    with sealed.open_plain(tmp_path / "plain") as f:  # a file that is not sealed reads as it is
        assert f.read() == data


def test_a_sealed_file_cut_altered_or_under_another_key_does_not_open(tmp_path, settings):
    data = ("500110198203017011," * 10000).encode()
    path = sealed.seal(tmp_path / "f", [data])
    raw = path.read_bytes()
    assert b"500110198203017011" not in raw
    for name, broken in (("cut", raw[:-(sealed.CHUNK + sealed.TAG)]), ("short", raw[:-1]),
                         ("flipped", raw[:200] + bytes([raw[200] ^ 1]) + raw[201:])):
        (tmp_path / name).write_bytes(broken)
        with pytest.raises(sealed.SealError):
            with sealed.open_plain(tmp_path / name) as f:
                f.read()
    settings.DATA_KEY = "A" * 43 + "="  # another installation's key, the old one not kept
    with pytest.raises(sealed.SealError):
        sealed.open_plain(path)
    with pytest.raises(parsers.FileError, match="无法解密"):
        with parsers.readable(path):
            pass


# --- web imports: sealed while they run, gone when they end -------------------------------------------


def test_an_upload_is_sealed_0600_and_holds_no_id_number(world, tmp_path):
    number = an_id(1)
    path = storage.store(SimpleUploadedFile("居民.csv", residents_csv([(number, "甲", "H1")])))
    assert path.parent == storage.upload_dir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert files_holding(storage.upload_dir(), number) == []
    records = list(parsers.records_of(path, services.get_kind("residents").columns))
    assert [(line, r["id_number"], r["name"], r["household_code"]) for line, r in records] == [(2, number, "甲", "H1")]


def test_a_succeeded_import_leaves_no_file_and_no_number_on_disk(world, alice, client_for, media):
    household = a_household()
    numbers = [an_id(n) for n in (2, 3)]
    response = upload_as(client_for(alice), residents_csv([(numbers[0], "甲", household.code),
                                                           (numbers[1], "乙", household.code)]))
    job = ImportJob.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))
    assert job.status == ImportStatus.SUCCEEDED, job.message
    assert Resident.objects.filter(household=household).count() >= 2
    assert job.stored_path == ""
    assert list(storage.upload_dir().iterdir()) == []
    for number in numbers:
        assert files_holding(media, number) == []


def test_a_failed_import_leaves_only_its_report(world, alice, client_for, media):
    household = a_household()
    good, bad = an_id(4), an_id(5)[:-1] + ("0" if an_id(5)[-1] != "0" else "1")  # a wrong check digit
    response = upload_as(client_for(alice), residents_csv([(good, "甲", household.code), (bad, "乙", household.code)]))
    job = ImportJob.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))
    assert job.status == ImportStatus.FAILED and job.invalid == 1
    assert [e["line"] for e in job.errors] == [3]
    assert list(storage.upload_dir().iterdir()) == []
    for number in (good, bad):
        assert files_holding(media, number) == []
        assert number not in str(job.errors) and number not in job.message


def test_a_file_that_is_no_table_fails_and_is_removed(world, alice, client_for, media):
    response = upload_as(client_for(alice), b"PK\x03\x04" + an_id(6).encode() + b"\x00" * 40, name="x.xlsx")
    job = ImportJob.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))
    assert job.status == ImportStatus.FAILED
    assert list(storage.upload_dir().iterdir()) == []


def test_an_xlsx_upload_is_read_in_the_child_and_its_csv_is_sealed_too(world, alice, client_for, media, tmp_path):
    from openpyxl import Workbook

    household = a_household()
    number = an_id(7)
    wb = Workbook()
    wb.active.append(["身份证号", "姓名", "户编码"])
    wb.active.append([number, "丙", household.code])
    buf = io.BytesIO()
    wb.save(buf)
    path = storage.store(SimpleUploadedFile("居民.xlsx", buf.getvalue()))
    with parsers.readable(path) as (csv_path, encoding):
        assert sealed.is_sealed(csv_path) and stat.S_IMODE(csv_path.stat().st_mode) == 0o600
        assert number.encode() not in csv_path.read_bytes()
        with sealed.open_text(csv_path, encoding) as f:
            assert number in f.read()
    assert not csv_path.exists() and not csv_path.parent.exists()
    response = upload_as(client_for(alice), buf.getvalue(), name="居民.xlsx")
    job = ImportJob.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))
    assert job.status == ImportStatus.SUCCEEDED and job.created == 1, job.message
    assert files_holding(media, number) == []


def test_a_killed_import_is_failed_and_its_upload_removed_by_the_recovery(world, alice, media):
    from test_import_interrupted import dead_runner

    number = an_id(8)
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    for recover in (lambda job: services.fail_interrupted(job), lambda job: services.fail_interrupted_jobs()):
        path = storage.store(SimpleUploadedFile("居民.csv", residents_csv([(number, "丁", "H")])))
        job = services.create_job(kind="residents", filename="居民.csv", actor=alice, scope=community,
                                  stored_path=str(path))
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, runner=dead_runner())
        job.refresh_from_db()
        assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert recover(job)
        job.refresh_from_db()
        assert job.status == ImportStatus.FAILED and job.stored_path == ""
        assert not path.exists() and files_holding(media, number) == []


def test_a_job_refused_before_it_runs_removes_its_upload(world, alice, media):
    from wuyiqu.imports.tasks import run_import_job

    path = storage.store(SimpleUploadedFile("居民.csv", residents_csv([(an_id(9), "戊", "H")])))
    job = services.create_job(kind="residents", filename="居民.csv", actor=None, scope=None, stored_path=str(path))
    run_import_job.call(job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and not path.exists()


def test_a_stored_path_outside_the_upload_folder_is_never_deleted(world, tmp_path):
    elsewhere = tmp_path / "operator.csv"
    elsewhere.write_bytes(residents_csv([(an_id(10), "己", "H")]))
    job = services.create_job(kind="residents", filename="operator.csv", stored_path=str(elsewhere))
    storage.discard(job)
    assert elsewhere.exists() and job.stored_path == ""


def test_purge_uploads_removes_what_earlier_versions_left_and_seals_a_waiting_job(world, alice, media):
    folder = storage.upload_dir()
    folder.mkdir(parents=True)
    old_number, waiting_number = an_id(11), an_id(12)
    left = folder / "0123-old.csv"  # the plaintext upload of a job that ended long ago
    left.write_bytes(residents_csv([(old_number, "庚", "H")]))
    old_job = services.create_job(kind="residents", filename="old.csv", stored_path=str(left))
    ImportJob.objects.filter(pk=old_job.pk).update(status=ImportStatus.SUCCEEDED)
    stray = folder / "4567-nobody.csv"
    stray.write_bytes(b"x")
    waiting = folder / "89ab-waiting.csv"
    household = a_household()
    waiting.write_bytes(residents_csv([(waiting_number, "辛", household.code)]))
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    job = services.create_job(kind="residents", filename="waiting.csv", actor=alice, scope=community,
                              stored_path=str(waiting))
    out = io.StringIO()
    call_command("seal-uploads", stdout=out)
    assert "2" in out.getvalue() and "1" in out.getvalue()
    assert not left.exists() and not stray.exists()
    assert sealed.is_sealed(waiting) and stat.S_IMODE(waiting.stat().st_mode) == 0o600
    assert files_holding(media, old_number) == [] and files_holding(media, waiting_number) == []
    old_job.refresh_from_db()
    assert old_job.stored_path == ""
    from wuyiqu.imports.tasks import run_import_job

    run_import_job.call(job.pk)  # the sealed file of the waiting job still imports
    job.refresh_from_db()
    assert job.status == ImportStatus.SUCCEEDED and job.created == 1, job.message
    assert not waiting.exists()


# --- previews nobody confirms: ended on schedule, their uploads deleted (issue 17) ------------------------


def _preview(client, number: str, name: str = "居民.csv") -> ImportJob:
    job = job_of(client.post(f"/units/{WENLONG_COMMUNITY}/import/", {
        "kind": "residents", "file": SimpleUploadedFile(name, residents_csv([(number, "丁", a_household().code)]))}))
    assert job.status == ImportStatus.PREVIEWED and Path(job.stored_path).exists(), job.message
    return job


def _left_for(job: ImportJob, hours: float, now) -> None:
    ImportJob.objects.filter(pk=job.pk).update(finished_at=now - services.dt.timedelta(hours=hours))


EXPIRED = "预览后24小时内未确认导入，已过期，上传的文件已删除；请重新上传"


def test_a_preview_left_a_day_is_ended_and_its_upload_deleted(world, alice, client_for, media, now):
    from wuyiqu.audit.models import AuditEvent

    client = client_for(alice)
    old, recent = _preview(client, an_id(21)), _preview(client, an_id(22))
    _left_for(old, 24.1, now)
    _left_for(recent, 23.9, now)
    assert services.expire_previews(now) == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.status, old.message, old.stored_path) == (ImportStatus.FAILED, EXPIRED, "")
    assert files_holding(media, an_id(21)) == [] and files_holding(media, an_id(22)) == []  # sealed, then gone
    assert recent.status == ImportStatus.PREVIEWED and Path(recent.stored_path).exists()
    assert AuditEvent.objects.filter(action="imports.run", target_id=str(old.pk), detail__status="failed").count() == 1
    assert services.expire_previews(now) == 0  # once
    refused = client.post(f"/imports/{old.pk}/confirm/", {"action": "confirm"})
    assert refused.status_code == 409 and "上传的文件已删除（预览已过期或已结束），请重新上传" in refused.content.decode()


def test_the_workers_schedule_expires_previews_every_minute(world, alice, client_for, media, now, monkeypatch):
    import threading

    from wuyiqu.ops import schedule
    from wuyiqu.ops.management.commands import worker

    job = _preview(client_for(alice), an_id(23))
    path = Path(job.stored_path)
    _left_for(job, 25, now)
    monkeypatch.setattr(schedule, "enqueue_due", lambda: [])  # not today's supervision: only the housekeeping
    monkeypatch.setattr(worker.connections, "close_all", lambda: None)  # the test's transaction stays open
    stop = threading.Event()
    stop.set()  # one round of the loop
    worker._schedule_loop(stop, 60)
    job.refresh_from_db()
    assert (job.status, job.message) == (ImportStatus.FAILED, EXPIRED) and not path.exists()


def test_a_new_upload_ends_the_previews_left_a_day_without_any_worker(world, alice, client_for, media, now):
    client = client_for(alice)
    old = _preview(client, an_id(24))
    path = Path(old.stored_path)
    _left_for(old, 30, now)
    _preview(client, an_id(25), "十二月.csv")  # demo and tests: no worker, tasks run where they are enqueued
    old.refresh_from_db()
    assert (old.status, old.message) == (ImportStatus.FAILED, EXPIRED) and not path.exists()
    assert [p.name.endswith("十二月.csv") for p in (media / "imports").iterdir()] == [True]
