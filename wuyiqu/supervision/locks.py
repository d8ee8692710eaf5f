"""Naming and the re-check after new facts take turns on the units they share (PostgreSQL).

A fact that fails a named unit withdraws its title at once, in the fact's own transaction
(``services.recheck_after_facts``); naming creates a title after evaluating the unit. Run at the
same time under READ COMMITTED, neither sees the other's uncommitted write: the re-check finds no
title to withdraw, the naming's evaluation finds no case, and the unit stays named over a positive
case until the next daily run (bench/load_mixed.py: five buildings in one minute).

So both lock the units they read, at the village/community level and above (district, street,
village/community: three keys per unit at most, whatever its depth), until their transaction ends:

- the re-check takes SHARED locks on the chain of every unit its facts bear on (facts never wait
  for each other), and an EXCLUSIVE one on a street or the district whose whole subtree a risk zone
  covers;
- naming takes an EXCLUSIVE lock on the unit's village/community (or on the unit itself, a street
  or village/community) and SHARED ones on the units above.

Whichever comes second waits for the first to commit and then sees its write: the re-check finds
the new title and withdraws it; the naming finds the case and is refused. Keys are taken in one
global order (sorted), so two transactions never wait for each other in a circle. The keys are
CRC-32s of unit codes: a collision only makes two units share a lock. SQLite serialises writing
transactions itself (IMMEDIATE): nothing is taken there.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from django.db import connection

NAMESPACE = 0x5355_5056  # the first int of the two-int advisory key: "SUPV"
LOCKED_DEPTH = 3  # the district, the street and the village/community of a unit's path


def _key(code: str) -> int:
    return zlib.crc32(code.encode()) & 0x7FFF_FFFF


def _chain(path: str) -> list[str]:
    """The codes of the units above ``path`` down to its village/community (or the unit itself when
    it lies higher), from the top."""
    return [c for c in path.strip("/").split("/") if c][:LOCKED_DEPTH]


def _take(modes: dict[int, bool]) -> None:
    """Lock each key (True: exclusive) in key order, until the transaction ends."""
    if connection.vendor != "postgresql" or not modes:
        return
    with connection.cursor() as cur:
        for key in sorted(modes):
            fn = "pg_advisory_xact_lock" if modes[key] else "pg_advisory_xact_lock_shared"
            cur.execute(f"SELECT {fn}(%s, %s)", [NAMESPACE, key])


def hold_for_facts(paths: Iterable[str], subtree_paths: Iterable[str] = ()) -> None:
    """Before re-checking the named units new facts bear on: ``paths`` of the units the facts are
    about, ``subtree_paths`` of the units whose whole subtree they cover (risk zones)."""
    modes: dict[int, bool] = {}
    for path in paths:
        for code in _chain(path):
            modes.setdefault(_key(code), False)
    for path in subtree_paths:
        chain = _chain(path)
        if len(path.strip("/").split("/")) < LOCKED_DEPTH:
            # A street or the district: namings anywhere below it must wait.
            modes[_key(chain[-1])] = True
        for code in chain:
            modes.setdefault(_key(code), False)
    _take(modes)


def hold_for_naming(path: str) -> None:
    """Before evaluating a unit for naming (its title created in the same transaction)."""
    chain = _chain(path)
    modes = {_key(code): False for code in chain[:-1]}
    modes[_key(chain[-1])] = True
    _take(modes)
