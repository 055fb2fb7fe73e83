"""End-to-end: Playwright drives Debian's Chromium (headless) against `activeprop serve`.

Label a batch with the keyboard, undo one, reload the page and find the state kept.
Skipped when no Chromium is installed (`.ci/run` installs it).
"""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from activeprop.labeling import init_project
from activeprop.store import ProjectStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    project = tmp_path / "digits"
    init_project(project, "digits")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "activeprop.cli", "serve", "--project",
                                str(project), "--port", str(port), "--no-browser"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "api/state", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield url, project
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield page
        browser.close()


def queue_ids(page) -> list[int]:
    return [int(card.get_attribute("data-id")) for card in page.locator(".card").all()]


def test_label_with_keyboard_undo_reload(server, page, tmp_path):
    url, project = server
    page.goto(url)
    page.wait_for_selector(".card")
    truth = ProjectStore(project).load_pool().y
    labeled = []
    for _ in range(5):  # a batch, labeled with number keys, one refit after each
        item = queue_ids(page)[0]
        labeled.append(item)
        version = page.locator("#version").inner_text()
        page.keyboard.press(str(truth[item]))
        page.wait_for_function(f"document.getElementById('version').textContent !== '{version}'")
        page.wait_for_function(f"!document.querySelector('.card[data-id=\"{item}\"]')")
    assert page.locator("#labeled").inner_text().startswith("5 /")
    missing = 10 - len(set(truth[labeled].tolist()))  # digits: 10 classes
    assert page.locator("#estimate-note").inner_text() == \
        f"(optimistic: {missing} of 10 classes have no label yet)"
    assert "Saved" in page.locator("#toast").inner_text()
    page.screenshot(path=str(tmp_path / "after-labels.png"))

    page.keyboard.press("u")  # undo the last one
    page.wait_for_function("document.getElementById('labeled').textContent.startsWith('4 /')")
    page.keyboard.press("ArrowRight")
    assert page.locator(".card.focused").get_attribute("data-index") == "1"
    page.keyboard.press("s")  # skip the focused item
    page.wait_for_function("document.getElementById('toast').textContent.startsWith('Skipped')")

    page.reload()
    page.wait_for_selector(".card")
    page.wait_for_function("document.getElementById('labeled').textContent.startsWith('4 /')")
    labels = json.loads(urllib.request.urlopen(url + "api/labels").read())["labels"]
    assert sorted(entry["item_id"] for entry in labels) == sorted(labeled[:4])
    assert all(entry["label"] == str(truth[entry["item_id"]]) for entry in labels)
    # The pool overview is drawn and an item opens for correction.
    page.locator("#overview div").first.click()
    page.wait_for_selector("#item-dialog[open]")
    assert page.locator("#item-title").inner_text().startswith("Item #")
    page.locator("#item-dialog button[aria-label=close]").click()
    # The model's settings are shown, and the class sizes can be declared from the page.
    assert page.locator("#settings").inner_text().startswith("Model: Poisson learning on a 15-NN graph")
    page.select_option("#priors", "uniform")
    page.locator("#priors-apply").click()
    page.wait_for_function("document.getElementById('toast').textContent.startsWith('Class sizes declared')")
    # Every queued item's picture arrives (each is read from the store when shown).
    page.wait_for_function("[...document.querySelectorAll('.card img')].every("
                           "image => image.complete && image.naturalWidth > 0)")
    page.screenshot(path=str(tmp_path / "class-sizes.png"))
    assert ProjectStore(project).meta("settings")["class_priors"] == "uniform"
