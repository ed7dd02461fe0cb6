"""The web console in a real browser against a real instance (`niyantra up`, three agents)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.runtime.auth import read_credentials
from orchestrator.runtime.ports import free_port
from orchestrator.runtime.supervisor import UpSettings, down, up
from orchestrator.writeside.api import Graph
from tests.integration.console_support import ARTIFACTS, browser, console_process, get

pytestmark = pytest.mark.timeout(240)
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.toml"
NIYANTRA = str(Path(sys.executable).parent / "niyantra")


def niyantra(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NIYANTRA, *args], capture_output=True, text=True, timeout=60, env={"NIYANTRA_NATS_URL": url, "PATH": ""}
    )


def wait_for(fn, timeout: float = 60.0, message: str = ""):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {message} (last: {last!r})")


def gated_graph() -> Graph:
    g = Graph("gated-release", title="a tier-3 step waits for a person")
    g.task("build-app", command="echo built")
    g.task("deploy-prod", command="echo deployed", depends_on=["build-app"], tier=3)
    return g


def test_console_shows_the_run_explains_a_task_approves_and_exports_metrics(tmp_path, capsys):
    data = tmp_path / "inst"
    m = up(UpSettings(data_dir=data, port=free_port(), agents=3, slots=2))
    try:
        url = m.url
        assert niyantra("submit", str(DEMO), url=url).returncode == 0
        gated_graph().submit(url)
        with console_process(url) as base, browser() as page:
            page.goto(base + "/")
            page.wait_for_selector("a.graph:has-text('demo')")
            page.goto(base + "/graph?id=demo")
            # live: the page follows the run until every task of the demo shows succeeded
            page.wait_for_function(
                "() => { const t = [...document.querySelectorAll('svg.dag g.task')];"
                " return t.length === 14 && t.every(g => g.dataset.state === 'succeeded'); }",
                timeout=90_000,
            )
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "console-graph.png"
            page.screenshot(path=str(shot), full_page=True)
            with capsys.disabled():
                print(f"\nthe graph page's screenshot: {shot}")
            assert shot.stat().st_size > 10_000
            assert page.locator("table.tasks tbody tr").count() == 14
            assert "critical path: T-001" in page.inner_text("main")

            page.goto(base + "/task?graph=demo&task=T-005")
            assert page.locator("table.candidates tbody tr").count() == 3  # every node a candidate
            assert "generated at seq" in page.inner_text("main")
            assert "integration: 42 passed" in page.inner_text("pre.log")

            # the tier-3 task waits for a person; approving it in the console runs it
            page.goto(base + "/trust")
            page.wait_for_selector("table.approvals >> text=deploy-prod", timeout=60_000)
            page.fill("table.approvals input[name=by]", "ana")
            with page.expect_navigation():
                page.click("table.approvals button.approve")
            page.wait_for_function(
                "() => !document.querySelector('table.approvals')"
                " || !document.querySelector('table.approvals').innerText.includes('deploy-prod')"
            )
            page.goto(base + "/task?" + "graph=" + quote("gated-release") + "&task=" + quote("deploy-prod"))
            page.wait_for_selector("p.snapshot .s-succeeded", timeout=60_000)

            status, text = get(base + "/task?graph=demo&task=T-999")
            assert status == 404 and "T-999" in text and "demo" in text
            status, text = get(base + "/graph?id=nope")
            assert status == 404 and "nope" in text

            archived = wait_for(
                lambda: (
                    (
                        r := json.loads(
                            niyantra("metrics", "--json", "--archive-dir", str(data / "archive"), url=url).stdout
                            or "{}"
                        )
                    )
                    and r.get("graphs_completed") == 2
                    and r
                ),
                message="the archive holds both runs",
            )
            _, text = get(base + "/metrics")
            samples = {s.name + json.dumps(s.labels, sort_keys=True): s.value
                       for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip
        assert samples['niyantra_tasks{"state": "succeeded"}'] == 16
        assert samples["niyantra_graphs_completed{}"] == archived["graphs_completed"] == 2
        assert samples["niyantra_first_attempt_success_ratio{}"] == archived["first_attempt_success_rate"]
        assert samples["niyantra_node_utilization_ratio{}"] == archived["node_utilization"]
        assert samples['niyantra_dispatches_total{"phase": "run"}'] == 17  # 16 tasks, T-009 twice
        assert samples["niyantra_decision_latency_seconds_count{}"] == archived["decisions"]
        assert samples["niyantra_malformed_events_total{}"] == 0
        assert samples['niyantra_autonomy_level{"level": "full"}'] == 1
    finally:
        down(data)


def post(url: str, form: dict[str, str], login: tuple[str, str] | None = None) -> int:
    """The status of a form POST, redirects not followed (a 303 is the answer)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    req = urllib.request.Request(url, data=urlencode(form).encode())
    if login is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode())
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        e.close()
        return e.code


def test_console_with_auth_refuses_strangers_and_lets_only_admin_judge(tmp_path, monkeypatch):
    data = tmp_path / "inst"
    m = up(UpSettings(data_dir=data, port=free_port(), agents=1, slots=1, auth=True))
    try:
        creds = read_credentials(data / "run")
        admin = ("admin", creds["admin"])
        env = {"NIYANTRA_USER": "admin", "NIYANTRA_PASSWORD": creds["admin"]}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        gated_graph().submit(m.url)
        task = "/task?graph=gated-release&task=deploy-prod"
        judged = {"graph": "gated-release", "task": "deploy-prod", "by": "ana", "reason": "release day"}
        with console_process(m.url, env) as base:
            assert get(base + "/")[0] == 401
            assert get(base + "/metrics")[0] == 401
            assert get(base + "/", ("admin", "wrong"))[0] == 401
            status, text = get(base + "/", admin)
            assert status == 200 and "runs" in text
            agent = next(u for u in creds if u.startswith("agent"))
            status, text = get(base + "/trust", (agent, creds[agent]))
            assert status == 200 and "approvals waiting" in text
            wait_for(lambda: "deploy-prod" in get(base + "/trust", admin)[1].partition("approvals waiting")[2],
                     message="deploy-prod waits for approval")  # fmt: skip
            assert post(base + "/approve", judged) == 401
            assert post(base + "/approve", judged, ("admin", "wrong")) == 401
            assert post(base + "/approve", judged, (agent, creds[agent])) == 403
            assert 'class="state s-pending"' in get(base + task, admin)[1]  # nothing was appended
            assert post(base + "/approve", judged, admin) == 303
            wait_for(lambda: '<p class="snapshot"><span class="state s-succeeded"' in get(base + task, admin)[1],
                     message="deploy-prod ran once approved")  # fmt: skip
            # the write side's check still applies: a second approval is refused, shown as 409
            assert post(base + "/approve", judged, admin) == 409
    finally:
        down(data)
