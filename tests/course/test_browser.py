"""The chapter 1 sweep panel in a real browser: JupyterLab on loopback, headless Chromium driven by Playwright.

Runs the student notebook's cells up to the panel, checks its widgets render, picks another rank, presses Train and
waits for the new run's plot and table row; saves screenshots (tmp_path, and $LORAKIT_ARTIFACTS when set).
Skipped only when /usr/bin/chromium is missing and LORAKIT_REQUIRE_BROWSER is unset (CI sets it: then it fails).
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.browser]  # JupyterLab and a training run

CHROMIUM = Path("/usr/bin/chromium")
CHAPTER = REPO / "notebooks" / "release" / "01_hyperparameters"
NOTEBOOK = "01_hyperparameters.ipynb"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
SERVER_CONFIG = """
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.ServerApp.open_browser = False
"""

if not CHROMIUM.exists() and not os.environ.get("LORAKIT_REQUIRE_BROWSER"):
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); set LORAKIT_REQUIRE_BROWSER=1 to make "
                "this a failure", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def widget_cell_index(notebook: Path) -> int:
    """Index of the first cell that builds the sweep panel."""
    cells = json.loads(notebook.read_text())["cells"]
    found = [i for i, cell in enumerate(cells) if "SweepPanel(" in "".join(cell["source"])]
    assert found, f"no cell of {notebook.name} contains SweepPanel("
    return found[0]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 (random port, random token) whose root holds a copy of chapter 1."""
    root, home = tmp_path / "root", tmp_path / "home"
    shutil.copytree(CHAPTER, root, ignore=shutil.ignore_patterns("runs", ".ipynb_checkpoints"))  # no local outputs
    for sub in ("config", "data", "runtime", "settings", "workspaces"):
        (home / sub).mkdir(parents=True)
    (home / "config" / "jupyter_server_config.py").write_text(SERVER_CONFIG)
    notification = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))  # no news toast
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1")
    env.pop("MPLBACKEND", None)  # the kernel uses its own inline backend, as for a student
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],  # CI containers run as root
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
        time.sleep(0.25)
    try:
        yield {"url": f"{base}/lab/tree/{NOTEBOOK}?token={token}", "root": root}
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def page(tmp_path):
    """A fresh headless Chromium page (Debian's chromium; Playwright's own browsers are not downloaded)."""
    if not CHROMIUM.exists():
        pytest.fail(f"LORAKIT_REQUIRE_BROWSER is set but {CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _artifact_dirs(tmp_path: Path) -> list[Path]:
    folders = [tmp_path / "screenshots"]
    if os.environ.get("LORAKIT_ARTIFACTS"):
        folders.append(Path(os.environ["LORAKIT_ARTIFACTS"]) / "browser")
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def _save_screenshots(page, panel, tmp_path: Path) -> list[Path]:
    saved = []
    for folder in _artifact_dirs(tmp_path):
        panel.screenshot(path=str(folder / "sweep_panel.png"))
        page.screenshot(path=str(folder / "chapter1_lab.png"))
        saved += [folder / "sweep_panel.png", folder / "chapter1_lab.png"]
    return saved


def test_sweep_panel_trains_from_the_train_button(lab, page, tmp_path):
    """Chapter 1 in JupyterLab: the panel renders (sliders, Train), Train trains a new point, its plot and row show."""
    try:
        _drive_the_panel(lab, page, tmp_path)
    except Exception:
        for folder in _artifact_dirs(tmp_path):  # what the browser showed when it failed
            page.screenshot(path=str(folder / "failure.png"), full_page=True)
        raise


def _drive_the_panel(lab, page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    n_cells = widget_cell_index(lab["root"] / NOTEBOOK) + 1
    page.set_default_timeout(60_000)
    page.goto(lab["url"])
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    expect(notebook.locator(".jp-Cell").first).to_be_visible(timeout=90_000)
    # the status bar says Idle only once the kernel is connected (Shift+Enter before that skips the cell)
    expect(page.get_by_role("button", name=re.compile(r"Python 3.*\| Idle"))).to_be_visible(timeout=90_000)

    # run the cells one by one from the top, as a student would (Shift+Enter), through the panel's cell
    notebook.locator(".jp-Cell").first.locator(".jp-InputPrompt").click()  # selects it (no link clicked)
    page.keyboard.press("Escape")
    for _ in range(n_cells):
        page.keyboard.press("Shift+Enter")
    cell = notebook.locator(".jp-CodeCell").filter(has_text="SweepPanel(").first
    expect(cell.locator(".jp-InputPrompt")).not_to_have_text("[ ]:", timeout=10_000)  # queued or running
    panel = cell.locator(".jp-OutputArea-output .widget-vbox").first
    expect(panel).to_be_visible(timeout=120_000)  # the cell trains the default point before it shows the panel
    expect(cell).not_to_contain_text("Error displaying widget")

    # the controls: dropdowns (dataset, rank, alpha, targets), sliders (LR, dropout, steps), the three buttons
    expect(panel.locator(".widget-dropdown select")).to_have_count(4)
    visible_sliders = panel.locator(".widget-slider:visible")
    expect(visible_sliders).to_have_count(3)
    train = panel.get_by_role("button", name="Train")
    expect(train).to_be_visible()
    expect(panel.get_by_role("button", name="Stop")).to_be_visible()
    expect(panel.locator(".widget-html").filter(has_text="trainable parameters")).to_be_visible()
    rows = panel.locator(".widget-html table tr")
    expect(rows).to_have_count(2, timeout=120_000)  # the header and the cell's own run

    # another rank, then Train: a second run appears in the table, the message says Done, the plot is redrawn
    rank = panel.locator(".widget-dropdown").filter(has_text="rank r").locator("select")
    rank.select_option(label="4")
    expect(panel.locator(".widget-html").filter(has_text="trainable parameters")).to_contain_text("73,984")
    train.click()
    expect(rows).to_have_count(3, timeout=120_000)
    expect(panel.get_by_text("Done: r=4", exact=False)).to_be_visible()
    expect(rows.nth(2)).to_be_visible()
    assert rows.nth(2).locator("td").nth(2).inner_text() == "4"  # the new row's rank column
    image = panel.locator(".widget-output img")
    expect(image).to_have_count(1)
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert image.evaluate("img => img.complete && img.naturalWidth > 100 && img.naturalHeight > 100")
    panel.scroll_into_view_if_needed()
    for path in _save_screenshots(page, panel, tmp_path):
        assert path.stat().st_size > 10_000
