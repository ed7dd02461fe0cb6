"""The peers of scripts/bench: each durable orchestrator (and Dask running shell tasks) on the same
two workloads as niyantra, each in its own venv, one after the other; one JSON document on stdout.

A peer ``P`` is installed from the pyproject extra ``bench-P`` into ``.venv-bench/P`` (made here on
first use, remade when the extra's list changes; their pins conflict with each other and with
niyantra's), then its runner (``P_peer.py`` beside this file) runs there and prints its JSON. The
Dask peer runs in the project's .venv (the ``bench`` extra). A peer that cannot be installed, run
or finished in ``--timeout`` seconds gets a string saying what happened, never a blank.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
RUNNERS = {
    "dask_shell": "dask_shell.py",
    "celery": "celery_peer.py",
    "dbos": "dbos_peer.py",
    "prefect": "prefect_peer.py",
    "airflow": "airflow_peer.py",
}
NOTE = (
    "measured on a 2-core machine shared with other work (load_at_start: 1, 5, 15 min load averages "
    "when this run began): figures are noisy, compare within one run"
)


def say(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


def requirements(peer: str) -> list[str]:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return list(extras[f"bench-{peer}"])


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def ensure_venv(peer: str) -> Path | str:
    """The python of the peer's venv, installing it when needed; or why it could not be had."""
    if peer == "dask_shell":
        return Path(sys.executable)
    venv = ROOT / ".venv-bench" / peer
    python, stamp = venv / "bin" / "python", venv / ".installed"
    reqs = requirements(peer)
    if stamp.exists() and stamp.read_text() == "\n".join(reqs):
        return python
    say(f"installing {peer} ({', '.join(reqs)}) into {venv.relative_to(ROOT)}")
    steps = [[sys.executable, "-m", "venv", str(venv)], [str(python), "-m", "pip", "install", "--quiet", *reqs]]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            what = " ".join(cmd[-len(reqs) :])
            return f"could not install {peer}: {what}: exit {done.returncode}: {_tail(done.stderr)}"
    stamp.write_text("\n".join(reqs))
    return python


def run_peer(peer: str, scale: float, timeout: float, workloads: list[str]) -> Any:
    python = ensure_venv(peer)
    if isinstance(python, str):
        return python
    cmd = [str(python), str(HERE / RUNNERS[peer]), "--scale", str(scale)]
    cmd += [a for w in workloads for a in ("--workload", w)]
    say(f"{peer}: {' '.join(cmd[1:])}")
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return f"{peer} did not finish in {timeout:.0f} s (killed); its last words: {_tail(err, 6)}"
    sys.stderr.write(done.stderr[-4000:])
    if done.returncode != 0:
        return f"{peer} exited {done.returncode}: {_tail(done.stderr)}"
    try:
        out = json.loads(done.stdout)
    except json.JSONDecodeError as e:
        return f"{peer} printed no JSON ({e}): {_tail(done.stdout)}"
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peers", default=",".join(RUNNERS), help=f"comma-separated, of: {', '.join(RUNNERS)}")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the workloads' size (0.1: quick)")
    ap.add_argument("--quick", action="store_true", help="the same as --scale 0.1")
    ap.add_argument("--workload", choices=["independent", "layered"], action="append", help="default: both")
    ap.add_argument("--timeout", type=float, default=2400, help="seconds per peer (both workloads)")
    args = ap.parse_args()
    chosen = [p.strip() for p in args.peers.split(",") if p.strip()]
    if unknown := [p for p in chosen if p not in RUNNERS]:
        sys.exit(f"error: --peers: unknown peer {', '.join(unknown)}; choose from {', '.join(RUNNERS)}")
    scale = 0.1 if args.quick else args.scale
    out: dict[str, Any] = {
        "scale": scale,
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "notes": NOTE,
        "peers": {p: run_peer(p, scale, args.timeout, args.workload or []) for p in chosen},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
