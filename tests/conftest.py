"""Shared worlds and people for the tests.

The world: the real 綦江区 divisions, plus a small generated world below three committees of
文龙街道 — 文龙社区 (alice's), 天桥社区 (bob's: a sibling of alice's) and 红旗村 (a village).
People, each scoped to one unit: alice (文龙社区 staff), bob (天桥社区 staff), carol (文龙街道 street
staff), dave (building head of one building of 文龙社区), erin (command, district), root (admin).
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.units.actions import do_load_divisions, do_load_generated_world
from wuyiqu.units.generator import generate_world
from wuyiqu.units.models import Unit, UnitKind

WENLONG_STREET = "500110002"
WENLONG_COMMUNITY = "500110002015"
TIANQIAO_COMMUNITY = "500110002014"
HONGQI_VILLAGE = "500110002208"
PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _empty_cache():
    """Every test starts with an empty cache (rate limits and counters kept there, e.g. the API's
    count of refused tokens, must not carry over from the test before)."""
    from django.core.cache import cache

    cache.clear()


# --- the clock --------------------------------------------------------------------------------------
# The whole suite can run at a frozen moment: `--now 2028-02-29T00:00:30+08:00` (or the environment
# variable TEST_NOW, which the processes the tests start inherit: wuyiqu.settings starts the same
# clock in them when WUYIQU_ENV is test). The clock ticks from that moment, so timeouts still work.
# `.ci/run` runs the SQLite pass at one such moment and the tests marked clock again at another.
_CLOCK = None


def pytest_addoption(parser):
    parser.addoption("--now", default=None, metavar="ISO",
                     help="run at this moment (ISO 8601 with an offset; the clock ticks from it); "
                          "the environment variable TEST_NOW does the same")


def pytest_configure(config):
    global _CLOCK
    raw = config.getoption("--now") or os.environ.get("TEST_NOW")
    if not raw:
        return
    from wuyiqu.lib.testclock import start_clock

    _CLOCK = start_clock(raw)
    os.environ["TEST_NOW"] = raw  # inherited by the `wuyiqu` processes the tests start


# Modules that hold no date and test nothing that reads the clock (processes' settings, files, keys,
# the API's schema): left out of the frozen-clock pass of .ci/run (`-m clock`). Every other
# test, a new one included, is marked `clock` and runs there.
CLOCK_FREE = {
    "test_api_schemathesis.py", "test_api_schemathesis_live.py", "test_deploy_files.py", "test_dev_script.py",
    "test_fuzz_parsers.py", "test_lib_crypto.py", "test_reliability_csp.py", "test_reliability_hostile_imports.py",
    "test_serve.py", "test_settings.py", "test_shared_cache.py",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name not in CLOCK_FREE:
            item.add_marker(pytest.mark.clock)
    # The Citus cluster's tests (tests/test_citus.py) build and start a cluster of their own: they run
    # only when asked for with WUYIQU_CITUS=1 (.ci/run does when Citus can be built in time).
    if os.environ.get("WUYIQU_CITUS") != "1":
        citus = [item for item in items if item.get_closest_marker("citus")]
        if citus:
            config.hook.pytest_deselected(items=citus)
            items[:] = [item for item in items if not item.get_closest_marker("citus")]
    # The walks of every role's pages in Chromium — the screen walk (tests/test_browser_screens.py: layout,
    # which no database changes) and the link crawl (tests/test_browser_crawler.py: the rendered pages'
    # links; tests/test_web_crawler.py crawls the same pages on both databases through the test client)
    # — run in the SQLite pass, and on PostgreSQL only when asked for (WUYIQU_SCREENS_ON_POSTGRES=1),
    # which keeps CI within its time (the two walks open some 1,000 pages in Chromium).
    if os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("WUYIQU_SCREENS_ON_POSTGRES") != "1":
        screens = [item for item in items if item.get_closest_marker("screens")]
        if screens:
            config.hook.pytest_deselected(items=screens)
            items[:] = [item for item in items if not item.get_closest_marker("screens")]


@pytest.fixture(scope="session", autouse=True)
def _on_the_citus_cluster(request):
    """Under scripts/citus_suite.py (WUYIQU_CITUS_SUITE=1) the suite must run on the distributed test
    database that script made, never on a plain one pytest-django would have created instead."""
    if os.environ.get("WUYIQU_CITUS_SUITE") != "1":
        return
    request.getfixturevalue("django_db_setup")
    from wuyiqu.ops.citus import DISTRIBUTED, tables

    with request.getfixturevalue("django_db_blocker").unblock():
        kinds = tables()
    if any(kinds.get(table) != "distributed" for table in DISTRIBUTED):
        pytest.exit(f"WUYIQU_CITUS_SUITE=1 but the test database is not distributed: {kinds}", returncode=3)


def pytest_report_header(config):
    raw = os.environ.get("TEST_NOW")
    return f"clock: frozen at {raw} (ticking)" if raw else "clock: real time"


def pytest_unconfigure(config):
    global _CLOCK
    if _CLOCK is not None:
        _CLOCK.stop()
        _CLOCK = None


@pytest.fixture
def now():
    """The moment the test runs at (aware, Asia/Shanghai): the frozen one under --now / TEST_NOW.
    Tests that need "now" or "today" take it from here (or ``today``), never from the wall clock."""
    from django.utils import timezone

    return timezone.localtime()


@pytest.fixture
def today(now) -> dt.date:
    """The local date (Asia/Shanghai) of ``now``."""
    return now.date()


@pytest.fixture(autouse=True)
def default_language():
    """Each test starts and ends in the default language (zh-hans): a request made with the language
    cookie leaves its language active in the thread (Django does not reset it after the response),
    and reasons built afterwards outside a request would follow it."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture
def world(db):
    do_load_divisions()
    committees = list(
        Unit.objects.filter(code__in=[WENLONG_COMMUNITY, TIANQIAO_COMMUNITY, HONGQI_VILLAGE])
        .order_by("code").values_list("code", "name", "kind")
    )
    do_load_generated_world(world=generate_world(committees, residents=600, seed=7))
    return Unit.objects.get(code=WENLONG_STREET)


def _user(username, role, unit):
    return do_create_user(actor=None, username=username, password=PASSWORD, role=role, unit=unit,
                          display_name=username)


@pytest.fixture
def alice(world):
    return _user("alice", Role.COMMUNITY_STAFF, Unit.objects.get(code=WENLONG_COMMUNITY))


@pytest.fixture
def bob(world):
    return _user("bob", Role.COMMUNITY_STAFF, Unit.objects.get(code=TIANQIAO_COMMUNITY))


@pytest.fixture
def carol(world):
    return _user("carol", Role.STREET_STAFF, Unit.objects.get(code=WENLONG_STREET))


@pytest.fixture
def dave(world):
    building = Unit.objects.filter(path__startswith=f"/500110/{WENLONG_STREET}/{WENLONG_COMMUNITY}/",
                                   kind=UnitKind.BUILDING).order_by("code").first()
    return _user("dave", Role.BUILDING_HEAD, building)


@pytest.fixture
def erin(world):
    return _user("erin", Role.COMMAND, Unit.objects.get(code="500110"))


@pytest.fixture
def root(world):
    return _user("root", Role.ADMIN, None)


@pytest.fixture
def client_for(client):
    """Log a named person in: ``client_for(alice)`` returns the logged-in test client."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture(scope="session")
def seeded_file_db(tmp_path_factory):
    """A database on disk (a SQLite file, or a PostgreSQL database beside the test database) with a
    seeded world, for the tests that run `wuyiqu` as a process and kill it (tests/fault_tools.py).
    Tests copy it (``seeded_file_db.copy(tmp_path)``) and never change it."""
    from fault_tools import build_seed, drop_all

    path = tmp_path_factory.mktemp("seeded-file-db")
    db = build_seed(path)
    yield db
    db.drop()
    drop_all()
