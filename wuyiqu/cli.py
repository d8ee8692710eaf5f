"""The `wuyiqu` console command: Django's management commands, plus `demo` that needs no setup.

Without DATABASE_URL the embedded SQLite file in WUYIQU_DATA_DIR (default ./var) is used, and
the secrets for it are generated once into WUYIQU_DATA_DIR/secrets.env so that a bare machine
runs the demo; a production install sets its own secrets and DATABASE_URL.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path


def _data_dir() -> Path:
    return Path(os.environ.get("WUYIQU_DATA_DIR") or Path.cwd() / "var").resolve()


def _load_or_create_embedded_secrets(create: bool) -> None:
    path = _data_dir() / "secrets.env"
    if not path.exists():
        if not create:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "# Generated for the embedded demo database. Do not use in production.\n"
            f"WUYIQU_SECRET_KEY={secrets.token_urlsafe(50)}\n"
            f"WUYIQU_DATA_KEY={base64.b64encode(secrets.token_bytes(32)).decode()}\n"
            # Its own lookup key from the start: rotating the data key then needs no other change.
            f"WUYIQU_LOOKUP_KEY={base64.b64encode(secrets.token_bytes(32)).decode()}\n",
            encoding="utf-8",
        )
        path.chmod(0o600)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            os.environ.setdefault(key.strip(), value.strip())


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else "help"
    if not os.environ.get("DATABASE_URL") and not os.environ.get("WUYIQU_SECRET_KEY"):
        # The embedded database: `demo` makes its secrets; every other command reuses them.
        _load_or_create_embedded_secrets(create=command == "demo")
        os.environ.setdefault("WUYIQU_ENV", "demo")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wuyiqu.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["wuyiqu", *argv])


if __name__ == "__main__":
    main()
