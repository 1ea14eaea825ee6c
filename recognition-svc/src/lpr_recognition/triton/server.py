"""Run the CPU Triton Inference Server that ships inside the ``nvidia-pytriton`` wheel.

The server loads the model repository with ``--model-config-name=cpu``, so each model
runs from its ``configs/cpu.pbtxt``: the Python backend executing onnxruntime. The
Python backend's stub must match the running interpreter, so the stub for this
Python version is copied into a backend directory next to the backend library.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

DEFAULT_HTTP_PORT = 8100
DEFAULT_GRPC_PORT = 8101
DEFAULT_METRICS_PORT = 8102


class TritonServerError(RuntimeError):
    """The Triton server could not be started or did not become ready."""


@dataclass(frozen=True)
class TritonPorts:
    """Ports the server listens on (all on localhost)."""

    http: int = DEFAULT_HTTP_PORT
    grpc: int = DEFAULT_GRPC_PORT
    metrics: int = DEFAULT_METRICS_PORT


def pytriton_root() -> Path:
    """The ``tritonserver`` tree inside the installed ``nvidia-pytriton`` wheel.

    Raises:
        TritonServerError: The wheel is not installed.
    """
    try:
        # Imported here: only the root project's models group installs the wheel.
        import pytriton  # type: ignore[import-untyped]
    except ImportError as error:
        raise TritonServerError(
            "nvidia-pytriton is not installed; run `uv sync --group models`"
        ) from error
    return Path(pytriton.__file__).resolve().parent / "tritonserver"


def prepare_python_backend(backends_dir: Path) -> Path:
    """Assemble a backend directory whose Python backend matches this interpreter.

    Returns:
        The backend directory to pass as ``--backend-directory``.

    Raises:
        TritonServerError: The wheel has no stub for this Python version.
    """
    root = pytriton_root()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise TritonServerError(
            f"nvidia-pytriton ships no Python backend stub for Python {version}"
        )
    python_backend = backends_dir / "python"
    python_backend.mkdir(parents=True, exist_ok=True)
    for source in [*(root / "backends" / "python").iterdir(), stub]:
        target = python_backend / source.name
        if not target.exists() or target.stat().st_size != source.stat().st_size:
            shutil.copy2(source, target)
    (python_backend / stub.name).chmod(0o755)
    return backends_dir


def server_environment() -> dict[str, str]:
    """Environment for the server: libpython, the wheel's bundled libraries, the venv.

    The stub embeds this Python, so it needs libpython on the library path and this
    environment's site-packages (onnxruntime, numpy) on ``PYTHONPATH``.
    """
    environment = dict(os.environ)
    venv_bin = Path(sys.executable).parent
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    bundled = pytriton_root().parent.parent / "nvidia_pytriton.libs"
    library_path = [p for p in (libdir, str(bundled), environment.get("LD_LIBRARY_PATH", "")) if p]
    environment["LD_LIBRARY_PATH"] = os.pathsep.join(library_path)
    environment["PATH"] = os.pathsep.join([str(venv_bin), environment.get("PATH", "")])
    site_packages = sysconfig.get_paths()["purelib"]
    python_path = [site_packages, environment.get("PYTHONPATH", "")]
    environment["PYTHONPATH"] = os.pathsep.join(p for p in python_path if p)
    environment["VIRTUAL_ENV"] = str(venv_bin.parent)
    return environment


class TritonServer:
    """A CPU ``tritonserver`` child process serving a model repository.

    Use as a context manager, or call ``start``, ``wait_ready`` and ``stop``.
    """

    def __init__(
        self,
        repository: Path,
        work_dir: Path,
        *,
        ports: TritonPorts | None = None,
        model_config_name: str = "cpu",
        log_verbose: int = 0,
    ) -> None:
        """Configure a server.

        Args:
            repository: The model repository (``recognition-svc/model_repository``).
            work_dir: Holds the backend directory and ``tritonserver.log``.
            ports: HTTP, gRPC and metrics ports.
            model_config_name: Which ``configs/<name>.pbtxt`` each model uses.
            log_verbose: Triton's verbose log level.
        """
        self.repository = repository.resolve()
        self.work_dir = work_dir.resolve()
        self.ports = ports or TritonPorts()
        self.model_config_name = model_config_name
        self.log_verbose = log_verbose
        self.log_path = self.work_dir / "tritonserver.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def grpc_url(self) -> str:
        """``host:port`` for tritonclient's gRPC client."""
        return f"localhost:{self.ports.grpc}"

    def command(self) -> list[str]:
        """The server's command line."""
        binary = pytriton_root() / "bin" / "tritonserver"
        backends = prepare_python_backend(self.work_dir / "backends")
        return [
            str(binary),
            f"--model-repository={self.repository}",
            f"--model-config-name={self.model_config_name}",
            f"--backend-directory={backends}",
            f"--http-port={self.ports.http}",
            f"--grpc-port={self.ports.grpc}",
            f"--metrics-port={self.ports.metrics}",
            "--allow-cpu-metrics=false",
            "--allow-gpu-metrics=false",
            "--exit-on-error=true",
            "--strict-readiness=true",
            # Recognizer outputs are about 1 MB per text line; grow the Python backend's
            # shared memory in large steps instead of 1 MB at a time.
            "--backend-config=python,shm-default-byte-size=33554432",
            "--backend-config=python,shm-growth-byte-size=33554432",
            f"--log-verbose={self.log_verbose}",
            f"--log-file={self.log_path}",
        ]

    def start(self) -> None:
        """Start the server process (returns at once; see ``wait_ready``).

        Raises:
            TritonServerError: The repository is missing or the binary cannot run.
        """
        if self._process is not None and self._process.poll() is None:
            return
        if not self.repository.is_dir():
            raise TritonServerError(f"model repository {self.repository} does not exist")
        missing = [
            model.name
            for model in self.repository.iterdir()
            if (model / "configs").is_dir() and not any((model / "1").glob("*.onnx"))
        ]
        if missing:
            raise TritonServerError(
                f"model repository {self.repository} lacks the ONNX files of {', '.join(sorted(missing))};"
                " assemble it first (lprctl models)"
            )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.unlink(missing_ok=True)
        command = self.command()
        try:
            self._process = subprocess.Popen(
                command,
                env=server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=(self.work_dir / "tritonserver.stderr").open("wb"),
                start_new_session=True,
            )
        except OSError as error:
            raise TritonServerError(f"cannot run {command[0]}: {error}") from error

    def is_ready(self) -> bool:
        """Whether the server answers ready on its HTTP health endpoint."""
        url = f"http://localhost:{self.ports.http}/v2/health/ready"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until every model is loaded and the server is ready.

        Raises:
            TritonServerError: The process exited or the timeout passed; the message
                carries the end of the server's log, which names the cause.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None:
                raise TritonServerError("the Triton server was not started")
            code = self._process.poll()
            if code is not None:
                raise TritonServerError(
                    f"tritonserver exited with code {code} while starting:\n{self.log_tail()}"
                )
            if self.is_ready():
                return
            time.sleep(0.25)
        self.stop()
        raise TritonServerError(
            f"tritonserver was not ready within {timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of the server's log and standard error."""
        text: list[str] = []
        for path in (self.log_path, self.work_dir / "tritonserver.stderr"):
            if path.is_file():
                text.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(text) or "(no log output)"

    def stop(self, grace: float = 15.0) -> None:
        """Stop the server with SIGTERM, then SIGKILL if it has not exited after ``grace`` s."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            # The server and its Python stubs share a session; end them together.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> TritonServer:
        """Start the server and wait until it is ready."""
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()
