"""The resident command server: a warm process that forks one child per ``niyantra build``, as
Bazel's server, Gradle's daemon and Nx's daemon keep a build tool warm between calls.

A ``niyantra build`` spends most of its time in Python's start and imports (typer, rich, nats,
eventsourcing, the importer: ~0.25 s), which on a cached build is most of its wall time. The first
``niyantra build`` starts this server in the background (and runs in its own process as before);
each later one connects to the server's socket and hands over its argv, cwd, environment and its
stdin, stdout and stderr file descriptors (SCM_RIGHTS). The server, which imported everything the
command needs once, forks a child; the child takes the caller's descriptors, folder and
environment, recreates the consoles, runs the command as a fresh process would, and exits; the
server sends the child's exit status back and the client exits with it. Ctrl-C and SIGTERM on the
client are forwarded to the child; a client that goes away takes its child with it (SIGTERM).

Safety: the socket lives in a folder only its user may open (0700, owned by the user; the server
also checks each peer's uid), so no other user can run commands as this one. A server serves one
code version: its socket's name is a digest of the interpreter, the site-packages folder and every
source file of the project (names, sizes, mtimes), so an edit or an upgrade starts a new server and
the old one, unused, exits after ``NIYANTRA_RESIDENT_IDLE_S`` (600 s) or once its socket is gone.
``NIYANTRA_RESIDENT_TRACE=1`` makes a served command say so on stderr, with the server's pid.
``NIYANTRA_RESIDENT=0`` turns it off (every command in its own process, as ``bazel --batch``).
Anything that goes wrong before the child starts falls back to running in the calling process.

The client half (`run_resident`) imports only the standard library's light modules, so a command
served here costs the client ~20 ms.
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import signal
import socket
import struct
import sys
from pathlib import Path

# the commands served by the resident server: every one but those that are an instance's processes
# (server, up, autoscale, projector, decider, watchdog, agent, console: long-lived, supervised)
COMMANDS = frozenset(
    ("build import status snapshot watch why pause resume explain events metrics verify schema validate submit "
     "approve reject cancel wait views replay whatif gantt simulate artifacts backlog logs query down").split()
)  # fmt: skip
IDLE_S = 600.0
PACKAGES = ("orchestrator", "projections", "node_agent", "schemas")
PRELOAD = (  # what the served commands import, loaded once in the server
    "asyncio",
    "nats",
    "nats.js",
    "msgspec",
    "orjson",
    "rich.live",
    "rich.table",
    "orchestrator.graphs.ninja.load",
    "orchestrator.graphs.graphfile",
    "orchestrator.graphs.submission",
    "orchestrator.runtime.connection",
    "orchestrator.reports.queries",
    "orchestrator.writeside.application",
    "orchestrator.cli.graph",
    "orchestrator.cli.wait",
)
_MAX_REQUEST = 4 << 20


def enabled(argv: list[str]) -> bool:
    """Whether ``argv`` (without the program name) is a command the resident server serves."""
    if os.environ.get("NIYANTRA_RESIDENT", "1").lower() in ("0", "no", "off", "false"):
        return False
    command = next((a for a in argv if not a.startswith("-")), None)
    return command in COMMANDS and "--help" not in argv


def code_key() -> str:
    """A digest of the code a server runs: the interpreter, site-packages, every project source file."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256(f"{sys.executable}\0{sys.version}\0{root}\0{os.environ.get('PYTHONPATH', '')}".encode())
    for entry in sys.path:
        if entry.endswith("site-packages") and os.path.isdir(entry):
            st = os.stat(entry)
            h.update(f"{entry}\0{st.st_mtime_ns}\0".encode())
    for package in PACKAGES:
        for folder, dirs, files in os.walk(root / package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    st = os.stat(os.path.join(folder, name))
                    h.update(f"{folder}/{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


def socket_dir() -> Path | None:
    """The user's private folder for the server's socket (None when it is not private)."""
    base = os.environ.get("NIYANTRA_RESIDENT_DIR")
    if base:
        folder = Path(base)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        folder = Path(os.environ["XDG_RUNTIME_DIR"]) / "niyantra"
    else:
        folder = Path(f"/tmp/niyantra-{os.getuid()}")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None  # someone else's, or open to others: never listen or connect there
    return folder


def run_resident(argv: list[str]) -> int | None:
    """Run ``argv`` in a child of the resident server; its exit status, or None when it could not
    be started there (the caller then runs the command itself; a server is started for next time)."""
    folder = socket_dir()
    if folder is None:
        return None
    key = code_key()
    path = folder / f"{key}.sock"
    conn = _connect(path)
    if conn is None:
        _start_server(key, folder)
        return None
    with conn:
        request = json.dumps({"argv": argv, "prog": program_name(), "cwd": os.getcwd(), "env": dict(os.environ)})
        try:
            fds = array.array("i", [0, 1, 2])
            data = request.encode()
            conn.sendmsg([struct.pack("!I", len(data)), data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            reader = conn.makefile("rb")
            started = json.loads(reader.readline() or b"null")
        except (OSError, ValueError):
            return None
        if not isinstance(started, dict) or "pid" not in started:
            return None
        child = int(started["pid"])
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda s, _f: _forward(child, s))
        try:
            ended = json.loads(reader.readline() or b"null")
        except (OSError, ValueError):
            ended = None
    if not isinstance(ended, dict) or "exit" not in ended:
        print("niyantra: the resident server lost the command (NIYANTRA_RESIDENT=0 runs it here)", file=sys.stderr)
        return 1
    return int(ended["exit"])


def program_name() -> str:
    """How this process was called, as click names it in usage lines (``niyantra``, or ``python -m
    orchestrator.cli.main``): the served child's own ``__main__`` is the server's."""
    package = getattr(sys.modules.get("__main__"), "__package__", None)
    if not package:
        return os.path.basename(sys.argv[0])
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    return f"python -m {package}" + ("" if name == "__main__" else f".{name}")


def _forward(child: int, sig: int) -> None:
    try:
        os.kill(child, sig)
    except ProcessLookupError:
        pass


def _connect(path: Path) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
    except OSError:
        s.close()
        return None
    return s


def _start_server(key: str, folder: Path) -> None:
    """Start a server for ``key`` in the background, detached from this terminal and its pipes."""
    try:
        pid = os.fork()
    except OSError:
        return
    if pid:
        os.waitpid(pid, 0)  # the intermediate child exits at once; the server is its orphan
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, 1 << 16)
        os.chdir("/")  # never import a look-alike package from the caller's folder
        env = {**os.environ, "NIYANTRA_RESIDENT_KEY": key, "NIYANTRA_RESIDENT_DIR": str(folder)}
        os.execve(sys.executable, [sys.executable, "-P", "-m", "orchestrator.cli.residentserver"], env)
    finally:
        os._exit(1)
