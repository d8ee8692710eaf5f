#!/usr/bin/env python3
"""Run a systemd service unit on a machine without systemd as PID 1, from the unit file itself.

    python3 scripts/deploy_units.py start|stop|restart|status|show UNIT_FILE [--run-dir D] [--log-dir D]

scripts/deploy-debian.sh starts wuyiqu-web and wuyiqu-worker with this, from the unit files it
installed in /etc/systemd/system/ (copies of deploy/*.service), so what runs is what the units say:
``ExecStart`` (the command), ``User``/``Group``, ``WorkingDirectory``, ``EnvironmentFile``,
``Environment``, ``UMask`` and, to stop, ``TimeoutStopSec``. The process runs under Debian's
start-stop-daemon with a clean environment made the way systemd makes it (PATH, LANG, HOME, USER,
LOGNAME, SHELL, then the files and assignments in order). The sandboxing directives (ProtectSystem,
PrivateTmp, NoNewPrivileges, ...) and Restart= only systemd can apply: ``show`` lists them as not
applied here. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

APPLIED = {"ExecStart", "User", "Group", "WorkingDirectory", "EnvironmentFile", "Environment", "UMask",
           "TimeoutStopSec", "Type"}
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class UnitError(Exception):
    pass


@dataclass
class Service:
    name: str
    argv: list[str]
    user: str = "root"
    group: str = ""
    working_directory: str = "/"
    environment: dict[str, str] = field(default_factory=dict)
    umask: str = "0022"
    stop_timeout: int = 90
    not_applied: list[str] = field(default_factory=list)


def read_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file: {section: [(key, value), ...]} in file order (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        if current is None or "=" not in line:
            raise UnitError(f"{path}: cannot read the line {raw!r}")
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return sections


def read_environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd reads an EnvironmentFile (comments, optional quotes)."""
    values = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if "=" not in line:
            raise UnitError(f"{path}:{number}: expected KEY=VALUE")
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def parse_service(path: Path) -> Service:
    sections = read_unit(path)
    if "Service" not in sections:
        raise UnitError(f"{path}: no [Service] section")
    items = sections["Service"]
    exec_start = [v for k, v in items if k == "ExecStart"]
    if len(exec_start) != 1:
        raise UnitError(f"{path}: expected exactly one ExecStart=")
    command = exec_start[0].lstrip("-@:+!")
    if "%" in command:
        raise UnitError(f"{path}: ExecStart uses a systemd specifier (%), which this runner does not expand")
    service = Service(name=path.stem, argv=shlex.split(command))
    for key, value in items:
        if key == "User":
            service.user = value
        elif key == "Group":
            service.group = value
        elif key == "WorkingDirectory":
            service.working_directory = value.lstrip("-")
        elif key == "UMask":
            service.umask = value
        elif key == "TimeoutStopSec":
            service.stop_timeout = int(value.rstrip("s"))
        elif key not in APPLIED:
            service.not_applied.append(f"{key}={value}")
    try:
        account = pwd.getpwnam(service.user)
    except KeyError:
        raise UnitError(f"{path}: User={service.user} does not exist") from None
    # The environment systemd gives a service, then the unit's files and assignments in order.
    env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", "HOME": account.pw_dir, "USER": service.user,
           "LOGNAME": service.user, "SHELL": account.pw_shell}
    for key, value in items:
        if key == "EnvironmentFile":
            optional = value.startswith("-")
            file = Path(value.lstrip("-"))
            if not file.exists():
                if optional:
                    continue
                raise UnitError(f"{path}: EnvironmentFile={file} does not exist")
            env.update(read_environment_file(file))
        elif key == "Environment":
            for assignment in shlex.split(value):
                name, _, setting = assignment.partition("=")
                env[name] = setting
    service.environment = env
    service.group = service.group or service.user
    return service


def pidfile(service: Service, run_dir: Path) -> Path:
    return run_dir / f"{service.name}.pid"


def is_running(service: Service, run_dir: Path) -> bool:
    pid_path = pidfile(service, run_dir)
    if not pid_path.exists():
        return False
    result = subprocess.run(["start-stop-daemon", "--status", "--pidfile", str(pid_path)])
    return result.returncode == 0


def start(service: Service, run_dir: Path, log_dir: Path) -> None:
    if is_running(service, run_dir):
        print(f"[units] {service.name} is already running (pid {pidfile(service, run_dir).read_text().strip()})")
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{service.name}.log"
    command = [
        "start-stop-daemon", "--start", "--background", "--make-pidfile",
        "--pidfile", str(pidfile(service, run_dir)),
        "--chuid", f"{service.user}:{service.group}",
        "--chdir", service.working_directory,
        "--umask", service.umask,
        "--output", str(log),
        "--startas", service.argv[0], "--", *service.argv[1:],
    ]
    print(f"[units] starting {service.name}: {shlex.join(service.argv)} as {service.user}:{service.group} "
          f"in {service.working_directory} (log {log})")
    if service.not_applied:
        print(f"[units]   applied only by systemd, not here: {', '.join(service.not_applied)}")
    with log.open("a") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} start {shlex.join(service.argv)}\n")
    account = pwd.getpwnam(service.user)
    os.chown(log, account.pw_uid, account.pw_gid)  # start-stop-daemon may open it as the service's user
    log.chmod(0o640)
    subprocess.run(command, env=service.environment, check=True)
    time.sleep(2)
    if not is_running(service, run_dir):
        tail = log.read_text(errors="replace").splitlines()[-30:]
        raise UnitError(f"{service.name} stopped right after its start; the end of {log}:\n" + "\n".join(tail))


def stop(service: Service, run_dir: Path) -> None:
    pid_path = pidfile(service, run_dir)
    if not is_running(service, run_dir):
        pid_path.unlink(missing_ok=True)
        print(f"[units] {service.name} is not running")
        return
    print(f"[units] stopping {service.name} (TERM, then KILL after {service.stop_timeout} s)")
    subprocess.run(["start-stop-daemon", "--stop", "--pidfile", str(pid_path), "--remove-pidfile",
                    "--retry", f"TERM/{service.stop_timeout}/KILL/5"], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "restart", "status", "show"])
    parser.add_argument("unit", type=Path)
    parser.add_argument("--run-dir", type=Path, default=Path("/run/wuyiqu-units"))
    parser.add_argument("--log-dir", type=Path, default=Path("/var/log/wuyiqu"))
    args = parser.parse_args(argv)
    try:
        service = parse_service(args.unit)
        if args.action == "show":
            hidden = {"WUYIQU_SECRET_KEY", "WUYIQU_DATA_KEY", "WUYIQU_OLD_DATA_KEYS", "WUYIQU_LOOKUP_KEY"}
            print(f"ExecStart: {shlex.join(service.argv)}\nUser: {service.user}:{service.group}\n"
                  f"WorkingDirectory: {service.working_directory}\nUMask: {service.umask}")
            for key, value in service.environment.items():
                print(f"env {key}={'***' if key in hidden else value}")
            print(f"not applied here: {', '.join(service.not_applied) or '-'}")
        elif args.action == "status":
            running = is_running(service, args.run_dir)
            print(f"{service.name}: {'running' if running else 'stopped'}")
            return 0 if running else 3
        else:
            if args.action in ("stop", "restart"):
                stop(service, args.run_dir)
            if args.action in ("start", "restart"):
                start(service, args.run_dir, args.log_dir)
    except (UnitError, subprocess.CalledProcessError, OSError) as exc:
        print(f"[units] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
