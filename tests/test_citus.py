"""wuyiqu on a Citus cluster (docs/scaling.md, "Running on Citus"): a coordinator and two workers of
Debian's PostgreSQL 15 in temporary data directories on free ports (scripts/citus_cluster.py; Citus
built by ../shared/vendor/citus/build.sh when it is not installed), the usual migrations, then
`wuyiqu citus distribute`. The standards, supervision and applications worlds (tests/citus_worlds.py)
give the same verdicts, titles, warnings and stored evaluations there as on plain PostgreSQL — a
database of the same server without the citus extension — and a worker stopped in the middle of a
district's daily run leaves that district's day unwritten and the day runs again.

Opt-in: marked ``citus`` and deselected unless WUYIQU_CITUS=1 (tests/conftest.py):

    WUYIQU_CITUS=1 .venv/bin/pytest -q -p no:cacheprovider tests/test_citus.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))

import citus_cluster  # noqa: E402

pytestmark = pytest.mark.citus
BUILD_TIMEOUT = float(os.environ.get("WUYIQU_CITUS_BUILD_TIMEOUT", "1800"))


def run(args: list[str], url: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "wuyiqu.settings_test",
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=HERE.parent)
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done


@pytest.fixture(scope="module")
def cluster():
    citus_cluster.build(timeout=BUILD_TIMEOUT)
    base = Path(tempfile.mkdtemp(prefix="wuyiqu-citus-"))
    c = citus_cluster.Cluster(base, workers=2, shard_count=8)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def databases(cluster):
    """{"citus": URL, "plain": URL}: both migrated; the first distributed."""
    citus = cluster.create_database("wuyiqu_citus")
    cluster.sql(cluster.coordinator, "postgres", "DROP DATABASE IF EXISTS wuyiqu_plain")
    cluster.sql(cluster.coordinator, "postgres", "CREATE DATABASE wuyiqu_plain")
    plain = cluster.url("wuyiqu_plain")
    for url in (plain, citus):
        run(["-m", "django", "migrate", "-v0"], url)
    return {"citus": citus, "plain": plain}


def test_distribute_makes_district_tables_distributed_and_shared_ones_reference(cluster, databases):
    out = run(["-m", "wuyiqu", "citus", "distribute"], databases["citus"]).stdout
    assert "distributed table: standards_evaluation by district_code" in out
    status = dict(line.split("\t")[::-1] for line in
                  run(["-m", "wuyiqu", "citus", "status"], databases["citus"]).stdout.splitlines())
    assert status["standards_evaluation"] == "distributed"
    for table in ("units_unit", "accounts_user", "standards_policyprofile", "standards_policyactivation"):
        assert status[table] == "reference"
    # Tables with a foreign key to a reference table are Citus-managed tables of the coordinator: the
    # transfer requests (their two households may lie in two districts) stay there, without keys to
    # the distributed registry.
    assert status["units_transferrequest"] == "local"
    # The shards are spread over both workers, co-located, with the distribution column in the keys.
    placements = cluster.sql(cluster.coordinator, "wuyiqu_citus",
                             "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = "
                             "'standards_evaluation'::regclass")
    assert placements == "2"
    pkey = cluster.sql(cluster.coordinator, "wuyiqu_citus",
                       "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'standards_evaluation_pkey'")
    assert pkey == "PRIMARY KEY (district_code, id)"
    # The nucleic-acid results: partitioned by week and distributed by district, every partition
    # with them, all in the evaluations' co-location group, the district leading the key.
    assert "distributed table: health_natresult by district_code" in out
    assert status["health_natresult"] == "distributed"
    sql = lambda q: cluster.sql(cluster.coordinator, "wuyiqu_citus", q)  # noqa: E731
    assert sql("SELECT relkind FROM pg_class WHERE relname = 'health_natresult'") == "p"
    assert sql("SELECT count(*) FROM pg_inherits WHERE inhparent = 'health_natresult'::regclass") != "0"
    assert sql("SELECT count(*) FROM pg_inherits i LEFT JOIN pg_dist_partition d ON d.logicalrelid = i.inhrelid "
               "WHERE i.inhparent = 'health_natresult'::regclass AND d.logicalrelid IS NULL") == "0"
    # The unit-keyed facts and outcomes distributed so far, their keys (district_code, id), all co-located.
    keyed = ("inspections_inspection", "inspections_survey", "inspections_incident", "inspections_opinionreturn",
             "applications_application", "applications_reviewstep", "applications_attachment",
             "applications_cosignature", "applications_signatureattempt", "certification_title",
             "supervision_warning", "supervision_titleevent")
    for table in keyed:
        assert status[table] == "distributed", table
        assert sql(f"SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = '{table}_pkey'") == \
            "PRIMARY KEY (district_code, id)"
    assert sql("SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE logicalrelid IN "
               "('standards_evaluation'::regclass, 'health_natresult'::regclass, 'health_natresult_default'::regclass, "
               + ", ".join(f"'{t}'::regclass" for t in keyed) + ")") == "1"
    # The city-wide resident directory: distributed by the number's hash, in a co-location group of its own.
    assert status["units_residentdirectory"] == "distributed"
    assert sql("SELECT column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition "
               "WHERE logicalrelid = 'units_residentdirectory'::regclass") == "id_hash"
    assert sql("SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE logicalrelid IN "
               "('units_residentdirectory'::regclass, 'units_resident'::regclass)") == "2"
    # Between two distributed tables, only composite foreign keys on the district (Citus refuses others).
    fkeys = {(child, parent): sql(f"SELECT string_agg(pg_get_constraintdef(oid), '; ') FROM pg_constraint "
                                  f"WHERE contype = 'f' AND conrelid = '{child}'::regclass "
                                  f"AND confrelid = '{parent}'::regclass")
             for child, parent in [("inspections_opinionreturn", "inspections_incident"),
                                   ("applications_cosignature", "applications_application"),
                                   ("applications_reviewstep", "applications_application"),
                                   ("applications_attachment", "applications_application"),
                                   ("applications_signatureattempt", "applications_application"),
                                   ("certification_title", "applications_application"),
                                   ("supervision_warning", "certification_title"),
                                   ("supervision_titleevent", "certification_title"),
                                   ("supervision_titleevent", "supervision_warning")]}
    composite = "FOREIGN KEY (district_code, {0}_id) REFERENCES {1}(district_code, id){2} DEFERRABLE INITIALLY DEFERRED"
    cascade = " ON DELETE CASCADE"
    assert fkeys == {
        ("inspections_opinionreturn", "inspections_incident"): composite.format("incident", "inspections_incident",
                                                                                cascade),
        **{(child, "applications_application"): composite.format("application", "applications_application", cascade)
           for child in ("applications_cosignature", "applications_reviewstep", "applications_attachment",
                         "applications_signatureattempt")},
        ("certification_title", "applications_application"): composite.format("application",
                                                                              "applications_application", ""),
        ("supervision_warning", "certification_title"): composite.format("title", "certification_title", ""),
        ("supervision_titleevent", "certification_title"): composite.format("title", "certification_title", ""),
        ("supervision_titleevent", "supervision_warning"): composite.format("warning", "supervision_warning", ""),
    }
    # The co-signatures' and attempts' composite keys to their households (applications 0004) stay: the
    # households are distributed too (units 0008/0009), co-located; nothing is left to drop.
    assert "foreign key dropped" not in out
    for child in ("applications_cosignature", "applications_signatureattempt"):
        assert sql(f"SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = '{child}'::regclass "
                   "AND confrelid = 'units_household'::regclass AND pg_get_constraintdef(oid) LIKE "
                   "'FOREIGN KEY (district_code, household_id) REFERENCES units_household(district_code, id)%'") == "1", child
    assert sql("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'health_natresult_pkey'") == \
        "PRIMARY KEY (id_hash, sampled_on, sampled_at, district_code)"
    # The registry and the health facts (units 0008/0009, health 0006): distributed, co-located with the
    # evaluations, keyed (district_code, id), their foreign keys between them composite.
    registry = ("units_household", "units_resident", "units_householdverification", "units_pastresidence",
                "units_specialpopulationentry", "health_positivecase", "health_measure", "health_measurechange",
                "health_heldfacts", "health_riskzone")
    for table in registry:
        assert f"distributed table: {table} by district_code" in out, table
        assert status[table] == "distributed", table
        assert sql(f"SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = '{table}_pkey'") == \
            "PRIMARY KEY (district_code, id)", table
    assert sql("SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE logicalrelid IN ("
               + ", ".join(f"'{t}'::regclass" for t in ("standards_evaluation", *registry)) + ")") == "1"
    composite = {
        "units_resident_household_id_fk": "(district_code, household_id) REFERENCES units_household(district_code, id)",
        "units_householdverification_household_id_fk":
            "(district_code, household_id) REFERENCES units_household(district_code, id) ON DELETE CASCADE",
        "units_pastresidence_household_id_fk":
            "(district_code, household_id) REFERENCES units_household(district_code, id)",
        "units_specialpopulationentry_resident_id_fk":
            "(district_code, resident_id) REFERENCES units_resident(district_code, id) ON DELETE CASCADE",
        "health_positivecase_resident_id_fk": "(district_code, resident_id) REFERENCES units_resident(district_code, id)",
        "health_measure_resident_id_fk": "(district_code, resident_id) REFERENCES units_resident(district_code, id)",
        "health_heldfacts_resident_id_fk":
            "(district_code, resident_id) REFERENCES units_resident(district_code, id) ON DELETE CASCADE",
        "health_measurechange_measure_id_fk":
            "(district_code, measure_id) REFERENCES health_measure(district_code, id) ON DELETE CASCADE",
    }
    for name, definition in composite.items():
        assert sql(f"SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = '{name}'") == \
            f"FOREIGN KEY {definition} DEFERRABLE INITIALLY DEFERRED", name
    # A past spell's resident may live in another district, a transfer request's households lie in two:
    # no database key from either to the residents (nor from the requests to the households).
    assert sql("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid IN "
               "('units_pastresidence'::regclass, 'units_transferrequest'::regclass) "
               "AND confrelid IN ('units_resident'::regclass, 'units_household'::regclass)") == "1"  # the spell's household
    # Unique keys with the district (Citus refuses any other on a distributed table).
    assert sql("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'resident_id_hash_unique'") == \
        "UNIQUE (district_code, id_hash)"
    # The application's sessions run multi-shard statements over one connection per node (ops.citus).
    assert sql("SHOW citus.multi_shard_modify_mode") == "sequential"
    # Running it again changes nothing.
    assert "distributed table" not in run(["-m", "wuyiqu", "citus", "distribute"], databases["citus"]).stdout


def test_the_worlds_give_the_same_verdicts_titles_and_warnings_as_plain_postgresql(databases, tmp_path):
    results = {}
    for name, url in databases.items():
        run([str(HERE / "citus_worlds.py"), "worlds", str(tmp_path / f"{name}.json")], url)
        results[name] = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
    plain = results["plain"]
    # The worlds did something worth comparing.
    assert plain["supervision"]["runs"][-1][0] == ["T1", "T1C", "T1C-B9", "T1C-C1", "T1C-C1-B2"]
    assert len(plain["standards"]["good"]["stored"]) == 8
    assert [a[0] for a in plain["applications"]["applications"].values()] == ["named", "named"]
    assert {e[3] for e in plain["standards"]["good"]["stored"].values()} == {"T"}  # district_code
    # The results world went through every write path (tests/citus_worlds.py): an unscoped import (3
    # new, a stranger unmatched), one from S's community (a stranger, and T's 甲 registered outside
    # it: both unmatched, 甲's held), the same file again (nothing new), 丙 and 丁 registered
    # (linked), 甲 moved to S — each result kept in its resident's district, else its submitter's.
    res = plain["results"]
    assert (res["unscoped"], res["scoped"], res["again"]) == ([3, 0, 1], [2, 0, 2], [0, 3, 1])
    assert res["linked"] == [1, 1] and res["held"] == [["甲", 1]]
    assert {(name, at[11:16]): district for district, name, _on, at, _r in res["rows"] if name != "张三"} == {
        ("甲", "02:00"): "S", ("", "03:00"): "S", ("乙", "02:00"): "S", ("丙", "02:00"): "T", ("丁", "03:00"): "S"}
    assert res["testing_S1C"] == [5, 5, []]  # 甲 among S's tested residents, read on S's shard
    # The city-wide directory: each number once, 甲's entry moved with 甲; a twin in another district refused.
    assert res["directory"] == [["丁", "S"], ["丙", "T"], ["乙", "S"], ["甲", "S"]]
    assert res["twin"] == "refused"
    # The negative opinion on T1V-G1: failing its village while the handling is sent back, not once accepted
    # again; the return kept in the incident's district.
    opinion = plain["supervision"]["opinion"]
    assert "no_negative_opinion" in opinion["returned"]["T1V-G1"][2]
    assert "no_negative_opinion" not in opinion["accepted"]["T1V-G1"][2]
    assert [r[:2] + r[4:] for r in opinion["returns"]] == [["T1V-G1", "T", "回应不充分"]]
    # 甲's move to S took along, deleted in T and inserted in S with the same ids, the resident row, the
    # ledger entry, the case, the measure and its change, the held facts; the past spell stays in T.
    assert res["moved_counts"] == {"Resident": 1, "SpecialPopulationEntry": 1, "PositiveCase": 1, "Measure": 1,
                                   "MeasureChange": 1, "HeldFacts": 1}
    assert all(v == [True, True] for v in res["moved"].values()), res["moved"]
    assert res["past_spell"] == [["T", "T1C-C1-B1-101"]]
    assert res["jia"][0] == "S1C-B1-102" and res["jia"][1][0][0] == "S" and res["jia"][2][0][0] == "S"
    for world in ("standards", "supervision", "applications", "results"):
        assert results["citus"][world] == plain[world], world


def test_a_worker_stopped_in_a_districts_daily_run_leaves_its_day_unwritten_and_rerunnable(cluster, databases,
                                                                                         tmp_path):
    # The worker that holds district T's shard of the stored evaluations.
    port = int(cluster.sql(cluster.coordinator, "wuyiqu_citus",
                           "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
                           "WHERE p.shardid = get_shard_id_for_distribution_column('standards_evaluation', 'T')"))
    worker = next(w for w in cluster.workers if w.port == port)
    run([str(HERE / "citus_worlds.py"), "daily", str(tmp_path / "plain.json")], databases["plain"])
    run([str(HERE / "citus_worlds.py"), "daily", str(tmp_path / "citus.json"), "--stop-worker", str(worker.datadir)],
        databases["citus"])
    plain = json.loads((tmp_path / "plain.json").read_text(encoding="utf-8"))
    citus = json.loads((tmp_path / "citus.json").read_text(encoding="utf-8"))
    assert worker.running()
    assert citus["worker_port_of_T"] == port
    assert citus["interrupted"] != "no error"  # the district's transaction failed
    # Nothing of district T's day was written: no stored evaluation, no withdrawal, no closed warning,
    # no title event — although the withdrawals and warnings were written before the worker stopped.
    assert citus["after_fault"]["stored_T"] == []
    assert citus["after_fault"]["withdrawn_T"] == []
    assert citus["after_fault"]["closed_warnings"] == 0 and citus["after_fault"]["title_events"] == 0
    # District S ran before T (by code) in its own transaction: its day stays written.
    assert citus["after_fault"]["stored_S"] == ["S1 2022-12-01", "S1C 2022-12-01", "S1C-B1 2022-12-01"]
    # Running the day again does T's day, and the end is what one uninterrupted run gives.
    assert plain["rerun"][0] == ["T1", "T1C", "T1C-B9"]
    assert citus["rerun"][:2] == plain["rerun"][:2]
    assert (plain["rerun"][2], citus["rerun"][2]) == (11, 8)  # S's 3 rows were stored before the fault
    for key in ("titles", "warnings", "stored"):
        assert citus[key] == plain[key], key
