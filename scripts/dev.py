#!/usr/bin/env python3
"""Set up the project's virtualenv and run the demo or the whole test suite. Standard library only.

    python3 scripts/dev.py demo [--residents N] [...]   make .venv, then `wuyiqu demo ...`
    python3 scripts/dev.py test [--postgres URL [--postgres-only]] [--no-browser] [--one-at-a-time]
                                [--sqlite-now ISO] [pytest args]
                                                       make .venv, run pytest on SQLite (and on
                                                       PostgreSQL, side by side), then `ruff check .`

The virtualenv uses the newest Python >= 3.12 on the machine (Django 6), else the Python running
this script when it is >= 3.11 (pip then resolves Django 5.2 LTS). WUYIQU_DEV_PYTHON=/path/to/python
chooses the interpreter instead. `pip install -e '.[test]'` runs again only when pyproject.toml
changed since the last install.

`test` runs pytest once per database: SQLite (unless --postgres-only), PostgreSQL too when
DATABASE_URL is set or --postgres URL is given. The two runs go side by side (each in its own temporary
directory; the second one's output is shown whole after the first's), or one after the other with
--one-at-a-time. `--sqlite-now ISO` runs the SQLite pass at that frozen moment (TEST_NOW, tests/conftest.py)
while the PostgreSQL pass runs at the real time (.ci/run). It exits non-zero when any run fails or ruff
finds anything.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".wuyiqu-installed"
CHROMIUM = Path("/usr/bin/chromium")
# Django 6.1 supports Python 3.12 to 3.14; anything newer may miss wheels for our dependencies.
PREFERRED = ((3, 12), (3, 14))
FALLBACK = (3, 11)


def say(message: str) -> None:
    print(f"[dev.py] {message}", flush=True)


def fail(message: str, code: int = 2) -> None:
    print(f"[dev.py] error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


# --- choosing the interpreter ---------------------------------------------------------------


def probe(python: str) -> tuple[int, int, int] | None:
    """The version of ``python`` if it runs and can make a virtualenv with pip, else None."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys, venv, ensurepip; print(*sys.version_info[:3])"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None  # e.g. a pyenv shim for a version that is not activated, or no ensurepip
    try:
        major, minor, micro = (int(x) for x in out.stdout.split())
    except ValueError:
        return None
    return major, minor, micro


def candidates() -> list[str]:
    """Interpreters worth probing: PATH names, pyenv installs, the system's and this one."""
    found: list[str] = []
    for minor in range(PREFERRED[1][1], PREFERRED[0][1] - 1, -1):
        path = shutil.which(f"python3.{minor}")
        if path:
            found.append(path)
    home = Path.home()
    found += sorted(glob.glob(str(home / ".pyenv/versions/3.1[2-9]*/bin/python3")), reverse=True)
    for prefix in ("/usr/local/bin", "/usr/bin"):
        found += sorted(glob.glob(f"{prefix}/python3.1[2-9]"), reverse=True)
    found.append(sys.executable)
    seen: set[str] = set()
    unique = []
    for path in found:
        if path not in seen:
            seen.add(path)
            unique.append(path)
    return unique


def choose_python() -> tuple[str, tuple[int, int, int]]:
    forced = os.environ.get("WUYIQU_DEV_PYTHON")
    if forced:
        version = probe(forced)
        if version is None or version[:2] < FALLBACK:
            fail(f"WUYIQU_DEV_PYTHON={forced!r} is not a Python >= 3.11 with venv and ensurepip")
        return forced, version
    best: tuple[tuple[int, int, int], str] | None = None
    for path in candidates():
        version = probe(path)
        if version and PREFERRED[0] <= version[:2] <= PREFERRED[1] and (best is None or version > best[0]):
            best = (version, path)
    if best:
        return best[1], best[0]
    here = tuple(sys.version_info[:3])
    if here[:2] >= FALLBACK:
        if probe(sys.executable) is None:
            fail(
                f"{sys.executable} cannot make a virtualenv (no venv/ensurepip module). "
                f"On Debian/Ubuntu: apt-get install python3-venv"
            )
        say(f"no Python >= 3.12 found; using {sys.executable} ({'.'.join(map(str, here))}), "
            "so pip installs Django 5.2 LTS instead of Django 6")
        return sys.executable, here  # type: ignore[return-value]
    fail(f"Python >= 3.11 is needed (this is {sys.version.split()[0]}); install python3.12 or newer")
    raise AssertionError  # unreachable


# --- the virtualenv -------------------------------------------------------------------------


def ensure_venv() -> None:
    python, version = choose_python()
    current = probe(str(VENV_PYTHON)) if VENV_PYTHON.exists() else None
    if current is not None and current[:2] < PREFERRED[0] and version[:2] >= PREFERRED[0]:
        say(f".venv has Python {current[0]}.{current[1]}; recreating it with {python} "
            f"({version[0]}.{version[1]}) for Django 6")
        shutil.rmtree(VENV)
        current = None
    elif current is None and VENV.exists():
        say(".venv is broken (its python does not run); recreating it")
        shutil.rmtree(VENV)
    if current is None:
        say(f"creating .venv with {python} (Python {'.'.join(map(str, version))})")
        run([python, "-m", "venv", str(VENV)])
        current = probe(str(VENV_PYTHON))
        if current is None:
            fail(f"{VENV_PYTHON} does not run after `{python} -m venv`")
    stamp = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest() + f" py{current[0]}.{current[1]}"
    installed = STAMP.read_text().strip() if STAMP.exists() else ""
    if installed != stamp or not (VENV / "bin" / "wuyiqu").exists():
        say("installing the project and its test tools into .venv (pip install -e '.[test]')")
        run([str(VENV_PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", ".[test]"])
        STAMP.write_text(stamp + "\n")


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        fail(f"`{' '.join(cmd)}` failed with exit code {result.returncode}", result.returncode)


# --- Chromium for the browser tests -----------------------------------------------------------


# What the tests need from the system, by the file that must exist and Debian's package for it:
# Chromium for the browser tests, poppler's pdftotext/pdftoppm/pdffonts to read, render and check the PDFs, and
# poppler-data: the CMaps without which pdftotext reads nothing from a PDF whose CJK font is not embedded.
SYSTEM_TOOLS = {
    CHROMIUM: "chromium",
    Path("/usr/bin/pdftotext"): "poppler-utils",
    Path("/usr/bin/pdftoppm"): "poppler-utils",
    Path("/usr/bin/pdffonts"): "poppler-utils",  # the PDFs embed their font (tests/pdf_tools.py)
    Path("/usr/share/poppler/cMap"): "poppler-data",
}


# Another apt run on the machine (unattended upgrades, a second shell) holds these locks; apt-get then
# fails at once with exit code 100. We wait for them instead, up to APT_LOCK_WAIT seconds.
APT_LOCKS = [Path("/var/lib/dpkg/lock-frontend"), Path("/var/lib/dpkg/lock"),
             Path("/var/lib/apt/lists/lock"), Path("/var/cache/apt/archives/lock")]
APT_LOCK_WAIT = 900


def apt_lock_holder() -> Path | None:
    """The first apt/dpkg lock that another process holds now, or None."""
    import fcntl

    for lock in APT_LOCKS:
        try:
            with open(lock, "w") as handle:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.lockf(handle, fcntl.LOCK_UN)
        except FileNotFoundError:
            continue
        except OSError:
            return lock
    return None


def apt_get(*args: str) -> None:
    """apt-get ARGS, waiting for another apt run's locks instead of failing with exit code 100."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "-o", f"DPkg::Lock::Timeout={APT_LOCK_WAIT}", *args]
    deadline = time.monotonic() + APT_LOCK_WAIT
    while True:
        held = apt_lock_holder()
        if held is None:
            result = subprocess.run(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
            if result.returncode == 0:
                return
            held = apt_lock_holder()  # lost a race for the lock: wait again
            if result.returncode != 100 or held is None:
                fail(f"`{' '.join(cmd)}` failed with exit code {result.returncode}", result.returncode)
        if time.monotonic() > deadline:
            fail(f"apt is still locked ({held}) by another process after {APT_LOCK_WAIT} s; "
                 f"try again when it has finished", 100)
        say(f"waiting for another apt run to release {held}")
        time.sleep(5)


def ensure_system_tools(*, browser: bool) -> None:
    needed = {path: pkg for path, pkg in SYSTEM_TOOLS.items() if browser or path != CHROMIUM}
    missing = sorted({pkg for path, pkg in needed.items() if not path.exists()})
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say(f"installing Debian's {' '.join(missing)} for the tests")
        apt_get("update")
        apt_get("install", "-y", *missing)
        if all(path.exists() for path in needed):
            return
    fail(
        f"the tests need {' '.join(missing)} (Chromium at {CHROMIUM} for the browser tests, poppler for PDFs).\n"
        f"Install them with\n    sudo apt-get update && sudo apt-get install -y {' '.join(missing)}\n"
        "(Debian/Ubuntu; Playwright never downloads a browser here)."
    )


# --- the test run ---------------------------------------------------------------------------

COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)")
CLOSING = re.compile(r"(\d+ (passed|failed|errors?|skipped|deselected)|no tests ran).* in [\d.]+s")


class Pass:
    """One pytest run on one database, started at once, its output in a log file of its own.

    The passes of one ``dev.py test`` run side by side (``--one-at-a-time`` runs them in turn): on a
    machine with two cores or more the SQLite pass and the PostgreSQL pass take little more than the
    longer of them instead of their sum. Each has its own pytest base temporary directory and its own
    WUYIQU_DATA_DIR (uploads), so that the two never share a file.
    """

    def __init__(self, label: str, database_url: str | None, args: list[str], now: str | None = None):
        self.label, self.database_url, self.args = label, database_url, list(args)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"wuyiqu-test-{label}-"))
        self.log_path = self.tmp / "pytest.log"
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        if database_url:
            env["DATABASE_URL"] = database_url
        env["PYTHONUNBUFFERED"] = "1"
        env["WUYIQU_DATA_DIR"] = str(self.tmp / "var")
        if now:
            env["TEST_NOW"] = now  # this pass at a frozen moment (tests/conftest.py, "the clock")
            self.label = f"{label} at {now}"
        extra = [] if any(a == "--basetemp" or a.startswith("--basetemp=") for a in args) \
            else [f"--basetemp={self.tmp / 'pytest'}"]
        self.cmd = [str(VENV_PYTHON), "-m", "pytest", "-p", "no:cacheprovider", *extra, *args]
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.t0 = 0.0
        self.ended_at: float | None = None

    def start(self) -> None:
        where = f" ({redact(self.database_url)})" if self.database_url else ""
        say(f"pytest on {self.label}{where}: {' '.join(self.cmd[1:])}")
        self.t0 = time.monotonic()
        self.log = open(self.log_path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115 (closed in result)
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def ended(self) -> bool:
        assert self.proc is not None
        if self.ended_at is None and self.proc.poll() is not None:
            self.ended_at = time.monotonic()
        return self.ended_at is not None

    def follow(self, beside: list[Pass]) -> None:
        """Copy the log to stdout as it grows, until the run has ended and the log is read to its end
        (noting meanwhile when the passes ``beside`` it end)."""
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            while True:
                ended = self.ended()
                for other in beside:
                    other.ended()
                chunk = log.read()
                if chunk:
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
                elif ended:
                    break
                else:
                    time.sleep(0.5)

    def result(self) -> tuple[bool, str]:
        assert self.proc is not None
        code = self.proc.wait()
        self.log.close()
        closing = ""
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            for line in log:
                if CLOSING.search(line):
                    closing = line
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.ended()
        return summarise(self.label, code, closing, (self.ended_at or time.monotonic()) - self.t0)


def run_passes(passes: list[Pass], *, side_by_side: bool) -> list[tuple[bool, str]]:
    """Run the passes (side by side, or one after the other) and echo each one's output whole, in
    order: the first as it runs, the others once the one before them has been echoed."""
    if side_by_side:
        for p in passes:
            p.start()
    for i, p in enumerate(passes):
        if not side_by_side:
            p.start()
        elif i:
            say(f"the {p.label} pass, which ran beside the {passes[0].label} pass:")
        p.follow([q for q in passes if q is not p and q.proc is not None])
    return [p.result() for p in passes]


def summarise(label: str, code: int, closing: str, seconds: float) -> tuple[bool, str]:
    """(ok, "label: N passed, N failed[, N skipped]" and a detail line) from pytest's closing line."""
    counts: dict[str, int] = {}
    for n, word in COUNT.findall(closing):
        counts["error" if word.startswith("error") else word] = int(n)
    passed, failed = counts.get("passed", 0), counts.get("failed", 0) + counts.get("error", 0)
    # pytest exits 5 when it collected no test (e.g. a -k that matches nothing): nothing failed,
    # but say so plainly rather than report a green run.
    ok = code in (0, 5)
    summary = f"{label}: {passed} passed, {failed} failed"
    if counts.get("skipped"):
        summary += f", {counts['skipped']} skipped"
    note = "no tests ran" if code == 5 else ("OK" if code == 0 else f"FAILED (pytest exit {code})")
    return ok, f"{summary}\n    ({label} {note}, {seconds:.0f} s)"


def redact(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


def with_no_browser(args: list[str]) -> list[str]:
    """pytest ARGS that also deselect the browser tests. pytest keeps only the last ``-m``, so a marker
    expression given in ARGS is joined to ``not browser`` rather than put beside it."""
    out, marked = [], False
    it = iter(args)
    for arg in it:
        if arg == "-m":
            expression = next(it, "")
            out += ["-m", f"({expression}) and not browser"]
            marked = True
        elif arg.startswith("-m") and len(arg) > 2:
            out += ["-m", f"({arg[2:].lstrip('=')}) and not browser"]
            marked = True
        else:
            out.append(arg)
    return out if marked else ["-m", "not browser", *out]


def cmd_test(argv: list[str]) -> int:
    postgres = os.environ.get("DATABASE_URL") or None
    browser = True
    sqlite = True
    side_by_side = True
    sqlite_now: str | None = None
    pytest_args: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--postgres":
            postgres = next(it, None)
            if not postgres:
                fail("--postgres needs a URL, e.g. --postgres postgres://postgres@127.0.0.1:5432/wuyiqu")
        elif arg.startswith("--postgres="):
            postgres = arg.split("=", 1)[1]
        elif arg == "--no-browser":
            browser = False
        elif arg == "--postgres-only":
            sqlite = False
        elif arg == "--one-at-a-time":
            side_by_side = False
        elif arg == "--sqlite-now" or arg.startswith("--sqlite-now="):
            sqlite_now = arg.split("=", 1)[1] if "=" in arg else next(it, None)
            if not sqlite_now:
                fail("--sqlite-now needs a moment, e.g. --sqlite-now 2028-02-29T00:00:30+08:00")
        else:
            pytest_args.append(arg)
    if postgres and not postgres.startswith(("postgres://", "postgresql://")):
        fail(f"--postgres/DATABASE_URL must be a postgres:// URL, not {redact(postgres)!r}")
    if not sqlite and not postgres:
        fail("--postgres-only needs --postgres URL (or DATABASE_URL)")
    ensure_venv()
    ensure_system_tools(browser=browser)
    if not browser:
        pytest_args = with_no_browser(pytest_args)
    if not any(a.startswith("--durations") for a in pytest_args):
        pytest_args = ["--durations=15", *pytest_args]  # the slowest tests, to keep the suite's time in view
    passes = ([Pass("sqlite", None, pytest_args, now=sqlite_now)] if sqlite else []) + \
        ([Pass("postgres", postgres, pytest_args)] if postgres else [])
    results = run_passes(passes, side_by_side=side_by_side and len(passes) > 1)
    say("ruff check .")
    ruff = subprocess.run([str(VENV / "bin" / "ruff"), "check", "."], cwd=ROOT, stdin=subprocess.DEVNULL)
    print()
    for _, line in results:
        print(line)
    print(f"ruff: {'clean' if ruff.returncode == 0 else 'FAILED'}")
    if not postgres:
        print("    (PostgreSQL not tested: set DATABASE_URL or pass --postgres URL)")
    ok = all(r[0] for r in results) and ruff.returncode == 0
    print("dev.py test:", "all green" if ok else "FAILED", flush=True)
    return 0 if ok else 1


def cmd_demo(argv: list[str]) -> int:
    ensure_venv()
    wuyiqu = VENV / "bin" / "wuyiqu"
    os.chdir(ROOT)  # the embedded database and its secrets live in ./var of the checkout
    sys.stdout.flush()
    os.execv(str(wuyiqu), [str(wuyiqu), "demo", *argv])
    return 0  # unreachable


def main(argv: list[str]) -> int:
    if sys.version_info < FALLBACK:
        fail(f"run this with Python >= 3.11 (this is {sys.version.split()[0]})")
    if not argv or argv[0] not in ("demo", "test", "setup"):
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command, rest = argv[0], argv[1:]
    if command == "demo":
        return cmd_demo(rest)
    if command == "test":
        return cmd_test(rest)
    ensure_venv()  # setup: only make .venv
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
