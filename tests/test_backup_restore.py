"""`wuyiqu backup` and `wuyiqu restore` as processes on a database on disk (the session's kind): a
backup restored on a fresh database evaluates identically; restore refuses a non-empty target
(unless --force), a damaged or altered backup, a backup of a newer version and the wrong keys."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from fault_tools import TEST_DATA_KEY, fingerprint, tables

from wuyiqu.lib import dates
from wuyiqu.lib.crypto import FieldCipher

OTHER_KEY = base64.b64encode(bytes(range(40, 72))).decode()


@pytest.fixture(scope="module")
def source(seeded_file_db, tmp_path_factory):
    """A copy of the seeded world after a day's supervision (warnings, withdrawals, evaluations).
    Shared by the tests of this file, which only read it."""
    db = seeded_file_db.copy(tmp_path_factory.mktemp("source"))
    db.run("supervise", "--date", dates.today().isoformat())
    yield db
    db.drop()


@pytest.fixture(scope="module")
def made_backup(source, tmp_path_factory):
    path = tmp_path_factory.mktemp("backups") / "backup"
    out = source.run("backup", str(path))
    assert "备份完成" in out.stdout
    return path


@pytest.fixture
def backup_dir(made_backup, tmp_path):
    """The module's backup, copied: a test may damage its copy."""
    return Path(shutil.copytree(made_backup, tmp_path / "backup"))


def with_env(db, **env):
    return dataclasses.replace(db, env=db.env | env)


def has_tables(db) -> bool:
    conn = db.connect()
    try:
        return bool(tables(conn, db.vendor))
    finally:
        conn.close()


def test_a_backup_restored_on_a_fresh_database_evaluates_identically(source, backup_dir, tmp_path):
    manifest = json.loads((backup_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["vendor"] == source.vendor and manifest["app_version"]
    assert manifest["tables"]["units_resident"]["rows"] > 600
    assert manifest["tables"]["standards_evaluation"]["rows"] > 0
    assert "0001_initial" in manifest["migrations"]["units"]
    assert manifest["keys"] == {"data_key_ids": [FieldCipher(TEST_DATA_KEY).current_key_id.hex()],
                                "lookup_fingerprint": FieldCipher(TEST_DATA_KEY).lookup_fingerprint}
    assert TEST_DATA_KEY not in json.dumps(manifest)  # fingerprints only, never a key

    target = source.empty_sibling(tmp_path)
    assert "与清单一致" in target.run("restore", str(backup_dir)).stdout
    day = dates.today().isoformat()
    here, there = (json.loads(db.run("evaluate", "--json", "--date", day).stdout) for db in (source, target))
    assert here == there and len(here) > 10
    assert {e["unit"] for e in here} >= {"500110002015", "500110002014", "500110002208"}
    assert any(not e["eligible"] for e in here) and any(c["detail"] for e in here for c in e["criteria"])
    # Every table holds the same rows, but for the audit rows of the backup and of the restore.
    assert fingerprint(source, exclude={"audit_auditevent"}) == fingerprint(target, exclude={"audit_auditevent"})

    again = target.run("restore", str(backup_dir), check=False)
    assert again.returncode == 1 and "不是空的" in again.stderr and "--force" in again.stderr
    assert "与清单一致" in target.run("restore", str(backup_dir), "--force").stdout


def test_restore_refuses_the_wrong_keys_with_a_clear_message(backup_dir, source, tmp_path):
    target = source.empty_sibling(tmp_path)
    wrong = with_env(target, WUYIQU_DATA_KEY=OTHER_KEY)
    refused = wrong.run("restore", str(backup_dir), check=False)
    assert refused.returncode == 1, refused.stdout
    assert "WUYIQU_DATA_KEY" in refused.stderr and FieldCipher(TEST_DATA_KEY).current_key_id.hex() in refused.stderr
    assert not has_tables(target)  # nothing was touched

    # The data key rotated but the lookup key forgotten: the hashes would find no one.
    forgot = with_env(target, WUYIQU_DATA_KEY=OTHER_KEY, WUYIQU_OLD_DATA_KEYS=TEST_DATA_KEY,
                      WUYIQU_LOOKUP_KEY=OTHER_KEY)
    refused = forgot.run("restore", str(backup_dir), check=False)
    assert refused.returncode == 1 and "WUYIQU_LOOKUP_KEY" in refused.stderr
    assert not has_tables(target)

    # A properly rotated process (old key kept for reading, lookup key kept) restores it.
    rotated = with_env(target, WUYIQU_DATA_KEY=OTHER_KEY, WUYIQU_OLD_DATA_KEYS=TEST_DATA_KEY,
                       WUYIQU_LOOKUP_KEY=TEST_DATA_KEY)
    assert "与清单一致" in rotated.run("restore", str(backup_dir)).stdout


def test_restore_refuses_a_damaged_or_altered_backup(backup_dir, source, tmp_path):
    target = source.empty_sibling(tmp_path)
    manifest_path = backup_dir / "manifest.json"
    original = manifest_path.read_text(encoding="utf-8")

    def refused_with(*words):
        result = target.run("restore", str(backup_dir), check=False)
        assert result.returncode == 1, result.stdout
        for word in words:
            assert word in result.stderr, result.stderr
        assert not has_tables(target)  # left as it was: empty

    manifest = json.loads(original)
    manifest["tables"]["units_resident"]["rows"] += 1  # the manifest altered
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    refused_with("units_resident", "不符")

    manifest = json.loads(original)
    manifest["migrations"]["units"].append("9999_from_the_future")
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    refused_with("units.9999_from_the_future", "更新的版本")

    manifest_path.write_text(original, encoding="utf-8")
    data = backup_dir / json.loads(original)["data_file"]["name"]
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # the data damaged
    data.write_bytes(bytes(blob))
    refused_with("SHA-256")

    manifest_path.write_text("{not json", encoding="utf-8")
    refused_with("JSON")


def test_backup_refuses_a_directory_that_holds_something(source, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    result = source.run("backup", str(tmp_path / "busy"), check=False)
    assert result.returncode == 1 and "不是空的" in result.stderr
