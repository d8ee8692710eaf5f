"""Import kinds that live outside an app's own ``import_kinds`` module, registered here so the
engine's autodiscovery (which imports every installed app's ``import_kinds``) finds them.

``nat-results`` lives in ``wuyiqu/health/nat_import.py`` beside the partitions of its table.
"""

from wuyiqu.health import nat_import  # noqa: F401  (registers "nat-results")
