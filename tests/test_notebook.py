"""The notebook labeler (issue 20): the widget over the labeling session, from arrays or a
project; what the notebook reads back; and, in a real JupyterLab driven by Playwright and
Chromium, keys that label, an undo, a kernel restart and the store afterwards."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

pytest.importorskip("anywidget")

from activeprop.errors import UserError  # noqa: E402
from activeprop.labeling import LabelingSession  # noqa: E402
from activeprop.notebook import Labeler  # noqa: E402
from activeprop.store import ProjectStore  # noqa: E402

DIGITS = load_digits()
CLASSES = [str(c) for c in range(10)]


@pytest.fixture
def labeler(tmp_path):
    return Labeler.from_arrays(DIGITS.data, project=tmp_path / "p", images=DIGITS.images,
                               y=DIGITS.target, classes=CLASSES)


def press(widget, action: str, sequence: int, **content) -> None:
    """What the front end sends for a key or a button."""
    widget._on_message(widget, {"action": action, "sequence": sequence, **content}, [])


def test_keys_label_skip_and_undo_through_the_session(labeler, tmp_path):
    assert len(labeler.items) == 5 and labeler.status["n_labeled"] == 0
    assert labeler.class_keys == {c: int(c) for c in CLASSES}
    first = labeler.items[0]
    assert first["picture"].startswith("data:image/png;base64,")
    press(labeler, "label", 1, item=first["id"], label=int(DIGITS.target[first["id"]]))
    assert labeler.acknowledged == 1 and labeler.status["n_labeled"] == 1
    assert labeler.message == f"Saved: item #{first['id']} is {DIGITS.target[first['id']]}"
    assert first["id"] not in [item["id"] for item in labeler.items]
    skipped = labeler.items[0]["id"]
    press(labeler, "skip", 2, item=skipped)
    assert skipped not in [item["id"] for item in labeler.items]
    press(labeler, "undo", 3)
    assert labeler.status["n_labeled"] == 0 and labeler.acknowledged == 3
    press(labeler, "label", 4, item=10**6, label=1)
    assert labeler.failed and "no item 1000000" in labeler.message
    press(labeler, "erase", 5, item=3)
    assert labeler.failed and "allowed: label, skip, undo, add_class" in labeler.message
    # every label went through the store, undo included
    events = ProjectStore(tmp_path / "p").events()
    assert [e.kind for e in events] == ["label", "undo"]
    assert {e.annotator for e in events} == {"notebook"}


def test_what_the_notebook_reads_back(labeler, tmp_path):
    given = []  # the classes in the order labeled
    for _ in range(12):
        item = labeler.items[0]["id"]
        labeler.label(item, int(DIGITS.target[item]))
        given.append(int(DIGITS.target[item]))
    labels = labeler.labels()
    assert list(labels.columns) == ["item_id", "label"] and len(labels) == 12
    assert all(labels["label"] == [str(DIGITS.target[i]) for i in labels["item_id"]])
    frame = labeler.predictions()
    assert len(frame) == 1797 and set(frame["source"]) == {"human", "propagated"}
    classes, confidence = labeler.prediction_arrays()
    assert classes.shape == confidence.shape == (1797,)
    assert np.array_equal(frame["label"].astype(int).to_numpy(), classes)
    assert np.mean(classes == DIGITS.target) > 0.5
    points, figure = labeler.curve()
    two_classes = next(n for n in range(1, 13) if len(set(given[:n])) == 2)
    assert list(points["n_labeled"]) == list(range(two_classes, 13))  # guesses from then
    assert points["source"].iloc[-1] == "ground truth"
    assert figure.axes[0].get_ylabel() == "accuracy"
    exported = labeler.export(tmp_path / "labels.csv")
    assert exported.read_text().count("\n") == 1798


def test_the_same_arrays_reopen_the_project_and_other_arrays_are_refused(labeler, tmp_path):
    item = labeler.items[0]["id"]
    labeler.label(item, int(DIGITS.target[item]))
    shown = [i["id"] for i in labeler.items]
    labeler.close()
    # a restarted kernel runs the same cell again: the same labels and queue
    again = Labeler.from_arrays(DIGITS.data, project=tmp_path / "p", images=DIGITS.images,
                                y=DIGITS.target, classes=CLASSES)
    assert again.status["n_labeled"] == 1 and [i["id"] for i in again.items] == shown
    with pytest.raises(UserError, match="holds a project of other items"):
        Labeler.from_arrays(DIGITS.data[:100], project=tmp_path / "p")


def test_widgets_a_page_session_and_people_stay_consistent(labeler, tmp_path):
    other = Labeler(tmp_path / "p", annotator="bob")
    assert not {i["id"] for i in labeler.items} & {i["id"] for i in other.items}
    page = LabelingSession(tmp_path / "p")  # the browser page's session, another process's view
    page.add_label(5, "5", "browser")
    item = other.items[0]["id"]
    other.label(item, int(DIGITS.target[item]))
    labeler.refresh()
    assert labeler.status["n_labeled"] == 2 == page.state()["n_labeled"]
    assert {e["item_id"] for e in page.human_labels()} == {5, item}
    assert labeler.undo() is None  # "notebook" gave no label: bob's and the page's stay
    assert labeler.status["n_labeled"] == 2


def test_a_pool_without_classes_grows_them_in_the_widget(tmp_path):
    widget = Labeler.from_arrays(DIGITS.data[:300], project=tmp_path / "p",
                                 texts=[f"<b>digit</b> {i}" for i in range(300)])
    assert widget.classes == [] and widget.items[0]["text"].startswith("<b>digit</b>")
    press(widget, "add_class", 1, name="zero")
    widget.add_class("one")
    assert widget.classes == ["zero", "one"] and widget.class_keys == {"1": 0, "2": 1}
    press(widget, "add_class", 2, name="zero")
    assert widget.failed and "already a class" in widget.message


def test_bad_arrays_are_one_line(tmp_path):
    with pytest.raises(UserError, match="y has 3 labels for 1797 items"):
        Labeler.from_arrays(DIGITS.data, project=tmp_path / "a", y=[0, 1, 2])
    with pytest.raises(UserError, match="names the class 'cat'"):
        Labeler.from_arrays(DIGITS.data[:20], project=tmp_path / "b", y=["cat"] * 20,
                            classes=["dog"])
    with pytest.raises(UserError, match="batch must be"):
        Labeler.from_arrays(DIGITS.data[:20], project=tmp_path / "c", batch=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


EXAMPLE = Path(__file__).parent.parent / "examples" / "label_digits_in_a_notebook.ipynb"


def test_the_example_notebook_runs_top_to_bottom(tmp_path):
    """The README's example, executed by a real kernel: its unattended cell answers 15
    items, and activeprop's propagated labels beat the tutorial's logistic regression on
    the same labels."""
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    notebook = nbformat.read(EXAMPLE, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(output.get("text", "") for cell in notebook.cells
                      for output in cell.get("outputs", []))
    assert "labels given: 15" in printed
    ours = float(printed.split("propagated over the pool (activeprop): ")[1].split()[0])
    theirs = float(printed.split("logistic regression on the same labels: ")[1].split()[0])
    assert ours > theirs
    assert (tmp_path / "digits-labels.csv").read_text().count("\n") == 1798
    assert len(ProjectStore(tmp_path / "digits-labels").current_labels()) == 15


# ---------------------------------------------------------------- in JupyterLab

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "notebook-test-token"
CELL = f"""from sklearn.datasets import load_digits
from activeprop.notebook import Labeler
digits = load_digits()
labeler = Labeler.from_arrays(digits.data, project="digits-project", images=digits.images,
                              y=digits.target, classes={CLASSES!r}, ink=True)
labeler"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab on 127.0.0.1 with a token, serving a notebook that makes the widget."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed")
    pytest.importorskip("jupyterlab")
    notebook = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                           "outputs": [], "source": CELL, "id": "make-the-widget"}],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                            "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "label.ipynb").write_text(json.dumps(notebook))
    port = free_port()
    environment = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / ".jupyter"),
                   "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / ".jupyter" / "lab")}
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
         "--port", str(port), f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={tmp_path}", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--allow-root"],  # CI machines and containers often run as root
        cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "no JupyterLab"
            time.sleep(0.5)
    yield url, tmp_path
    process.terminate()
    process.wait(timeout=30)


def run_the_cell(page, folder: Path) -> None:
    """Run the notebook's cell, once its kernel is idle, and wait for its widget (a new
    one, if one was shown)."""
    shown = page.query_selector(".ap-labeler")
    page.wait_for_selector(".jp-StatusBar-TextItem:text-matches('Idle')", timeout=120_000)
    page.locator(".jp-Cell .cm-content").first.click()
    page.keyboard.press("Shift+Enter")
    try:
        if shown is not None:
            shown.wait_for_element_state("hidden", timeout=120_000)
        page.wait_for_selector(".ap-labeler .ap-card", timeout=120_000)
    except Exception:
        page.screenshot(path=str(folder / "no-widget.png"))
        raise


def labeled(page) -> int:
    header = page.locator(".ap-header").inner_text()
    return int(header.split("Labeled ")[1].split(" /")[0])


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_label_in_jupyterlab_with_the_keyboard_then_restart_the_kernel(jupyterlab):
    from playwright.sync_api import sync_playwright

    url, folder = jupyterlab
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"{url}/lab/tree/label.ipynb?token={TOKEN}")
        run_the_cell(page, folder)
        page.locator(".ap-labeler").click()  # the widget takes the keys from here on
        cells = page.locator(".jp-Cell").count()  # Shift+Enter added an empty one below
        given = []
        for done in range(1, 6):
            card = page.locator(".ap-card.ap-focused")
            item = int(card.get_attribute("data-id"))
            given.append(item)
            page.keyboard.press(str(DIGITS.target[item]))
            wait_until(lambda: labeled(page) == done)
            wait_until(lambda: int(page.locator(".ap-card.ap-focused")
                                   .get_attribute("data-id")) not in given)
        assert "Saved" in page.locator(".ap-message").inner_text()
        page.keyboard.press("u")
        wait_until(lambda: labeled(page) == 4)
        # the keys stayed with the widget: no cell was added, deleted or made a heading
        assert page.locator(".jp-Cell").count() == cells
        assert page.locator(".jp-MarkdownCell").count() == 0
        page.screenshot(path=str(folder / "widget.png"))
        store = ProjectStore(folder / "digits-project")
        assert store.current_labels() == {i: int(DIGITS.target[i]) for i in given[:4]}
        # restart the kernel and run the cell again: the same labels and queue
        shown = [int(c.get_attribute("data-id")) for c in page.locator(".ap-card").all()]
        page.locator(".jp-Cell .cm-content").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("0")
        page.keyboard.press("0")  # JupyterLab's "restart the kernel", then confirm
        page.locator(".jp-Dialog-button.jp-mod-accept").click()
        page.wait_for_selector(".jp-Dialog", state="detached")
        run_the_cell(page, folder)
        wait_until(lambda: labeled(page) == 4)
        again = [int(c.get_attribute("data-id")) for c in page.locator(".ap-card").all()]
        assert again == shown
        page.screenshot(path=str(folder / "after-restart.png"))
        browser.close()
    assert ProjectStore(folder / "digits-project").current_labels() == \
        {i: int(DIGITS.target[i]) for i in given[:4]}
