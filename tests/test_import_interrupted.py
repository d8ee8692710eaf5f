"""An import whose process was killed (kill -9, a worker or machine restart) must not read as
running for ever: the job records its process ("host:pid:start"), and the job page and `wuyiqu
worker` at its start mark a running job whose process is gone as failed. An import writes in one
transaction (tests/test_faults_kill.py), so the message can say that nothing was written."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from wuyiqu.audit.models import AuditEvent
from wuyiqu.imports import services
from wuyiqu.imports.models import ImportJob, ImportStatus

pytestmark = pytest.mark.django_db


def dead_runner() -> str:
    """The runner string of a process that ran on this host and was killed."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        runner = f"{socket.gethostname()}:{proc.pid}:{services._process_start(proc.pid)}"
    finally:
        proc.kill()
        proc.wait()
    return runner


def running_job(runner: str, scope=None, actor=None) -> ImportJob:
    job = services.create_job(kind="residents", filename="r.csv", actor=actor, scope=scope)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, runner=runner)
    job.refresh_from_db()
    return job


def test_a_job_whose_process_was_killed_is_marked_failed_once_and_audited():
    job = running_job(dead_runner())
    assert services.runner_gone(job.runner)
    assert services.fail_interrupted(job) is True
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert job.message == "导入进程已中断，未导入任何数据；请重新导入"
    assert job.finished_at is not None
    event = AuditEvent.objects.get(action="imports.run", target_id=str(job.pk))
    assert event.detail["status"] == "failed"
    assert services.fail_interrupted(job) is False  # not running any more: nothing to do
    assert AuditEvent.objects.filter(action="imports.run").count() == 1


def test_a_live_process_another_host_or_a_reused_pid_are_told_apart():
    me = services.current_runner()
    host, pid, start = me.rsplit(":", 2)
    assert (host, int(pid)) == (socket.gethostname(), __import__("os").getpid()) and start
    assert not services.runner_gone(me)  # this very process: alive
    assert not services.runner_gone(f"elsewhere.example:{pid}:{start}")  # cannot be checked here: alive
    assert services.runner_gone(f"{host}:{pid}:{int(start) + 1}")  # the pid now belongs to a later process
    assert not services.runner_gone("garbage")
    live = running_job(me)
    assert services.fail_interrupted(live) is False
    live.refresh_from_db()
    assert live.status == ImportStatus.RUNNING


def test_the_job_page_shows_an_interrupted_import_as_failed(world, alice, client_for):
    from wuyiqu.units.models import Unit

    job = running_job(dead_runner(), scope=Unit.objects.get(code=alice.unit.code), actor=alice)
    page = client_for(alice).get(f"/imports/{job.pk}/")
    assert page.status_code == 200
    assert "导入进程已中断，未导入任何数据" in page.content.decode()
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED


def test_the_worker_marks_this_hosts_interrupted_jobs_at_its_start():
    gone, alive, elsewhere = dead_runner(), services.current_runner(), "elsewhere.example:1:1"
    jobs = [running_job(r) for r in (gone, alive, elsewhere)]
    assert services.fail_interrupted_jobs() == 1
    assert [ImportJob.objects.get(pk=j.pk).status for j in jobs] == [
        ImportStatus.FAILED, ImportStatus.RUNNING, ImportStatus.RUNNING]


def test_run_import_records_its_process(tmp_path):
    path = tmp_path / "units.csv"
    path.write_text("编码,名称,类型,上级编码\n", encoding="utf-8")
    job = services.run_import(kind="units", path=path)
    assert job.runner == services.current_runner()
