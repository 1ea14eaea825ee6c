"""Start, supervise and stop the whole platform on one machine.

Order: PostgreSQL (embedded unless ``DATABASE_URL`` is set), migrations, the CPU Triton
server from the ``nvidia-pytriton`` wheel (unless ``TRITON_URL`` names one), then the
services. Every child runs in its own session so that Ctrl-C reaches only lprctl, which
then stops the services first and the database last. A state file in the data
directory lets ``lprctl status`` and ``lprctl down`` work from another shell.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import asyncpg
import httpx

from lpr_common.context import CONTEXT_KEY_NAME, service_key_name
from lpr_common.context import SERVICES as SERVICE_NAMES
from lpr_common.db import redact_url
from lpr_common.keys import load_or_create_ed25519
from lpr_common.settings import DEFAULT_DATABASE_PORT, LprSettings
from lprctl.postgres import EmbeddedPostgres, PostgresError, tail_file


def _is(component: Component, response: httpx.Response) -> bool:
    """True when the readiness answer comes from ``component`` itself.

    A service's ``/readyz`` names the service: if its port were taken by another of our
    services, that one's answer must not pass for it.
    """
    if component.ready_url:
        return True  # Triton's own probe
    try:
        return bool(response.json().get("service") == component.name)
    except ValueError:
        return False


class StackError(RuntimeError):
    """A component could not start; the message names it and says why, in one line."""


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the platform."""

    name: str
    package: str

    def url(self, settings: LprSettings) -> str:
        """The service's base URL from the settings."""
        url: str = getattr(settings, f"{self.name}_url")
        return url

    def port(self, settings: LprSettings) -> int:
        """The port the service listens on, taken from its URL."""
        return urlsplit(self.url(settings)).port or 80


# Start order: the audit log first, since every other service records into it.
SERVICES = (
    ServiceSpec("audit", "lpr_audit"),
    ServiceSpec("hotlist", "lpr_hotlist"),
    ServiceSpec("recognition", "lpr_recognition"),
    ServiceSpec("gateway", "lpr_gateway"),
)


def triton_ports_from_env() -> tuple[int, int, int]:
    """HTTP, gRPC and metrics ports of the embedded Triton (``LPR_TRITON_PORTS=8100,8101,8102``)."""
    raw = os.environ.get("LPR_TRITON_PORTS", "8100,8101,8102")
    try:
        http, grpc, metrics = (int(part) for part in raw.split(","))
    except ValueError:
        raise StackError(f"LPR_TRITON_PORTS must be three ports, e.g. 8100,8101,8102: {raw!r}")
    return http, grpc, metrics


def state_path(data_dir: Path) -> Path:
    """Where ``lprctl up`` records what it started."""
    return data_dir / "lprctl.json"


def database_port() -> int:
    """Port of the embedded PostgreSQL."""
    return int(os.environ.get("LPR_DATABASE_PORT", DEFAULT_DATABASE_PORT))


async def _probe_database(url: str, timeout_s: float) -> None:
    connection = await asyncpg.connect(url, timeout=timeout_s)
    await connection.close()


def check_database_url(url: str, timeout_s: float = 5.0) -> None:
    """Raise :class:`StackError` with one clear line unless ``url`` accepts a connection."""
    try:
        asyncio.run(_probe_database(url, timeout_s))
    except (
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        TimeoutError,
        ValueError,
    ) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StackError(f"cannot connect to the database at {redact_url(url)}: {reason}") from exc


@dataclass
class Component:
    """A supervised child process."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    url: str | None = None
    # Readiness probe when it is not ``<url>/readyz`` (Triton answers on its own path).
    ready_url: str | None = None
    # SIGTERM only the main process, not its whole group: Triton stops its own backend
    # stubs, which would otherwise die before it has unloaded the models.
    signal_group: bool = True
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_restart_at: float = 0.0

    def start(self) -> None:
        """Start the process in its own session, its output appended to its log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def tail_log(self, lines: int = 15) -> str:
        """The last lines of the log."""
        return tail_file(self.log_path, lines)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL the whole process group if it does not exit in time."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            if self.signal_group:
                os.killpg(process.pid, signal.SIGTERM)
            else:
                process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Stack:
    """The whole platform on one machine."""

    settings: LprSettings
    echo: Callable[[str], None] = print
    external_database_url: str | None = None
    postgres: EmbeddedPostgres | None = None
    components: list[Component] = field(default_factory=list)
    extra_components: list[Callable[[Stack], Component]] = field(default_factory=list)
    # embedded: start the CPU Triton server; external: TRITON_URL names one; off: the
    # recognition service only stores reads. None decides from TRITON_URL.
    triton: Literal["embedded", "external", "off"] | None = None
    triton_ports: tuple[int, int, int] = field(default_factory=lambda: triton_ports_from_env())
    extra_env: dict[str, str] = field(default_factory=dict)
    _stopping: bool = False

    @property
    def data_dir(self) -> Path:
        """The data directory (database, keys, blobs, logs)."""
        return self.settings.data_dir

    def start(self, *, ready_timeout_s: float = 90.0) -> None:
        """Bring everything up, or stop what started and raise :class:`StackError`."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        existing = read_state(self.data_dir)
        if existing and _pid_alive(existing.get("pid", -1)):
            raise StackError(
                f"lprctl is already running (pid {existing['pid']}); use `lprctl down`"
            )
        # Keys first, so that no two services race to create them.
        load_or_create_ed25519(self.settings.keys_dir, CONTEXT_KEY_NAME)
        for service in SERVICE_NAMES:
            load_or_create_ed25519(self.settings.keys_dir, service_key_name(service))
        try:
            database_url = self._start_database()
            self._migrate(database_url)
            env = self._service_env(database_url)
            if self.triton_mode == "embedded":
                self._launch(self._triton_component(), ready_timeout_s)
                env["TRITON_URL"] = f"localhost:{self.triton_ports[1]}"
            elif self.triton_mode == "off":
                env["LPR_RECOGNITION_ENABLED"] = "false"
            for factory in self.extra_components:
                self._launch(factory(self), ready_timeout_s)
            for spec in SERVICES:
                self._launch(self._service_component(spec, env), ready_timeout_s)
            self._wait_ready(ready_timeout_s)
        except BaseException:
            self.stop()
            raise
        self._write_state()

    @property
    def triton_mode(self) -> Literal["embedded", "external", "off"]:
        """Whether this stack starts Triton, uses the one at ``TRITON_URL``, or runs without."""
        if self.triton is not None:
            return self.triton
        return "external" if os.environ.get("TRITON_URL") else "embedded"

    def triton_component(self) -> Component | None:
        """The embedded Triton server, when this stack started one."""
        return next((c for c in self.components if c.name == "triton"), None)

    def _triton_component(self) -> Component:
        # Imported here: only this path needs the recognition package's server helpers.
        from lpr_recognition.triton.repository import (
            MODEL_REPOSITORY,
            ModelRepositoryError,
            assemble_model_repository,
        )
        from lpr_recognition.triton.server import (
            TritonPorts,
            TritonServer,
            TritonServerError,
            server_environment,
        )

        http, grpc, metrics = self.triton_ports
        try:
            assemble_model_repository(MODEL_REPOSITORY)
            server = TritonServer(
                MODEL_REPOSITORY,
                self.data_dir / "triton",
                ports=TritonPorts(http=http, grpc=grpc, metrics=metrics),
            )
            command, env = server.command(), server_environment()
        except (ModelRepositoryError, TritonServerError, OSError) as exc:
            raise StackError(f"triton cannot start: {exc}") from exc
        self.echo(f"triton     localhost:{grpc} (gRPC, CPU, {MODEL_REPOSITORY})")
        return Component(
            "triton",
            command,
            env,
            self.data_dir / "logs" / "triton.log",
            ready_url=f"http://127.0.0.1:{http}/v2/health/ready",
            signal_group=False,
        )

    def _start_database(self) -> str:
        if self.external_database_url:
            url = self.external_database_url
            check_database_url(url)
            self.echo(f"database   {redact_url(url)} (external)")
            return url
        self.postgres = EmbeddedPostgres(self.data_dir, database_port())
        try:
            created = self.postgres.initialize()
            self.postgres.start()
        except (PostgresError, OSError, subprocess.CalledProcessError) as exc:
            raise StackError(f"postgres failed to start: {exc}") from exc
        state = "new cluster" if created else "existing data reused"
        self.echo(f"database   {self.postgres.url} (embedded, {state})")
        return self.postgres.url

    def _migrate(self, database_url: str) -> None:
        from lpr_common.migrations import upgrade

        for spec in SERVICES:
            try:
                upgrade(spec.package, spec.name, database_url)
            except Exception as exc:
                raise StackError(f"{spec.name} migrations failed: {exc}") from exc
        self.echo("migrations applied: " + ", ".join(spec.name for spec in SERVICES))

    def _service_env(self, database_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": database_url,
                "LPR_DATA_DIR": str(self.data_dir),
                "LPR_ENVIRONMENT": self.settings.environment,
                "PYTHONUNBUFFERED": "1",
            }
        )
        for spec in SERVICES:
            env[f"LPR_{spec.name.upper()}_URL"] = spec.url(self.settings)
        env.update(self.extra_env)
        return env

    def _service_component(self, spec: ServiceSpec, env: dict[str, str]) -> Component:
        host = urlsplit(spec.url(self.settings)).hostname or "127.0.0.1"
        command = [
            sys.executable, "-m", "uvicorn", f"{spec.package}.app:app",
            "--host", host, "--port", str(spec.port(self.settings)),
            "--no-access-log", "--timeout-graceful-shutdown", "5",
            # Named, not "auto": a missing uvloop/httptools fails loudly instead of
            # silently costing every request the slower pure-Python loop and parser.
            "--loop", "uvloop", "--http", "httptools",
        ]  # fmt: skip
        return Component(
            spec.name,
            command,
            env,
            self.data_dir / "logs" / f"{spec.name}.log",
            spec.url(self.settings),
        )

    def _launch(self, component: Component, ready_timeout_s: float) -> None:
        del ready_timeout_s
        component.start()
        self.components.append(component)

    def _wait_ready(self, timeout_s: float) -> None:
        """Wait until every component answers its readiness probe as itself."""
        deadline = time.monotonic() + timeout_s
        pending = [c for c in self.components if c.url or c.ready_url]
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for component in list(pending):
                    if not component.alive():
                        code = component.process.returncode if component.process else "?"
                        raise StackError(
                            f"{component.name} failed to start (exit code {code}); "
                            f"last lines of {component.log_path}:\n{component.tail_log()}"
                        )
                    try:
                        response = client.get(component.ready_url or f"{component.url}/readyz")
                    except httpx.HTTPError:
                        continue
                    if response.status_code == 200 and _is(component, response):
                        pending.remove(component)
                if time.monotonic() > deadline:
                    names = ", ".join(c.name for c in pending)
                    raise StackError(f"not ready after {timeout_s:.0f} s: {names}")
                if pending:
                    time.sleep(0.3)

    def _write_state(self) -> None:
        components: dict[str, dict[str, int | str | None]] = {
            c.name: {"pid": c.process.pid if c.process else None, "url": c.url}
            for c in self.components
        }
        if self.postgres and self.postgres.process:
            components["postgres"] = {"pid": self.postgres.process.pid, "url": None}
        state = {
            "pid": os.getpid(),
            "database": redact_url(
                self.postgres.url if self.postgres else self.settings.database_url
            ),
            "components": components,
        }
        state_path(self.data_dir).write_text(json.dumps(state, indent=2))

    def supervise(self, poll_s: float = 1.0) -> None:
        """Restart crashed services with backoff until :meth:`request_stop` is called."""
        while not self._stopping:
            now = time.monotonic()
            for component in self.components:
                if component.alive() or self._stopping:
                    continue
                if component.next_restart_at == 0.0:
                    code = component.process.returncode if component.process else "?"
                    delay = min(30.0, 2.0 ** min(component.restarts, 5))
                    self.echo(f"{component.name} exited (code {code}); restarting in {delay:.0f} s")
                    component.next_restart_at = now + delay
                elif now >= component.next_restart_at:
                    component.restarts += 1
                    component.next_restart_at = 0.0
                    component.start()
                    self._write_state()
            if self.postgres and self.postgres.process and self.postgres.process.poll() is not None:
                self.echo(f"postgres exited; see {self.postgres.log_path}")
                return
            time.sleep(poll_s)

    def request_stop(self) -> None:
        """Ask :meth:`supervise` to return (called from a signal handler)."""
        self._stopping = True

    def stop(self) -> None:
        """Stop the services (reverse order), then the database; forget the state."""
        self._stopping = True
        for component in reversed(self.components):
            component.stop()
        if self.postgres is not None:
            self.postgres.stop()
        path = state_path(self.data_dir)
        state = read_state(self.data_dir)
        if state and state.get("pid") == os.getpid():
            path.unlink(missing_ok=True)


def read_state(data_dir: Path) -> dict[str, object] | None:
    """The state written by a running ``lprctl up``, if any."""
    path = state_path(data_dir)
    if not path.exists():
        return None
    try:
        state: dict[str, object] = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return state


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
