"""`wuyiqu relink-facts`: link the facts stored before their person was registered (see docs/facts.md).

Residents imports link the facts of the people they add; this command is for facts stored before
that existed, or for a check. It can be run any time and again: facts already linked stay as they
are. Audited (``health.relink_facts``), and the units of linked cases and measures are re-checked
by supervision at once.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "把登记前已存入的核酸结果、阳性病例和管控措施关联到已登记的居民（可重复运行，已关联的不变）"

    def handle(self, *args, **options):
        from wuyiqu.health.actions import do_relink_facts

        t = time.perf_counter()
        linked = do_relink_facts(actor=None)
        self.stdout.write(
            f"已关联核酸结果 {linked.results} 条、阳性病例 {linked.cases} 条、管控措施 {linked.measures} 条，"
            f"涉及 {len(linked.unit_ids)} 个单位（用时 {time.perf_counter() - t:.2f} 秒）")
