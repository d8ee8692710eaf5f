"""`wuyiqu seal-uploads`: leave nothing in clear in the upload folder (docs/deploy.md, Upgrading).

Earlier versions kept every import file uploaded on the web, in plaintext, for ever. This removes
the file of every import job that has ended (and any file no job names), and seals in place the file
of a job still waiting to run (see wuyiqu.imports.storage). The worker does the same at its start.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from wuyiqu.imports import storage


class Command(BaseCommand):
    help = "删除已结束的导入任务留下的上传文件，并把仍在排队的导入文件加密存放（升级后运行一次；worker 启动时也会运行）"

    def handle(self, *args, **options):
        imports = storage.purge()
        self.stdout.write(f"导入文件：删除 {imports.removed} 个，加密 {imports.sealed} 个")
