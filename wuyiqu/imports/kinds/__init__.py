"""The registry kinds (units, households, residents, verifications, special-population).

Other apps register their kinds in ``wuyiqu/<app>/import_kinds.py`` (found by autodiscovery)."""

from . import people, units  # noqa: F401
