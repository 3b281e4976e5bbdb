"""The watcher's status page in headless Chromium (Debian's, driven by playwright), and a claim
whose task the store lacks: reported (a warning line, verdict "missing" on the page and in the
metrics), then judged once `prover golden --store` brings the data."""

import shutil
from pathlib import Path

import pytest
from dispute_helpers import SUBMITTER, Match, ok, tiny_run
from node_process import running_node
from watch_helpers import WatcherProcess, tiny_task, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="no Chromium: apt-get install -y chromium (.ci/run does)"
)
# What the probe of this machine found Chromium needs headless here (no sandbox as root; no
# connection anywhere but the page's).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WATCHER = 2


def test_the_status_page_shows_a_claim_missing_data_then_judged(tmp_path_factory, tmp_path):
    with running_node() as rpc:
        match = Match(rpc, tiny_run(tmp_path_factory), tmp_path)
        ok(match.party("submit", SUBMITTER, match.submitter))
        store = tmp_path / "store"
        store.mkdir()
        watcher = WatcherProcess(
            rpc,
            *("--basedir", str(tmp_path / "watcher"), "--deployment", str(match.deployment)),
            *("--store", str(store), "--account", str(WATCHER), "--metrics-port", "0"),
        )
        try:
            url = watcher.wait_for("serving")["url"]
            assert watcher.wait_for("verdict")["verdict"] == "missing"
            assert any("cannot judge it: the store" in line for line in watcher.err_lines)
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page()
                page.goto(url)
                assert page.title() == "prover watch"
                sync_api.expect(page.locator("#claims-seen")).to_have_text("1")
                sync_api.expect(page.locator("#verdicts")).to_have_text("missing 1")
                sync_api.expect(page.locator("#claims tbody tr")).to_have_count(1)
                sync_api.expect(page.locator("#claims tbody tr td").nth(5)).to_have_text("missing")
                page.screenshot(path=tmp_path / "status.png")
                # The data arrives: the watcher looks again within 10 s; the page refreshes itself.
                tiny_task(tmp_path_factory, store, tmp_path / "task", bytes([1, 2, 3, 4]))
                sync_api.expect(page.locator("#verdicts")).to_have_text("agree 1", timeout=60_000)
                page.click("text=metrics")
                assert 'prover_watch_claims{verdict="agree"} 1.0' in page.content()
                browser.close()
            wait_until(lambda: watcher.events("verdict")[-1]["verdict"] == "agree", 10, "the agree line")
        finally:
            watcher.stop()
