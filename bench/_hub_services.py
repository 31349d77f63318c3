"""The two servers of ``hub_bench.py`` and how it watches them: ports, processes, /proc memory, page cache.

Split out of ``hub_bench.py`` so each file stays readable; ``hub_bench.py`` is the entry point.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
MIB = 1 << 20
MB = 1_000_000  # throughput and RSS are in decimal megabytes
CHUNK = 8 * MIB
ADMIN = "admin"  # the user the server bootstraps with FMHUB_ADMIN_TOKEN

APT_HINT = "apt-get install -y nginx   (Debian/Ubuntu, as root; or rerun this script as root with --install-nginx)"


# -- processes: ports, the two servers, /proc -------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_nginx() -> str | None:
    # /usr/sbin is not on a normal user's PATH on Debian, but nginx lives there.
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/sbin")


def ensure_nginx(install: bool, console) -> str:
    nginx = find_nginx()
    if nginx:
        return nginx
    if not install:
        sys.exit(f"nginx (the download anchor) is not installed. Install it with:\n  {APT_HINT}")
    if os.geteuid() != 0:
        sys.exit(f"--install-nginx needs root (apt-get). Install it yourself with:\n  sudo {APT_HINT}")
    console.print("installing nginx: apt-get update && apt-get install -y nginx")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "nginx"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{shlex.join(command)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    nginx = find_nginx()
    if not nginx:
        sys.exit("apt-get installed nginx but no nginx binary was found on PATH or in /usr/sbin")
    return nginx


def children_of(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn with --workers > 1 forks worker processes)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def vm_kib(pid: int, field_name: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of live processes (clock ticks from /proc/PID/stat)."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/PID/clear_refs``, Linux ≥ 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Service:
    """A server started by this script, in its own process group, stopped by :meth:`stop`."""

    name: str
    process: subprocess.Popen
    log: Path
    base_url: str

    def pids(self) -> list[int]:
        return children_of(self.process.pid) if self.process.poll() is None else []

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{log_tail(self.log)}")
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {path} within {timeout:.0f} s:\n{log_tail(self.log)}")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own group: the server and its workers only
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def start_hub(home: Path, token: str, workers: int, logs: Path, extra_env: dict[str, str] | None = None,
              name: str = "hub", extra_args: tuple[str, ...] = ()) -> Service:
    port = free_port()
    fmhub = VENV_BIN / "fmhub"
    command = ([str(fmhub)] if fmhub.exists() else [sys.executable, "-m", "fmhub.cli"]) + [
        "server", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", *extra_args]  # no per-request access log, like nginx's access_log off
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FMHUB_", "HF_"))}
    env.update({"FMHUB_HOME": str(home), "FMHUB_ADMIN_TOKEN": token, "FMHUB_ADMIN_USER": ADMIN, **(extra_env or {})})
    log = logs / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    service = Service("fmhub server", process, log, f"http://127.0.0.1:{port}")
    service.command = command  # type: ignore[attr-defined]
    return service


def nginx_config(work: Path, root: Path, port: int) -> str:
    user = ""
    if os.geteuid() == 0:
        # A root master would hand requests to workers running as nobody, who cannot read our 0700 temp
        # folder: keep the workers as the user running the script.
        import grp
        import pwd
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    temp = work / "nginx-temp"
    return f"""# written by bench/hub_bench.py
{user}
worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/logs/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    sendfile on;
    access_log off;
    keepalive_requests 1000000;  # uvicorn never closes a keep-alive connection: neither does nginx here
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def start_nginx(nginx: str, work: Path, root: Path, logs: Path) -> Service:
    port = free_port()
    (work / "nginx-temp").mkdir(exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(nginx_config(work, root, port))
    log = logs / "nginx-error.log"
    command = [nginx, "-p", f"{work}/", "-e", str(log), "-c", str(conf)]
    out = open(logs / "nginx-stdout.log", "wb")
    try:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    finally:
        out.close()
    return Service("nginx", process, log, f"http://127.0.0.1:{port}")


# -- memory: VmHWM per phase, VmRSS sampled every 50 ms --------------------------------------------

@dataclass
class PhaseMemory:
    vmhwm_mb: float = 0.0  # sum over the server's processes of VmHWM (reset at the phase start)
    sampled_peak_mb: float = 0.0  # highest sampled sum of VmRSS
    samples: int = 0
    hwm_reset: bool = False
    cpu_s: float = 0.0
    wall_s: float = 0.0


class RssMonitor:
    """Samples the server's RSS every ``interval`` seconds and records peaks per named phase."""

    def __init__(self, service: Service, interval: float = 0.05) -> None:
        self.service = service
        self.interval = interval
        self.phases: dict[str, PhaseMemory] = {}
        self._current: PhaseMemory | None = None
        self._pids: list[int] = []  # looked up at each phase start, not per sample: a /proc scan costs CPU
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="rss-monitor", daemon=True)

    def __enter__(self) -> RssMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss = sum(vm_kib(pid, "VmRSS") or 0 for pid in self._pids) * 1024 / MB
            with self._lock:
                if self._current is not None:
                    self._current.samples += 1
                    self._current.sampled_peak_mb = max(self._current.sampled_peak_mb, rss)

    @contextmanager
    def phase(self, name: str):
        memory = self.phases.setdefault(name, PhaseMemory(hwm_reset=True))
        pids = self.service.pids()
        memory.hwm_reset = all(reset_peak_rss(pid) for pid in pids) and memory.hwm_reset
        cpu_before, start = cpu_seconds(pids), time.perf_counter()
        with self._lock:
            self._current, self._pids = memory, pids
        try:
            yield memory
        finally:
            with self._lock:
                self._current = None
            pids = self.service.pids()
            memory.wall_s += time.perf_counter() - start
            memory.cpu_s += cpu_seconds(pids) - cpu_before
            hwm = sum(vm_kib(pid, "VmHWM") or 0 for pid in pids) * 1024 / MB
            memory.vmhwm_mb = max(memory.vmhwm_mb, hwm)

    def peak_mb(self, name: str) -> float:
        memory = self.phases[name]
        return max(memory.vmhwm_mb, memory.sampled_peak_mb)


# -- page cache ------------------------------------------------------------------------------------

def can_drop_caches() -> bool:
    if os.geteuid() != 0:
        return False
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
        return True
    except OSError:
        return False


def prepare_cache(cold: bool, *paths: Path) -> None:
    """Flush dirty pages, then drop the page cache (cold) or read the inputs once (warm)."""
    os.sync()
    if cold:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
        return
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(CHUNK):
                pass
