"""End-to-end: Playwright drives Debian's Chromium (headless) against `activeprop serve`.

Label a batch with the keyboard, undo one, reload the page and find the state kept.
Skipped when no Chromium is installed (`.ci/run` installs it).
"""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from activeprop.project import init_project
from activeprop.store import ProjectStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(project, *options):
    """Start `activeprop serve` on a free port; returns the process and the URL it printed."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "activeprop.cli", "serve", "--project",
                                str(project), "--port", str(port), "--no-browser", *options],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    said = []  # what it says before the URL (building a graph on a cluster, say)
    while "activeprop labeler" not in (printed := process.stdout.readline()):
        said.append(printed)
        assert printed and len(said) < 50, "".join(said)
    return process, printed.split(": ", 1)[1].strip()


def wait_until_up(url: str, headers: dict | None = None) -> None:
    request = urllib.request.Request(url + "api/state", headers=headers or {})
    for _ in range(200):
        try:
            urllib.request.urlopen(request, timeout=1)
            return
        except OSError:
            time.sleep(0.1)


@pytest.fixture
def server(tmp_path):
    project = tmp_path / "digits"
    init_project(project, "digits")
    process, url = serve(project)
    wait_until_up(url)
    yield url, project
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    return browser.new_page(viewport={"width": 1280, "height": 900})


def wait_for(page, expression: str, timeout: float = 30) -> None:
    """Poll ``expression`` until it is true. Playwright's wait_for_function evaluates its
    string with eval, which the page's Content-Security-Policy (rightly) forbids;
    page.evaluate goes through the DevTools protocol instead."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout} s: {expression}")
        time.sleep(0.05)


def queue_ids(page) -> list[int]:
    """The queued items as drawn, once the page has drawn its latest queue."""
    wait_for(page, "document.getElementById('queue').getAttribute('aria-busy') === 'false'")
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
        wait_for(page, f"document.getElementById('version').textContent !== '{version}'")
        wait_for(page, f"!document.querySelector('.card[data-id=\"{item}\"]')")
    assert page.locator("#labeled").inner_text().startswith("5 /")
    missing = 10 - len(set(truth[labeled].tolist()))  # digits: 10 classes
    assert page.locator("#estimate-note").inner_text() == \
        f"(optimistic: {missing} of 10 classes have no label yet)"
    assert "Saved" in page.locator("#toast").inner_text()
    page.screenshot(path=str(tmp_path / "after-labels.png"))

    page.keyboard.press("u")  # undo the last one
    wait_for(page, "document.getElementById('labeled').textContent.startsWith('4 /')")
    page.keyboard.press("ArrowRight")
    assert page.locator(".card.focused").get_attribute("data-index") == "1"
    page.keyboard.press("s")  # skip the focused item
    wait_for(page, "document.getElementById('toast').textContent.startsWith('Skipped')")

    page.reload()
    page.wait_for_selector(".card")
    wait_for(page, "document.getElementById('labeled').textContent.startsWith('4 /')")
    labels = json.loads(urllib.request.urlopen(url + "api/labels").read())["labels"]
    assert sorted(entry["item_id"] for entry in labels) == sorted(labeled[:4])
    assert all(entry["label"] == str(truth[entry["item_id"]]) for entry in labels)
    # The pool overview is drawn and an item opens for correction.
    page.locator("#overview .cell").first.click()
    page.wait_for_selector("#item-dialog[open]")
    assert page.locator("#item-title").inner_text().startswith("Item #")
    page.locator("#item-dialog button[aria-label=close]").click()
    # The model's settings are shown, and the class sizes can be declared from the page.
    assert page.locator("#settings").inner_text().startswith("Model: Poisson learning on a 15-NN graph")
    page.select_option("#priors", "uniform")
    page.locator("#priors-apply").click()
    wait_for(page, "document.getElementById('toast').textContent.startsWith('Class sizes declared')")
    # Every queued item's picture arrives (each is read from the store when shown).
    wait_for(page, "[...document.querySelectorAll('.card img')].every("
                           "image => image.complete && image.naturalWidth > 0)")
    page.screenshot(path=str(tmp_path / "class-sizes.png"))
    assert ProjectStore(project).meta("settings")["class_priors"] == "uniform"


HOSTILE = ['<img src=x onerror="window.pwned=1">', "O'Brien \"quoted\" & co", "<b>bold</b>"]
HOSTILE_COLUMN = '<img src=z onerror="window.pwned=3">'


@pytest.fixture
def hostile_project(tmp_path):
    """Three classes whose names are HTML, from the label column of a CSV whose first
    column's name is HTML too, and whose third column is missing in every row."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.flatnonzero(digits.target < 3)[:240]
    path = tmp_path / "hostile.csv"
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([HOSTILE_COLUMN] + [f"f{j}" for j in range(1, 64)] + ["label"])
        for i in keep:
            values = digits.data[i].tolist()
            values[2] = ""  # a missing cell
            writer.writerow([*values, HOSTILE[digits.target[i]]])
    project = tmp_path / "hostile"
    init_project(project, str(path), label_column="label")
    return project


def test_token_mode_with_hostile_names(hostile_project, browser, tmp_path):
    """Token mode in a real browser: the printed URL sets the cookie and leaves the
    address bar; three items are labeled with the keyboard; class and annotator names
    made of HTML show literally and run nothing."""
    process, url = serve(hostile_project, "--token", "t0ken-for-the-test")
    try:
        assert url.endswith("?token=t0ken-for-the-test")
        base = url.split("?")[0]
        wait_until_up(base, {"Authorization": "Bearer t0ken-for-the-test"})
        with urllib.request.urlopen(urllib.request.Request(base + "api/state")) as answer:
            pytest.fail(f"no token, yet {answer.status}")
    except urllib.error.HTTPError as error:
        assert error.code == 401
    try:
        hostile_annotator = '<img src=y onerror="window.pwned=2">'
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(
            f"localStorage.setItem('activeprop-annotator', {json.dumps(hostile_annotator)})")
        page = context.new_page()
        failures, errors = [], []
        page.on("response", lambda r: failures.append(r.url) if r.status >= 400 else None)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector(".card")
        assert page.url == base, "the token must leave the address bar"
        assert "token" not in page.evaluate("history.state === null ? location.href : ''")
        # A table's card shows the row's first values under the columns' names, as text.
        card = page.locator(".card").first
        values = ProjectStore(hostile_project).load_pool().X[int(card.get_attribute("data-id"))]
        assert card.locator("th").all_inner_texts() == [HOSTILE_COLUMN] + \
            [f"f{j}" for j in range(1, 8)]
        shown = card.locator("td").all_inner_texts()[:8]
        assert shown[2] == "missing" and np.isnan(values[2])  # not "null", nor a median
        assert [float(v) for v in shown[:2] + shown[3:]] == values[[0, 1, 3, 4, 5, 6, 7]].tolist()
        assert card.locator("td").last.inner_text() == "+56 more"
        assert page.locator(".card img").count() == 0
        if AXE.is_file():  # (test_the_page_is_accessible says when it is missing)
            assert axe_violations(page) == []  # the cards' tables of values too
        for _ in range(3):
            item = queue_ids(page)[0]
            version = page.locator("#version").inner_text()
            page.keyboard.press("1")  # the first class, whatever its name
            wait_for(page,
                f"document.getElementById('version').textContent !== '{version}'")
            wait_for(page, f"!document.querySelector('.card[data-id=\"{item}\"]')")
        wait_for(page, "document.getElementById('labeled').textContent.startsWith('3 /')")
        # The names are shown as text, never parsed.
        buttons = page.locator("#classes button").all_inner_texts()
        assert [b.strip() for b in buttons] == ProjectStore(hostile_project).class_names
        assert sorted(b.strip() for b in buttons) == sorted(HOSTILE)
        assert page.locator("#classes img, #classes b, #legend img").count() == 0
        page.locator("#overview .human").first.click()
        page.wait_for_selector("#item-dialog[open]")
        assert page.locator("#item-fields tr").count() == 64  # every column, in the dialog
        assert page.locator("#item-fields th").first.inner_text() == HOSTILE_COLUMN
        if AXE.is_file():
            assert axe_violations(page) == []  # the dialog's table of 64 values
        history = page.locator("#item-history").inner_text()
        assert hostile_annotator in history and buttons[0].strip() in history
        assert page.locator("#item-history img").count() == 0
        page.keyboard.press("Escape")
        page.locator("#review-button").click()
        page.wait_for_selector("#review li")
        page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
        assert page.evaluate("window.pwned") is None
        assert not failures, failures  # no 401, no 404 (favicon), nothing missing
        assert not errors, errors
        labels = ProjectStore(hostile_project).current_labels()
        assert len(labels) == 3 and set(labels.values()) == {0}
        assert {e.annotator for e in ProjectStore(hostile_project).events()} == {hostile_annotator}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_keys_pressed_during_a_save_are_not_lost(server, page):
    """Three keys 40 ms apart, each labeling the next card while the previous label is
    still being saved and refit: three labels, on the three cards in the order shown."""
    url, project = server
    page.goto(url)
    shown = queue_ids(page)[:3]
    for _ in range(3):
        page.keyboard.press("7")
        page.wait_for_timeout(40)
    wait_for(page, "document.getElementById('labeled').textContent.startsWith('3 /')")
    labels = ProjectStore(project).current_labels()
    assert sorted(labels) == sorted(shown) and set(labels.values()) == {7}


AXE = Path(os.environ.get("AXE_CORE_JS") or
           Path(__file__).parent / ".axe" / "node_modules" / "axe-core" / "axe.min.js")


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now. axe is loaded
    through the DevTools protocol (page.evaluate), which the page's CSP does not govern."""
    page.evaluate(AXE.read_text())
    found = page.evaluate("axe.run(document).then(result => result.violations.map(v => ("
                          "{id: v.id, impact: v.impact, help: v.help, "
                          "nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def test_the_page_is_accessible(server, page, tmp_path):
    """axe-core finds no serious or critical violation, with the queue, the overview, the
    review list and the item dialog drawn; cards and overview cells work from the keyboard
    alone; the saved label is announced in a live region."""
    if not AXE.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"axe-core is missing ({AXE}); .ci/run installs it through make test")
        pytest.skip("axe-core is not installed (make test installs it where npm exists)")
    url, project = server
    page.goto(url)
    truth = ProjectStore(project).load_pool().y
    for done in range(1, 4):
        item = queue_ids(page)[0]
        page.keyboard.press(str(truth[item]))
        wait_for(page, f"document.getElementById('labeled').textContent.startsWith('{done} /')")
    queue_ids(page)
    page.locator("#review-button").click()
    page.wait_for_selector("#review li")
    assert axe_violations(page) == []
    # The live region says what was saved; the queue itself is not re-read on every key.
    assert page.locator("#toast").get_attribute("aria-live") == "polite"
    assert "Saved" in page.locator("#toast").inner_text()
    assert page.locator("#queue").get_attribute("aria-live") is None
    # Cards and cells are reachable with Tab and carry names that say what they are.
    page.locator(".card.focused").focus()
    assert page.evaluate("document.activeElement.getAttribute('role')") == "option"
    assert "item #" in page.evaluate("document.activeElement.textContent")
    first_cell = page.locator("#overview .cell").first
    first_cell.focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.classList.contains('cell')")
    assert page.evaluate("document.activeElement.getAttribute('tabindex')") == "0"
    page.keyboard.press("Enter")  # a button: Enter opens the item
    page.wait_for_selector("#item-dialog[open]")
    assert axe_violations(page) == []
    page.screenshot(path=str(tmp_path / "dialog.png"))


def test_the_page_on_a_dask_cluster(page, tmp_path):
    """`init --cluster` from a Zarr pool, then `serve --cluster`: the graph, every refit
    and every queue on two local worker processes; the page labels, undoes and reloads as
    on one machine, and the labels are in the project store."""
    pytest.importorskip("distributed")
    from activeprop.datasets import load_pool
    from activeprop.shards import write_sharded

    pool = write_sharded(load_pool("digits"), tmp_path / "digits.zarr", 600)
    project = tmp_path / "project"
    made = subprocess.run([sys.executable, "-m", "activeprop.cli", "init", "--project",
                           str(project), "--dataset", str(pool), "--cluster", "local:2",
                           "--model", "spreading"], capture_output=True, text=True,
                          timeout=300)
    assert made.returncode == 0, made.stderr
    assert "row blocks, halo" in made.stdout and "serve --project" in made.stdout
    process, url = serve(project, "--cluster", "local:2")
    try:
        wait_until_up(url)
        page.goto(url)
        truth = load_pool("digits").y
        labeled = []
        for done in range(1, 4):
            item = queue_ids(page)[0]
            labeled.append(item)
            page.keyboard.press(str(truth[item]))
            wait_for(page, f"document.getElementById('labeled').textContent.startsWith("
                           f"'{done} /')")
        page.keyboard.press("u")
        wait_for(page, "document.getElementById('labeled').textContent.startsWith('2 /')")
        page.reload()
        queue_ids(page)
        wait_for(page, "document.getElementById('labeled').textContent.startsWith('2 /')")
        assert page.locator("#settings").inner_text().startswith("Model: label spreading")
        # the pictures are read from the Zarr pool, one at a time
        wait_for(page, "[...document.querySelectorAll('.card img')].every("
                       "image => image.complete && image.naturalWidth > 0)")
        assert page.locator(".card img").count() >= 1
        page.screenshot(path=str(tmp_path / "cluster-page.png"))
        labels = ProjectStore(project).current_labels()
        assert labels == {item: int(truth[item]) for item in labeled[:2]}
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_notebook_widget_draws_a_tables_rows(browser, tmp_path):
    """The widget's front end (its ES module, in Chromium, over a stand-in for the
    kernel's model holding a real labeler's traits) draws a table's item as its values
    under the columns' names, the names as text, a missing value as "missing"."""
    pytest.importorskip("anywidget")
    pandas = pytest.importorskip("pandas")
    from activeprop.notebook import Labeler

    frame = pandas.DataFrame({HOSTILE_COLUMN: [1.5, 2.0, 2.5, 9.0] * 10,
                              "width": [0.1, np.nan, 7.0, 8.0] * 10})
    labeler = Labeler.from_arrays(frame, project=tmp_path / "nb", classes=["a", "b"])
    traits = {name: getattr(labeler, name) for name in (
        "items", "status", "classes", "class_keys", "message", "failed", "curve_points",
        "acknowledged")}
    from activeprop.notebook import labeler as widget_module

    here = Path(widget_module.__file__).parent
    module, style = (here / "labeler.js").read_text(), (here / "labeler.css").read_text()
    page = browser.new_page(viewport={"width": 900, "height": 500})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_content("<style>" + style + "</style><div id=host></div>"
                     "<script type=module>" + module.replace("export default", "window.widget =")
                     + "\nconst traits = " + json.dumps(traits) + ";\n"
                     "widget.render({el: document.getElementById('host'), model: {"
                     "get: (name) => traits[name], on: () => {}, send: () => {}}});"
                     "window.drawn = true;</script>")
    wait_for(page, "window.drawn === true")
    card = page.locator(".ap-card").first
    item = traits["items"][0]
    assert card.locator("th").all_inner_texts() == [HOSTILE_COLUMN, "width"]
    for text, value in zip(card.locator("td").all_inner_texts(), frame.iloc[item["id"]]):
        assert text == "missing" if np.isnan(value) else float(text) == value
    holed = sum(np.isnan(frame["width"].iloc[entry["id"]]) for entry in traits["items"])
    assert holed and page.locator(".ap-card td", has_text="missing").count() == holed
    assert page.locator(".ap-card img").count() == 0 and not errors, errors
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=str(tmp_path / "widget.png"))
    page.close()
