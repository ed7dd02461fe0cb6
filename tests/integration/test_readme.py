"""The README's walk-through, run as written (issue 17: the two cannot drift).

The fenced block after ``<!-- walkthrough -->`` in README.md is read from the file and run by
``bash -e`` from the repo root, its commands unchanged: the instance's port and folder come from
the environment (``NIYANTRA_PORT``, ``NIYANTRA_NATS_URL``, ``NIYANTRA_DATA_DIR``), which the README's
commands read, so the test sets a free port and a temporary folder and edits no text. Between the
commands the harness only echoes a marker, so each command's output and exit can be told apart.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from orchestrator.runtime.ports import free_port
from orchestrator.runtime.supervisor import down

pytestmark = pytest.mark.timeout(420)
ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- walkthrough -->"
_BLOCK = re.compile(r"^<!-- walkthrough -->\s*\n```(?:bash|sh|shell)\n(.*?)^```", re.M | re.S)


def walkthrough_blocks(readme: str) -> list[str]:
    """The shell blocks marked as the walk-through, in order."""
    blocks = _BLOCK.findall(readme)
    assert len(blocks) == readme.count(MARK), f"every {MARK} must be followed by a ```bash block"
    return blocks


def commands(block: str) -> list[str]:
    """The block's commands: one per line (a trailing backslash continues it); blank lines dropped."""
    out: list[str] = []
    pending = ""
    for line in block.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line + "\n"
            continue
        line = pending + line
        pending = ""
        if line.strip():
            out.append(line)
    assert not pending, "the block ends inside a continued line"
    return out


def test_the_block_reader() -> None:
    text = f"intro\n{MARK}\n```bash\na --x\n\nb \\\n  c\n```\nnot this\n```bash\nd\n```\n"
    (block,) = walkthrough_blocks(text)
    assert commands(block) == ["a --x", "b \\\n  c"]


def run_steps(steps: list[str], env: dict[str, str]) -> tuple[int, dict[int, str]]:
    """Run the steps in one `bash -e`; return its exit code and each step's output (stdout+stderr)."""
    script = "set -e\n" + "".join(f"echo '@@step {i}'\n{s}\n" for i, s in enumerate(steps)) + "echo '@@done'\n"
    p = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=400,
    )
    outputs: dict[int, str] = {}
    current = None
    for line in p.stdout.splitlines():
        m = re.fullmatch(r"@@step (\d+)|@@done", line)
        if m:
            current = int(m.group(1)) if m.group(1) else None
            if current is not None:
                outputs[current] = ""
        elif current is not None:
            outputs[current] += line + "\n"
    return p.returncode, outputs


def _figure(metrics: str, name: str) -> float:
    m = re.search(rf"│ {re.escape(name)}\s+│ ([^│]+?)\s+│", metrics)
    assert m, f"metrics has no row {name!r}:\n{metrics}"
    return float(m.group(1))


def test_the_readme_walkthrough_runs_verbatim(tmp_path: Path) -> None:
    assert (ROOT / ".venv" / "bin" / "activate").exists(), (
        "the walk-through needs .venv (run scripts/demo or scripts/test)"
    )
    (block,) = walkthrough_blocks((ROOT / "README.md").read_text())
    steps = commands(block)
    port, data = free_port(), tmp_path / "instance"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NIYANTRA_", "VIRTUAL_ENV"))}
    env.update(NIYANTRA_PORT=str(port), NIYANTRA_NATS_URL=f"nats://127.0.0.1:{port}", NIYANTRA_DATA_DIR=str(data))
    env["COLUMNS"] = "200"  # rich wraps tables to the terminal; one figure per line
    try:
        rc, out = run_steps(steps, env)
    finally:
        down(data)
    ran = max(out, default=-1)
    assert rc == 0 and ran == len(steps) - 1, f"step {ran} failed ({steps[ran]!r}), exit {rc}:\n{out.get(ran)}"

    def output_of(command: str) -> str:
        found = [out[i] for i, s in enumerate(steps) if s.startswith(command)]
        assert len(found) == 1, f"the walk-through should run {command!r} once: {steps}"
        return found[0]

    assert f"niyantra is up at nats://127.0.0.1:{port}" in output_of("niyantra up")
    assert (data / "logs").is_dir() and (data / "archive").is_dir()  # the temp folder, not .niyantra
    assert "submitted graph demo: 13 tasks" in output_of("niyantra submit examples/demo.toml")
    assert re.search(
        r"^demo/T-012 \((pending|ready|dispatched|running|succeeded)\): \S", output_of("niyantra why T-012"), re.M
    )
    waited = output_of("niyantra wait --graph demo")
    assert "Total tasks: 14 | Completed: 14" in waited and "Failed: 0" in waited

    explained = output_of("niyantra explain T-005")
    assert "by rule integration-tests after T-001 ended success" in explained
    chosen = re.findall(r"^ ✓\s+(node-\d)\s+\d+\.\d+\s+finish in", explained, re.M)
    others = re.findall(r"^ [·✗]\s+(node-\d)\s+\d+\.\d+\s+", explained, re.M)  # · eligible, ✗ not (e.g. busy)
    assert len(chosen) == 1 and sorted(chosen + others) == ["node-1", "node-2", "node-3"], explained

    queried = output_of("niyantra query")
    rows = re.findall(r"^│ (node-\d)\s+│ (\d+)\s+│ ([\d.]+)\s+│", queried, re.M)
    assert [r[0] for r in rows] == ["node-1", "node-2", "node-3"] and "3 row(s)" in queried, queried
    assert sum(int(r[1]) for r in rows) == 15  # 14 tasks, T-009 twice (it fails once by design)

    metrics = output_of("niyantra metrics")
    assert "—" not in metrics and "null" not in metrics and "None" not in metrics, metrics
    assert _figure(metrics, "graphs completed") == 1 and _figure(metrics, "tasks generated by rules") == 1
    assert 0 < _figure(metrics, "first attempt success rate") < 1 and _figure(metrics, "success after retry rate") == 1
    assert _figure(metrics, "decisions") >= 15 and _figure(metrics, "decision latency ms avg") > 0
    assert str(data / "archive") in metrics

    stopped = output_of("niyantra down")
    assert "stopped:" in stopped and "nats-server" in stopped and "agent-node-3" in stopped
