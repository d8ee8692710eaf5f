"""`wuyiqu seal-uploads`: leave nothing in clear in the upload folder (docs/deploy.md, Upgrading).

Earlier versions kept every import file uploaded on the web, in plaintext, for ever. This removes
the file of every import job that has ended (and any file no job names), and seals in place the file
of a job still waiting to run (see wuyiqu.imports.storage; the worker does that at its start). It
also seals in place every attachment and inspection photo an earlier version wrote in clear
(wuyiqu.lib.sealed_storage), and puts the file key of every sealed one under the current data key
(after a rotation: run it before the old key is dropped, docs/reliability.md).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from wuyiqu.imports import storage


class Command(BaseCommand):
    help = "删除已结束的导入任务留下的上传文件，把仍在排队的导入文件和以前未加密的附件、照片加密存放（升级后运行一次）"

    def handle(self, *args, **options):
        imports = storage.purge()
        self.stdout.write(f"导入文件：删除 {imports.removed} 个，加密 {imports.sealed} 个")
        sealed_now, rewrapped = storage.seal_other_uploads()
        self.stdout.write(f"附件和照片：加密 {sealed_now} 个，换用当前数据密钥 {rewrapped} 个")
