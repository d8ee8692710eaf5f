"""Running on Citus (docs/scaling.md, "Running on Citus"): which tables are distributed by district,
which are reference tables, which stay on the coordinator, and ``distribute()`` that makes it so on a
database migrated as usual (``wuyiqu migrate`` then ``wuyiqu citus distribute``).

- **Distributed by ``district_code``, co-located** (``DISTRIBUTED``): the tables that carry the
  district in the row and in every primary and unique key (their migrations add it, on every
  database): the stored evaluations and the nucleic-acid results — the latter partitioned by week,
  which Citus keeps: the parent and every partition (the DEFAULT one, and each week
  ``nat_import.ensure_nat_partitions`` attaches later) are distributed, each sharded by district —,
  the inspections and surveys, and the registry with the health facts: households, residents, their
  verifications, past spells and ledger entries, cases, measures and their changes, held facts and
  risk zones (their foreign keys composite, ``(district_code, x_id)``). A district's rows of all of
  them live on one node, and a statement that names the district is routed to that node alone.
- **Distributed by another key** (``DISTRIBUTED_BY_KEY``): the city-wide resident directory, by the
  number's hash, co-located with no other table (``units.directory``).
- **Reference tables** (``REFERENCE``): small, shared, read by every district's queries — the unit
  tree, the users (a user's scope is a unit), the policy profiles and their activations. Copied to
  every node; a distributed table may keep its foreign keys to them.
- **On the coordinator** (everything else): Citus makes the tables that reference a reference table
  Citus-managed local tables (their foreign keys are kept); the others are plain tables of the
  coordinator. Queries that join them with distributed tables are planned by Citus (the local side or
  the distributed side is pulled through the coordinator). docs/scaling.md says which of them are to
  be distributed next and what each needs.

Idempotent: a table already in Citus's metadata is left as it is. On plain PostgreSQL (no citus
extension) ``distribute()`` refuses; SQLite has nothing of it.
"""

from __future__ import annotations

from django.db import connection, transaction

DISTRIBUTION_COLUMN = "district_code"
# The first is the co-location group's anchor: each other one is created with colocate_with => it.
# Parents before the tables whose (composite) foreign keys point at them: households, then residents, …
DISTRIBUTED = ["standards_evaluation", "health_natresult", "inspections_inspection", "inspections_survey",
               "inspections_incident", "inspections_opinionreturn",
               "units_household", "units_resident", "units_householdverification", "units_pastresidence",
               "units_specialpopulationentry", "health_positivecase", "health_measure", "health_measurechange",
               "health_heldfacts", "health_riskzone",
               "applications_application", "applications_reviewstep", "applications_attachment",
               "applications_cosignature", "applications_signatureattempt",
               "certification_title", "supervision_warning", "supervision_titleevent"]
# Distributed by another column, each in a co-location group of its own: the city-wide resident
# directory by the number's hash (a number's entry on one shard, ``units.directory``).
DISTRIBUTED_BY_KEY = {"units_residentdirectory": "id_hash"}
# citus.multi_shard_modify_mode for the application's sessions (``distribute``).
SHARD_MODE = "sequential"
# Order matters: a reference table's foreign keys must point at tables already reference tables.
REFERENCE = ["units_unit", "accounts_user", "standards_policyprofile", "standards_policyactivation"]


class CitusError(Exception):
    pass


def citus_version() -> str | None:
    """The citus extension's version in this database, or None (SQLite, or PostgreSQL without it)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cur:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'citus'")
        row = cur.fetchone()
    return row[0] if row else None


def is_distributed(table: str) -> bool:
    """Whether ``table`` is distributed by Citus in this database (False on SQLite and plain
    PostgreSQL). Two catalogue reads; for the few statements that must be shaped differently on a
    distributed table (nat_import's existence check)."""
    if not citus_version():
        return False
    with connection.cursor() as cur:
        cur.execute("SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = %s::regclass "
                    "AND partmethod = 'h')", [table])
        return cur.fetchone()[0]


def tables() -> dict[str, str]:
    """{table: 'distributed' | 'reference' | 'local'} of the tables in Citus's metadata."""
    if not citus_version():
        return {}
    with connection.cursor() as cur:
        cur.execute("SELECT table_name::text, citus_table_type FROM citus_tables")
        return dict(cur.fetchall())


def distribute(*, log=print) -> dict[str, str]:
    """Make the reference tables, then the distributed ones (co-located), unless already done.
    Returns ``tables()`` afterwards."""
    if not citus_version():
        raise CitusError("此数据库没有 citus 扩展：请先在协调节点和各工作节点执行 CREATE EXTENSION citus，并添加工作节点。")
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND groupid <> 0")
        if cur.fetchone()[0] == 0:
            raise CitusError("协调节点上没有工作节点（citus_add_node）。")
    done = tables()
    with connection.cursor() as cur:
        for table in REFERENCE:
            if table in done:
                continue
            log(f"reference table: {table}")
            cur.execute("SELECT create_reference_table(%s)", [table])
        anchor = DISTRIBUTED[0]
        todo = [t for t in DISTRIBUTED if done.get(t) != "distributed"]
        # Citus distributes no table that a table of the coordinator points at, nor one that points at
        # a table of the coordinator — and once the unit tree is a reference table, Citus has made the
        # tables still to distribute local tables of its metadata: the (composite) foreign keys among
        # them (residents → households, …) are dropped for the while and made again, as they were, once
        # all of them are distributed. One transaction: the keys dropped are made again, or nothing
        # changed (sequential mode: Citus distributes a table with keys to a reference table in a
        # transaction only so).
        keys = []
        if todo:
            cur.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s) "
                        "AND confrelid::regclass::text = ANY(%s) ORDER BY 1, 2", [todo, DISTRIBUTED])
            keys = cur.fetchall()
            # A key from a table to distribute to one that stays on the coordinator (neither distributed
            # nor a reference table) cannot exist on Citus at all: dropped, and said so. Plain
            # PostgreSQL keeps it.
            cur.execute("SELECT conrelid::regclass::text, conname, confrelid::regclass::text FROM pg_constraint "
                        "WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) "
                        "AND NOT confrelid = ANY(%s::regclass[]) ORDER BY 1, 2", [todo, DISTRIBUTED + REFERENCE])
            for table, name, referenced in cur.fetchall():
                log(f"foreign key dropped: {table}.{name} -> {referenced} (stays on the coordinator)")
                cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
        with transaction.atomic():
            cur.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
            for table, name, _definition in keys:
                cur.execute(f"ALTER TABLE {connection.ops.quote_name(table)} DROP CONSTRAINT "
                            f"{connection.ops.quote_name(name)}")
            for table in todo:
                log(f"distributed table: {table} by {DISTRIBUTION_COLUMN}")
                cur.execute("SELECT create_distributed_table(%s, %s, colocate_with => %s)",
                            [table, DISTRIBUTION_COLUMN, "default" if table == anchor else anchor])
            for table, name, definition in keys:
                cur.execute(f"ALTER TABLE {connection.ops.quote_name(table)} ADD CONSTRAINT "
                            f"{connection.ops.quote_name(name)} {definition}")
            for table, column in DISTRIBUTED_BY_KEY.items():
                if done.get(table) != "distributed":
                    log(f"distributed table: {table} by {column} (co-located with no other table)")
                    cur.execute("SELECT create_distributed_table(%s, %s, colocate_with => 'none')", [table, column])
        # Every session of the application's database: multi-shard statements over one connection per
        # node. A transaction that read a distributed table on several shards in parallel (the
        # participation of the people who moved away, read on every shard) may not then modify a
        # coordinator's table that other tables reference (titles, warnings: "cannot modify table …
        # because there was a parallel operation on a distributed table"); sequential mode is Citus's
        # way to keep such transactions, and a district's own statements go to one shard anyway.
        cur.execute("SELECT current_database()")
        database = connection.ops.quote_name(cur.fetchone()[0])
        cur.execute(f"ALTER DATABASE {database} SET citus.multi_shard_modify_mode TO '{SHARD_MODE}'")
    return tables()
