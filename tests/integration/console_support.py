"""Helpers for the console tests: a console process, a headless Chromium, HTTP with credentials."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.runtime.ports import free_port

CHROMIUM = os.environ.get("NIYANTRA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
ARTIFACTS = Path(os.environ.get("NIYANTRA_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))


def get(url: str, login: tuple[str, str] | None = None) -> tuple[int, str]:
    """Status and body of a GET (HTTP errors are answers, not exceptions)."""
    req = urllib.request.Request(url)
    if login is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@contextmanager
def console_process(nats_url: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`niyantra console` on a free port; yields its base URL once it answers.

    Its output goes to a file (a pipe nobody reads would block a console that logs a lot), shown
    when it fails to start or to stop.
    """
    port = free_port()
    cmd = [str(Path(sys.executable).parent / "niyantra"), "console", "--port", str(port), "--nats-url", nats_url]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_it_answers(proc, base, out)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=15)
            out.seek(0)
            text = out.read().decode(errors="replace")
            if "Traceback" in text:
                raise AssertionError(f"the console logged a traceback:\n{text}")


def _wait_until_it_answers(proc: subprocess.Popen[bytes], base: str, out: Any) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/metrics", timeout=2):
                return
        except urllib.error.HTTPError as e:
            e.close()
            return  # it answers (401 with auth on)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                out.seek(0)
                raise AssertionError(f"the console did not start: {out.read().decode(errors='replace')}") from None
            time.sleep(0.1)


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium page (Debian's chromium, driven by Playwright)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b.new_page(viewport={"width": 1300, "height": 900})
        finally:
            b.close()
