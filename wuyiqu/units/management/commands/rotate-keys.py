"""`wuyiqu rotate-keys [--batch-size N] [--check]`: re-encrypt the personal fields under the new data key."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

HELP = """Re-encrypt every ID-card number and phone under the current data key (WUYIQU_DATA_KEY).

To rotate the data key:
  1. If WUYIQU_LOOKUP_KEY is not set yet, set it to the current WUYIQU_DATA_KEY (the lookup hashes
     were made with it and must stay: they are the only identity of facts about people who are not
     on the register). An embedded database whose secrets `wuyiqu demo` generated has its own.
  2. Move the current key to WUYIQU_OLD_DATA_KEYS (comma-separated, the older ones after it) and
     put a new key in WUYIQU_DATA_KEY: `python3 -c "import base64,os;print(base64.b64encode(os.urandom(32)).decode())"`.
     Restart the application: from then on it writes under the new key and reads both.
  3. Run `wuyiqu rotate-keys`. It works in batches of residents, each one transaction with its audit
     row; values already under the new key are skipped, so it can be stopped at any moment (Ctrl+C,
     a crash, kill -9) and run again: nothing is lost and it goes on where it stopped.
  4. `wuyiqu rotate-keys --check` reports the values per key; when it says 0 under old keys (exit
     status 0), remove the old key from WUYIQU_OLD_DATA_KEYS (keep WUYIQU_LOOKUP_KEY) and restart.
     Backups made before the
     rotation still need the old key (docs/reliability.md, Faults: backup).

The lookup key is not rotated by this command (see docs/reliability.md, Personal data).
Before writing, the lookup key is checked against a sample of stored hashes, and a wrong one is
refused. Exit status: 0 done (or --check: nothing under old keys), 1 refused or values left."""


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=2000, help="residents per transaction (default 2000)")
        parser.add_argument("--check", action="store_true",
                            help="only count the stored values per key; exit 1 while any is under an old key")

    def handle(self, *args, batch_size: int, check: bool, **options):
        from wuyiqu.units.actions import KeyRotationError
        from wuyiqu.units.keys import key_status, rotate_keys

        if batch_size < 1:
            raise CommandError("--batch-size 应为正整数")
        if check:
            status = key_status()
            self.stdout.write(f"当前密钥：{status.current} 个值；旧密钥：{status.old} 个值；未知密钥：{status.unknown} 个值")
            for kid, n in sorted(status.by_key.items()):
                self.stdout.write(f"  密钥 {kid}：{n}")
            if status.old or status.unknown:
                raise CommandError("仍有值未用当前密钥加密：请运行 wuyiqu rotate-keys", returncode=1)
            return
        started = time.monotonic()

        def progress(out):
            if out.batches % 50 == 0:
                self.stderr.write(f"  已处理到居民 id={out.last_id}，重新加密 {out.values} 个值")

        try:
            out = rotate_keys(batch_size=batch_size, after_batch=progress)
        except KeyRotationError as exc:
            raise CommandError(str(exc), returncode=1) from None
        status = key_status()
        self.stdout.write(
            f"重新加密 {out.values} 个值（{out.batches} 批，用时 {time.monotonic() - started:.1f} 秒）；"
            f"当前密钥 {status.current} 个值，旧密钥 {status.old} 个值")
        if status.old or status.unknown:  # written meanwhile under an old key by a process not yet restarted
            raise CommandError("仍有值未用当前密钥加密（有进程仍在用旧密钥写入？重启后再运行一次）", returncode=1)
