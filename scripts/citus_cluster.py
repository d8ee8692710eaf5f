"""A Citus cluster on this machine for the tests and the benchmark: a coordinator and N workers, each
an `initdb` data directory of Debian's PostgreSQL 15 in a temporary folder, on free ports of
127.0.0.1, with `shared_preload_libraries = 'citus'`. The PostgreSQL service on 5432 is never touched.

    python3 scripts/citus_cluster.py build            # ../shared/vendor/citus/build.sh, unless installed
    python3 scripts/citus_cluster.py start DIR        # prints the coordinator's port; Ctrl-C stops it

Importable (tests/test_citus.py, bench/citus_compare.py): ``Cluster(base).start()``, ``.create_database``,
``.url(db)``, ``.stop_worker(i)`` / ``.start_worker(i)`` (the fault test), ``.stop()``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_CONFIG = os.environ.get("PG_CONFIG", "/usr/bin/pg_config")


def build_script() -> Path:
    """build.sh of the vendored Citus: shared/ beside the repository (a worktree or CI's clone)."""
    for base in (ROOT.parent, ROOT.parent.parent, Path("/work")):
        candidate = base / "shared" / "vendor" / "citus" / "build.sh"
        if candidate.exists():
            return candidate
    return ROOT.parent / "shared" / "vendor" / "citus" / "build.sh"


def _pg_config(flag: str) -> str:
    return subprocess.run([PG_CONFIG, flag], check=True, capture_output=True, text=True).stdout.strip()


def pg_bindir() -> Path:
    return Path(_pg_config("--bindir"))


def citus_installed() -> bool:
    try:
        return (Path(_pg_config("--pkglibdir")) / "citus.so").exists()
    except (OSError, subprocess.CalledProcessError):
        return False


def build(timeout: float | None = None) -> None:
    """Install Citus into the PostgreSQL of pg_config with the vendored build.sh (root; a few minutes
    on 2 cores), unless it is there. Raises on failure or when ``timeout`` seconds pass."""
    if citus_installed():
        return
    script = build_script()
    if not script.exists():
        raise RuntimeError(f"Citus is not installed and {script} is missing")
    subprocess.run(["nice", "-n", "10", "bash", str(script)], check=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as the postgres account then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Node:
    def __init__(self, name: str, datadir: Path, port: int):
        self.name, self.datadir, self.port = name, datadir, port

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(_as_postgres([str(pg_bindir() / "pg_ctl"), "-D", str(self.datadir), *args]),
                              check=check, capture_output=True, text=True)

    def start(self) -> None:
        self.pg_ctl("-w", "-t", "60", "-l", str(self.datadir / "server.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-w", "-m", mode, "stop", check=False)

    def running(self) -> bool:
        return self.pg_ctl("status", check=False).returncode == 0


class Cluster:
    """A coordinator and ``workers`` workers under ``base`` (made and removed by the caller)."""

    def __init__(self, base: Path, workers: int = 2, *, shard_count: int = 8):
        self.base = Path(base)
        self.shard_count = shard_count
        self.coordinator = Node("coordinator", self.base / "coordinator", free_port())
        self.workers = [Node(f"worker{i + 1}", self.base / f"worker{i + 1}", free_port()) for i in range(workers)]

    @property
    def nodes(self) -> list[Node]:
        return [self.coordinator, *self.workers]

    def start(self) -> Cluster:
        if not citus_installed():
            raise RuntimeError("Citus is not installed (scripts/citus_cluster.py build)")
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the servers run as postgres: their folder is theirs (its parent must let them in)
            shutil.chown(self.base, "postgres", "postgres")
            self.base.chmod(0o700)
        for node in self.nodes:
            done = subprocess.run(_as_postgres([str(pg_bindir() / "initdb"), "-D", str(node.datadir), "-U", "postgres",
                                                "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"]),
                                  capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"initdb {node.datadir}: {done.stdout}{done.stderr}")
            with open(node.datadir / "postgresql.conf", "a") as conf:
                conf.write(
                    f"\nport = {node.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{node.datadir}'\n"
                    "shared_preload_libraries = 'citus'\nfsync = off\nsynchronous_commit = off\n"
                    "full_page_writes = off\nmax_connections = 200\nshared_buffers = 128MB\n"
                    f"citus.shard_count = {self.shard_count}\nmax_prepared_transactions = 100\n"
                    "timezone = 'UTC'\n"
                )
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop("immediate")

    def stop_worker(self, index: int) -> None:
        self.workers[index].stop("immediate")

    def start_worker(self, index: int) -> None:
        self.workers[index].start()

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.coordinator.port}/{db}"

    def sql(self, node: Node, db: str, statement: str) -> str:
        out = subprocess.run([str(pg_bindir() / "psql"), "-h", "127.0.0.1", "-p", str(node.port), "-U", "postgres",
                              "-d", db, "-v", "ON_ERROR_STOP=1", "-qtAc", statement],
                             check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        return out.stdout.strip()

    def create_database(self, db: str) -> str:
        """``db`` on every node with the citus extension, the workers added to the coordinator's.
        Returns the coordinator's URL for it."""
        for node in self.nodes:
            self.sql(node, "postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            self.sql(node, "postgres", f"CREATE DATABASE {db}")
            self.sql(node, db, "CREATE EXTENSION citus")
        self.sql(self.coordinator, db, f"SELECT citus_set_coordinator_host('127.0.0.1', {self.coordinator.port})")
        for worker in self.workers:
            self.sql(self.coordinator, db, f"SELECT citus_add_node('127.0.0.1', {worker.port})")
        return self.url(db)

    def worker_of(self, db: str, table: str, value: str) -> int:
        """Index in ``workers`` of the node holding the shard of ``table`` for distribution value ``value``."""
        port = self.sql(self.coordinator, db,
                        "SELECT nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
                        f"WHERE shardid = get_shard_id_for_distribution_column('{table}', '{value}')")
        return [w.port for w in self.workers].index(int(port))


def main(argv: list[str]) -> int:
    if argv[:1] == ["build"]:
        build()
        print("citus: installed" if citus_installed() else "citus: not installed")
        return 0
    if argv[:1] == ["start"] and len(argv) == 2:
        cluster = Cluster(Path(argv[1])).start()
        print(f"coordinator 127.0.0.1:{cluster.coordinator.port}, workers "
              + ", ".join(str(w.port) for w in cluster.workers), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            cluster.stop()
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
