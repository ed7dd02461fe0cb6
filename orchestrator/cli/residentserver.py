"""The resident command server's process (see `orchestrator.cli.resident` for what it is for).

One server per code key (``NIYANTRA_RESIDENT_KEY``), holding ``<key>.lock`` for its life so a second
one started in a race exits at once. It imports what the served commands need, then listens on
``<key>.sock``. Each request brings argv, cwd and environment, and the caller's stdin, stdout and
stderr; the server forks a child that becomes that command (`_become`), and when the child exits
it sends ``{"exit": status}`` back (128 + N for a child killed by signal N). The loop has no thread
and no event loop, so a fork copies nothing running. It exits after ``NIYANTRA_RESIDENT_IDLE_S``
(600 s) without a request, or when its socket is removed or replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import json
import locale
import os
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator.cli.resident import _MAX_REQUEST, IDLE_S, PRELOAD

_TICK_S = 1.0  # how soon an idle server notices its socket is gone


def serve(key: str, folder: Path, idle_s: float) -> None:
    """Serve requests on ``folder/<key>.sock`` until idle for ``idle_s`` or the socket is gone."""
    lock = open(folder / f"{key}.lock", "w")  # noqa: SIM115 -- held for the server's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server of this key is up
    path = folder / f"{key}.sock"
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    _preload()
    gc.collect()
    gc.freeze()  # the preloaded objects are never scanned by a child's collector (no copy of their pages)
    listener.listen(64)
    inode = path.stat().st_ino
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}
    last = time.monotonic()
    try:
        while children or (time.monotonic() - last < idle_s and _ours(path, inode)):
            timeout = _TICK_S if children else max(0.0, min(_TICK_S, idle_s - (time.monotonic() - last)))
            ready, _, _ = select.select([listener, wake_r, *children.values()], [], [], timeout)
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
            _reap(children)
            for pid, conn in [(p, c) for p, c in children.items() if c in ready]:
                if not _recv(conn):  # the client went away: so does its command
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
            if listener in ready and _ours(path, inode):
                conn, _ = listener.accept()
                last = time.monotonic()
                _accept(conn, listener, children, (wake_r, wake_w))
    finally:
        if _ours(path, inode):
            path.unlink()
        with contextlib.suppress(OSError):
            (folder / f"{key}.lock").unlink()  # a server racing for it is alone by the socket's inode


def _recv(conn: socket.socket) -> bytes:
    """What a client sent after its request (nothing is expected; b"" once it is gone)."""
    try:
        return conn.recv(4096)
    except OSError:
        return b""


def _ours(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino == inode
    except OSError:
        return False


def _preload() -> None:
    for name in PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    with contextlib.suppress(Exception):
        from orchestrator.cli.main import load
        from orchestrator.cli.resident import COMMANDS

        for command in COMMANDS:
            load(command)


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"exit": code if code >= 0 else 128 - code}).encode() + b"\n")
        conn.close()


def _accept(conn: socket.socket, listener: socket.socket, children: dict[int, socket.socket], wake: Any) -> None:
    """Read one request and fork its child; a bad or foreign request is closed unanswered."""
    try:
        conn.settimeout(5.0)
        _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if uid != os.getuid():
            raise PermissionError("another user")
        request, fds = _read_request(conn)
        conn.settimeout(None)
    except (OSError, ValueError):
        conn.close()
        return
    pid = os.fork()
    if pid == 0:
        try:
            listener.close()
            for c in children.values():
                c.close()
            for fd in wake:
                os.close(fd)
            conn.close()
            _become(request, fds)
        except BaseException as e:  # noqa: BLE001 -- said on the caller's stderr, then gone
            with contextlib.suppress(OSError):
                os.write(2, f"niyantra: the resident server could not run the command: {e!r}\n".encode())
        finally:
            os._exit(1)
    for fd in fds:
        os.close(fd)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    children[pid] = conn


def _read_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, ancillary, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(3 * 4))
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += list(struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) - len(payload) % 4]))
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise ValueError("a request brings stdin, stdout and stderr")
    while len(data) < 4 or len(data) < 4 + struct.unpack("!I", data[:4])[0]:
        if len(data) > _MAX_REQUEST:
            raise ValueError("request too large")
        more = conn.recv(65536)
        if not more:
            raise ValueError("request cut short")
        data += more
    request = json.loads(data[4 : 4 + struct.unpack("!I", data[:4])[0]])
    if not isinstance(request, dict) or not isinstance(request.get("argv"), list):
        raise ValueError("not a request")
    return request, fds


def _become(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: take the caller's descriptors, folder, environment and argv, then run
    the command as ``niyantra`` would (it ends the process itself)."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    sys.argv = ["niyantra", *map(str, request["argv"])]
    with contextlib.suppress(locale.Error):
        locale.setlocale(locale.LC_CTYPE, "")
    encoding = os.environ.get("PYTHONIOENCODING") or locale.getencoding()
    sys.stdin = open(0, encoding=encoding, closefd=False)  # noqa: SIM115 -- the process's own
    sys.stdout = open(1, "w", encoding=encoding, closefd=False, buffering=1 if os.isatty(1) else -1)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding=encoding, errors="backslashreplace", closefd=False, buffering=1)  # noqa: SIM115
    if os.environ.get("NIYANTRA_RESIDENT_TRACE"):
        print(f"niyantra: served by the resident server (pid {os.getppid()}) as pid {os.getpid()}", file=sys.stderr)
    from orchestrator.cli import app
    from orchestrator.cli.main import main

    app.reset_consoles()
    try:
        main(resident=False, prog_name=str(request.get("prog") or "niyantra"))
    except KeyboardInterrupt:  # Ctrl-C forwarded by the client: the status a shell gives it
        os._exit(128 + signal.SIGINT)


if __name__ == "__main__":
    serve(
        os.environ["NIYANTRA_RESIDENT_KEY"],
        Path(os.environ["NIYANTRA_RESIDENT_DIR"]),
        float(os.environ.get("NIYANTRA_RESIDENT_IDLE_S", IDLE_S)),
    )
