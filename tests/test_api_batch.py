"""A laboratory system posting a large day of nucleic-acid results through the API in chunks:
50,000 results in ten requests of 5,000, counted exactly; a resent chunk is replayed, resent records
under a new key add nothing; one audit row per request."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine

from wuyiqu.api.actions import do_create_api_token
from wuyiqu.audit.models import AuditEvent
from wuyiqu.health.models import HeldFacts, NatResult
from wuyiqu.lib.idcard import check_digit
from wuyiqu.units.models import Resident, Unit

WENLONG_COMMUNITY = "500110002015"
HONGQI_VILLAGE = "500110002208"
NOW = dt.datetime(2022, 11, 25, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
TOTAL, CHUNK = 50_000, 5_000


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _unregistered_ids(n: int) -> list[str]:
    """``n`` valid ID numbers of a region (北京东城) no resident of the test world is from."""
    out = []
    day = dt.date(1960, 1, 1)
    while len(out) < n:
        for seq in range(1000):
            first17 = f"110101{day:%Y%m%d}{seq:03d}"
            out.append(first17 + check_digit(first17))
        day += dt.timedelta(days=1)
    return out[:n]


def _post(client, secret, key, records):
    return client.post("/api/v1/facts/nat-results", data=json.dumps({"batch_key": key, "records": records}),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_a_lab_posts_fifty_thousand_results_in_chunks_and_every_one_is_counted(client, world):
    _token, secret = do_create_api_token(actor=None, name="lab", unit=Unit.objects.get(code=WENLONG_COMMUNITY),
                                         kinds=["nat-results"], days=30)
    inside = [r.reveal_id_number() for r in
              Resident.objects.filter(household__unit__path__contains=f"/{WENLONG_COMMUNITY}/").order_by("id")]
    outside = [r.reveal_id_number() for r in
               Resident.objects.filter(household__unit__path__contains=f"/{HONGQI_VILLAGE}/").order_by("id")[:7]]
    assert len(inside) >= 50 and len(outside) == 7
    ids = inside + _unregistered_ids(TOTAL - len(inside) - len(outside)) + outside
    assert len(set(ids)) == TOTAL
    records = [{"id_number": n, "sampled_at": f"2022-11-24 {8 + i % 10:02d}:{i % 60:02d}",
                "result": "negative"} for i, n in enumerate(ids)]
    totals = {"received": 0, "accepted": 0, "created": 0, "unmatched": 0, "rejected": 0}
    codes: list[str] = []
    for i in range(0, TOTAL, CHUNK):
        resp = _post(client, secret, f"2022-11-24/{i // CHUNK}", records[i:i + CHUNK])
        assert resp.status_code == 200, resp.content[:500]
        body = resp.json()
        assert body["replayed"] is False
        for k in totals:
            totals[k] += body[k]
        codes += [e["code"] for e in body["errors"]]
    # The 7 residents of another community get the answer of an unknown number (no existence oracle):
    # stored unmatched, attached to nobody, held for the street.
    assert totals == {"received": TOTAL, "accepted": TOTAL, "created": TOTAL,
                      "unmatched": TOTAL - len(inside), "rejected": 0}
    assert codes == []
    assert NatResult.objects.count() == TOTAL
    assert NatResult.objects.filter(resident_id__isnull=False).count() == len(inside)
    assert HeldFacts.objects.count() == 7
    assert AuditEvent.objects.filter(action="api.facts", detail__status=200).count() == TOTAL // CHUNK

    # The network dropped the answer to chunk 3: resending it replays the first answer, writes nothing.
    again = _post(client, secret, "2022-11-24/3", records[3 * CHUNK:4 * CHUNK]).json()
    assert again["replayed"] is True and again["created"] == CHUNK
    # The same records under a new key: recognised as stored, nothing added.
    fresh = _post(client, secret, "2022-11-24/3-bis", records[3 * CHUNK:4 * CHUNK]).json()
    assert (fresh["replayed"], fresh["created"], fresh["unchanged"]) == (False, 0, CHUNK)
    assert NatResult.objects.count() == TOTAL
    assert AuditEvent.objects.filter(action="api.facts").count() == TOTAL // CHUNK + 2
