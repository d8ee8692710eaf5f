#!/usr/bin/env python3
"""Smoke test of a deployed wuyiqu, from outside, THROUGH NGINX (scripts/deploy-debian.sh runs it).

    python3 scripts/deploy_smoke.py --https https://localhost --http http://localhost \
        --cafile /etc/ssl/wuyiqu/fullchain.pem --username admin --password-file FILE --db-name wuyiqu

1. plain HTTP is sent to HTTPS by nginx; the HTTPS login page carries HSTS and a Secure CSRF cookie;
2. the administrator signs in with the form (CSRF token, Referer, session cookie); a new one (its
   one-time password from `wuyiqu user create`) changes it on the own-password page first, and the
   new password is written back to the password file;
3. a static file named on the page is served (hashed name, gzip, cached for ever);
4. a units import is uploaded on a unit's import page: the request only enqueues it, the job page
   (polled as htmx does) goes from pending to succeeded as `wuyiqu worker` runs it;
5. the job and the units are in PostgreSQL (psql as the wuyiqu role, not through the app).

Standard library only; exits non-zero with the failed step on any failure.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import secrets
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

PARENT = "500110002015"  # 文龙社区 in the packaged 綦江区 divisions
UNITS_CSV = (
    "编码,名称,类型,上级编码\n"
    f"{PARENT}-SMOKE,部署验收小区,compound,{PARENT}\n"
    f"{PARENT}-SMOKE-B1,部署验收小区1栋,building,{PARENT}-SMOKE\n"
    f"{PARENT}-SMOKE-B2,部署验收小区2栋,building,{PARENT}-SMOKE\n"
)


class Failed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


class _Keep3xx(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    def __init__(self, base: str, cafile: str | None):
        self.base = base.rstrip("/")
        context = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), urllib.request.HTTPCookieProcessor(self.cookies),
            _Keep3xx)

    def request(self, path: str, *, data: bytes | None = None, headers: dict | None = None):
        url = path if path.startswith("http") else self.base + path
        request = urllib.request.Request(url, data=data, headers={"User-Agent": "wuyiqu-deploy-smoke",
                                                                   **(headers or {})})
        try:
            response = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        body = response.read()
        return response.status, response.headers, body

    def csrf(self, html: str) -> str:
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        check(found is not None, "no CSRF token in the form")
        return found.group(1)

    def post_form(self, path: str, fields: dict, files: dict | None = None):
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in fields.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        for name, (filename, content, content_type) in (files or {}).items():
            parts.append((f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                          f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n').encode()
                         + content + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request(path, data=body, headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}", "Referer": self.base + path,
            "Origin": self.base})


def change_one_time_password(browser: Browser, *, old: str, password_file: str) -> str | None:
    """A new administrator (`wuyiqu user create`) has a one-time password: every page leads to the
    own-password page until it is changed. If the signed-in ``browser`` is sent there, choose a new
    password, write it back to ``password_file`` (0600) and return it; None when no change is asked."""
    status, headers, _ = browser.request("/")
    if not (status == 302 and urllib.parse.urlsplit(headers.get("Location", "")).path == "/account/password/"):
        return None
    new_password = secrets.token_urlsafe(18)
    status, _, body = browser.request("/account/password/")
    check(status == 200, f"GET /account/password/: {status}")
    status, headers, _ = browser.post_form("/account/password/", {
        "csrfmiddlewaretoken": browser.csrf(body.decode()), "old_password": old,
        "new_password1": new_password, "new_password2": new_password})
    check(status == 302, f"changing the one-time password: expected a redirect, got {status}")
    fd = os.open(password_file, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # the mode of os.open applies only to a file it creates
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new_password + "\n")
    return new_password


def psql(db_name: str, sql: str) -> str:
    result = subprocess.run(["runuser", "-u", "wuyiqu", "--", "psql", "-h", "/var/run/postgresql", "-d", db_name,
                             "-XtAc", sql], capture_output=True, text=True, timeout=60)
    check(result.returncode == 0, f"psql failed: {result.stderr.strip()}")
    return result.stdout.strip()


def run(args) -> list[str]:
    done: list[str] = []
    browser = Browser(args.https, args.cafile)

    status, headers, _ = Browser(args.http, None).request("/login/")
    check(status == 301 and headers["Location"].startswith("https://"),
          f"plain HTTP: expected nginx's 301 to HTTPS, got {status} {headers.get('Location')}")
    done.append(f"plain HTTP /login/ -> {status} {headers['Location']}")

    status, headers, body = browser.request("/login/")
    check(status == 200, f"GET /login/ through nginx: {status}")
    check("max-age=" in (headers.get("Strict-Transport-Security") or ""), "no HSTS header on the login page")
    check(any(c.name == "csrftoken" and c.secure for c in browser.cookies), "the CSRF cookie is not Secure")
    login_page = body.decode()
    done.append(f"GET /login/ -> 200, HSTS '{headers['Strict-Transport-Security']}', Secure CSRF cookie")

    status, headers, _ = browser.post_form("/login/", {"csrfmiddlewaretoken": browser.csrf(login_page),
                                                       "username": args.username, "password": args.password})
    check(status == 302, f"sign-in: expected a redirect, got {status} (wrong password or CSRF refused)")
    check(any(c.name == "sessionid" and c.secure for c in browser.cookies), "no Secure session cookie after sign-in")
    done.append(f"POST /login/ as {args.username} -> 302 {headers['Location']}, Secure session cookie")

    new_password = change_one_time_password(browser, old=args.password, password_file=args.password_file)
    if new_password is not None:
        args.password = new_password
        done.append(f"one-time password of {args.username} changed on /account/password/ (forced at first sign-in)")

    stylesheet = re.search(r'href="(/static/[^"]+\.css)"', login_page)
    check(stylesheet is not None, "no stylesheet linked from the login page")
    status, headers, body = browser.request(stylesheet.group(1), headers={"Accept-Encoding": "gzip"})
    check(status == 200 and len(body) > 0, f"GET {stylesheet.group(1)}: {status}")
    check(re.search(r"\.[0-9a-f]{12}\.css$", stylesheet.group(1)) is not None, "the static name is not hashed")
    check("immutable" in (headers.get("Cache-Control") or ""), "the static file is not cached for ever")
    done.append(f"GET {stylesheet.group(1)} -> 200, {headers.get('Content-Encoding') or 'identity'}, "
                f"Cache-Control '{headers['Cache-Control']}'")

    page = f"/units/{PARENT}/import/"
    status, _, body = browser.request(page)
    check(status == 200, f"GET {page}: {status}")
    t0 = time.monotonic()
    status, headers, body = browser.post_form(page, {"csrfmiddlewaretoken": browser.csrf(body.decode()),
                                                     "kind": "units"},
                                              {"file": ("部署验收单位.csv", UNITS_CSV.encode(), "text/csv")})
    check(status == 302 and "/imports/" in headers.get("Location", ""),
          f"upload: expected a redirect to the job page, got {status}: {body[:300]!r}")
    job_path = urllib.parse.urlsplit(headers["Location"]).path
    job_id = int(job_path.rstrip("/").rsplit("/", 1)[1])
    done.append(f"POST {page} (units, 3 rows) -> 302 {job_path} in {time.monotonic() - t0:.2f} s")

    seen: list[str] = []
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        status, _, body = browser.request(job_path, headers={"HX-Request": "true"})
        check(status == 200, f"GET {job_path}: {status}")
        state = re.search(r'class="status (\w+)"', body.decode())
        check(state is not None, "no status on the job page")
        if not seen or seen[-1] != state.group(1):
            seen.append(state.group(1))
        if state.group(1) in ("succeeded", "failed"):
            break
        time.sleep(0.5)
    check(seen and seen[-1] == "succeeded", f"the job did not succeed in {args.timeout} s: states {seen}")
    done.append(f"job {job_id} on the page: {' -> '.join(seen)} after {time.monotonic() - t0:.1f} s")

    row = psql(args.db_name, f"SELECT status, created + unchanged, started_at IS NOT NULL FROM imports_importjob "
                             f"WHERE id = {job_id}")
    check(row == "succeeded|3|t", f"the job in PostgreSQL: {row!r}")
    task = psql(args.db_name, "SELECT status FROM django_tasks_database_dbtaskresult "
                              "WHERE task_path = 'wuyiqu.imports.tasks.run_import_job' "
                              f"AND args_kwargs::text LIKE '%[{job_id}]%'")
    check(task == "SUCCESSFUL", f"the job's task in the queue: {task!r}")
    units = psql(args.db_name, f"SELECT count(*) FROM units_unit WHERE code LIKE '{PARENT}-SMOKE%'")
    check(units == "3", f"units in PostgreSQL: {units}")
    done.append(f"PostgreSQL: job {job_id} succeeded, its task SUCCESSFUL (run by the worker), 3 units present")
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--https", required=True, help="e.g. https://localhost")
    parser.add_argument("--http", required=True, help="e.g. http://localhost")
    parser.add_argument("--cafile", help="the certificate to trust (a self-signed one)")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--db-name", required=True)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    with open(args.password_file, encoding="utf-8") as f:
        args.password = f.read().strip()
    try:
        for line in run(args):
            print(f"[smoke] ok: {line}")
    except Failed as exc:
        print(f"[smoke] FAILED: {exc}", file=sys.stderr)
        return 1
    print("[smoke] passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
