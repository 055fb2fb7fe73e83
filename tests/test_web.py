"""The JSON API of the browser labeler (httpx through FastAPI's TestClient), its safety,
a schemathesis run against /openapi.json, and a simulated annotator."""

import csv
import importlib
import io
import json
import pkgutil

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from activeprop.experiments import SimulationConfig, simulate
from activeprop.labeling import LabelingSession
from activeprop.project import init_project
from activeprop.web.app import create_app


def import_schemathesis_eagerly():
    """Import the schemathesis modules that `from_asgi` and its strategies import lazily.

    Why: pytest rewrites the asserts of schemathesis (a pytest plugin) as it imports it, and
    CPython 3.11.7's AST constructor keeps one recursion counter for all threads
    (python/cpython#106905). A lazy import inside a test, while the labeler's threads run,
    once failed CI with "SystemError: AST constructor recursion depth mismatch". Importing
    them here, at collection, compiles them while no other thread is busy."""
    for package in ("schemathesis.specs.openapi", "schemathesis.generation",
                    "schemathesis.transport", "schemathesis.python", "schemathesis.engine"):
        for module in pkgutil.walk_packages(importlib.import_module(package).__path__,
                                            package + "."):
            importlib.import_module(module.name)


import_schemathesis_eagerly()


def local_client(app) -> TestClient:
    """A client of an app served on 127.0.0.1 (its Host header is 127.0.0.1)."""
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    directory = tmp_path_factory.mktemp("web") / "digits"
    init_project(directory, "digits")
    return directory


@pytest.fixture
def client(tmp_path):
    init_project(tmp_path / "p", "digits")
    return local_client(create_app(LabelingSession(tmp_path / "p")))


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "activeprop" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "activeprop labeler"


def test_queue_label_undo_cycle(client):
    queue = client.post("/api/queue", json={"n": 3, "client": "ann"}).json()
    assert len(queue["items"]) == 3 and queue["model_version"] == 0
    assert set(queue["items"][0]) == {"id", "prediction", "confidence", "path", "text",
                                      "fields"}
    assert queue["items"][0]["fields"] is None  # digits are pictures, not a table's rows
    other = client.post("/api/queue", json={"n": 3, "client": "bob"}).json()
    assert not {i["id"] for i in queue["items"]} & {i["id"] for i in other["items"]}
    first = queue["items"][0]["id"]
    saved = client.post("/api/labels", json={"item_id": first, "label": "4", "annotator": "ann"})
    assert saved.status_code == 201 and saved.json()["model_version"] == 1
    assert client.post("/api/labels", json={"item_id": 5, "label": 2}).status_code == 201
    assert client.get("/api/labels").json() == {"labels": [{"item_id": 5, "label": "2"},
                                                           {"item_id": first, "label": "4"}]}
    undone = client.post("/api/undo", json={"annotator": "ann"})
    assert undone.status_code == 200 and undone.json()["item_id"] == first
    assert client.get("/api/labels").json()["labels"] == [{"item_id": 5, "label": "2"}]
    assert client.post("/api/undo", json={"annotator": "ann"}).status_code == 409


def test_second_opinion_is_kept(client):
    client.post("/api/labels", json={"item_id": 9, "label": "1", "annotator": "ann"})
    answer = client.post("/api/labels", json={"item_id": 9, "label": "7", "annotator": "bob"})
    assert answer.json()["second_opinion"] is True
    events = client.get("/api/items/9").json()["events"]
    assert [(e["annotator"], e["label"]) for e in events] == [("ann", "1"), ("bob", "7")]


def test_image_and_overview(client):
    image = client.get("/api/items/3/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content[:8] == b"\x89PNG\r\n\x1a\n"
    client.post("/api/labels", json={"item_id": 0, "label": "0"})
    client.post("/api/labels", json={"item_id": 1, "label": "1"})
    overview = client.get("/api/items", params={"label": "0", "min_confidence": 0.5}).json()
    assert overview["total"] > 0 and all(i["label"] == "0" for i in overview["items"])


@pytest.mark.parametrize("method,url,body,status,message", [
    ("post", "/api/labels", {"item_id": 99999, "label": "1"}, 404, "no item"),
    ("post", "/api/labels", {"item_id": 1, "label": "cat"}, 422, "not a class"),
    ("post", "/api/labels", {"item_id": 1, "label": 10}, 422, "not a class"),
    ("post", "/api/labels", {"item_id": "x", "label": "1"}, 422, ""),
    ("post", "/api/labels", {"label": "1"}, 422, ""),
    ("get", "/api/items/99999", None, 404, "no item"),
    ("get", "/api/items/abc/image", None, 422, ""),
    ("get", "/api/items/..%2F..%2Fetc%2Fpasswd/image", None, 404, ""),
    ("post", "/api/queue", {"n": 0}, 422, ""),
    ("get", "/api/queue", None, 405, ""),
    ("get", "/api/export?format=xml", None, 422, ""),
])
def test_malformed_requests_get_clear_4xx(client, method, url, body, status, message):
    response = getattr(client, method)(url, **({"json": body} if body is not None else {}))
    assert response.status_code == status
    assert message in json.dumps(response.json())


def test_wrong_json_body(client):
    response = client.post("/api/labels", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_export_endpoint(client):
    client.post("/api/labels", json={"item_id": 0, "label": "0"})
    client.post("/api/labels", json={"item_id": 1, "label": "1"})
    rows = list(csv.DictReader(io.StringIO(client.get("/api/export?format=csv").text)))
    assert len(rows) == 1797 and rows[0]["source"] == "human"
    lines = client.get("/api/export", params={"format": "jsonl", "min_confidence": 0.99}).text
    rows = [json.loads(line) for line in lines.splitlines()]
    assert len(rows) == 1797
    assert all(r["confidence"] >= 0.99 for r in rows if r["label"] is not None)


def test_token_is_required_on_every_request(tmp_path):
    init_project(tmp_path / "p", "digits-aug:200")
    app = create_app(LabelingSession(tmp_path / "p"), token="s3cret")
    client = local_client(app)
    for url in ("/", "/api/state", "/api/items/1/image", "/openapi.json", "/static/app.js",
                "/static/style.css"):
        assert client.get(url).status_code == 401
    assert client.get("/api/state", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/api/state", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/", params={"token": "nope"}).status_code == 401


def test_the_printed_url_sets_a_cookie_and_leaves_the_address_bar(tmp_path):
    init_project(tmp_path / "p", "digits-aug:200")
    client = local_client(create_app(LabelingSession(tmp_path / "p"), token="s3cret"))
    opened = client.get("/", params={"token": "s3cret"}, follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/"
    cookie = opened.headers["set-cookie"].lower()
    assert "activeprop_token=s3cret" in cookie and "httponly" in cookie
    assert "samesite=strict" in cookie and "path=/" in cookie
    client.cookies.set("activeprop_token", "s3cret")  # as the browser keeps it
    # With the cookie, page, assets, pictures and the API all load.
    for url in ("/", "/static/app.js", "/static/style.css", "/static/favicon.svg",
                "/api/items/1/image", "/api/state"):
        assert client.get(url).status_code == 200, url
    assert client.post("/api/queue", json={"n": 1}).status_code == 200
    # A token in a query string is only a way in for a page load, never for the API.
    anonymous = local_client(create_app(LabelingSession(tmp_path / "p"), token="s3cret"))
    assert anonymous.post("/api/queue?token=s3cret", json={"n": 1}).status_code == 401


def test_a_foreign_host_is_refused(client):
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: refused."""
    assert client.get("/api/state", headers={"host": "evil.example:8000"}).status_code == 400
    assert client.post("/api/labels", json={"item_id": 0, "label": "0"},
                       headers={"host": "evil.example"}).status_code == 400
    for host in ("127.0.0.1:8000", "localhost:8000", "localhost"):
        assert client.get("/api/state", headers={"host": host}).status_code == 200


def test_a_wildcard_bind_answers_any_host_behind_its_token(tmp_path):
    init_project(tmp_path / "p", "digits-aug:200")
    app = create_app(LabelingSession(tmp_path / "p"), token="s3cret", host="0.0.0.0")
    client = TestClient(app, base_url="http://labeling.example.org")
    assert client.get("/api/state").status_code == 401
    assert client.get("/api/state", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_pages_forbid_inline_script_and_docs_work_offline(client):
    for url in ("/", "/docs", "/api/state"):
        policy = client.get(url).headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    docs = client.get("/docs").text
    assert "http" not in docs  # nothing from a CDN
    assert client.get("/static/docs.js").status_code == 200
    assert client.get("/static/favicon.svg").status_code == 200
    for asset in ("app.js", "docs.js"):
        assert "innerHTML" not in client.get(f"/static/{asset}").text


def test_a_bug_is_a_500_not_the_users_fault(tmp_path, monkeypatch):
    """Only user errors become 4xx: a ValueError from inside is a bug (500)."""
    init_project(tmp_path / "p", "digits-aug:200")
    session = LabelingSession(tmp_path / "p")

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(session, "item", broken)
    client = TestClient(create_app(session), base_url="http://127.0.0.1",
                        raise_server_exceptions=False)
    assert client.get("/api/items/1").status_code == 500


def test_simulated_annotator_reaches_simulate_accuracy(tmp_path):
    """Label 100 digits through the API with their true labels, then check the exported
    propagated labels are as accurate as `activeprop simulate` with the same settings."""
    init_project(tmp_path / "p", "digits")
    session = LabelingSession(tmp_path / "p")
    client = local_client(create_app(session))
    truth = session.pool.y
    first = []
    while len(first) < 100:
        for item in client.post("/api/queue", json={"n": 1, "client": "sim"}).json()["items"]:
            first.append(item["id"])
            assert client.post("/api/labels", json={"item_id": item["id"],
                                                    "label": int(truth[item["id"]])}).status_code == 201
    rows = [json.loads(line) for line in client.get("/api/export?format=jsonl").text.splitlines()]
    propagated = [r for r in rows if r["source"] == "propagated"]
    accuracy = np.mean([r["label"] == str(truth[r["id"]]) for r in propagated])
    # The same settings in simulate: the labeler's model and strategy, one label per round.
    settings_ = session.settings
    config = SimulationConfig(subset=0, initial=1, rounds=100, batch=1, seed=0,
                              model=settings_["model"], batch_mode=settings_["batch_mode"],
                              initial_strategy="typical",
                              strategy=settings_["strategy"], kernel=settings_["kernel"],
                              n_neighbors=settings_["n_neighbors"], alpha=settings_["alpha"],
                              max_iter=settings_["max_iter"], solver=settings_["solver"],
                              rtol=settings_["rtol"])
    simulated = simulate(config).rounds[-1].accuracy
    assert accuracy > 0.9
    assert abs(accuracy - simulated) < 0.03, (accuracy, simulated)




@pytest.fixture(scope="module")
def fuzz_app(project):
    # schemathesis calls the app as "testserver": the app is bound to that name here.
    return create_app(LabelingSession(project), host="testserver")


@pytest.mark.parametrize("operation", [
    ("GET", "/api/state"), ("POST", "/api/queue"), ("POST", "/api/labels"),
    ("GET", "/api/labels"), ("POST", "/api/undo"), ("GET", "/api/items"),
    ("GET", "/api/items/{item_id}"), ("GET", "/api/items/{item_id}/image"),
    ("GET", "/api/export"),
])
def test_schemathesis_finds_no_server_error(fuzz_app, operation):
    api = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    method, path = operation
    strategy = api[path][method].as_strategy()

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given_case(strategy)
    def check(case):
        case.call_and_validate(checks=[not_a_server_error])

    check()


def given_case(strategy):
    from hypothesis import given

    return given(case=strategy)


def test_class_sizes_declared_and_withdrawn_from_the_page(tmp_path):
    init_project(tmp_path / "p", "digits")
    session = LabelingSession(tmp_path / "p")
    client = local_client(create_app(session))
    rng = np.random.default_rng(1)
    for c in range(10):  # two random labels per class: plain Poisson's class sizes drift
        for item in rng.choice(np.flatnonzero(session.pool.y == c), 2, replace=False):
            client.post("/api/labels", json={"item_id": int(item), "label": c})
    labels = client.get("/api/labels").json()

    def off_balance():  # the largest relative gap between a predicted class size and 1/10
        counts = np.bincount(session.predictions()[0], minlength=10)
        return float(np.abs(counts / counts.mean() - 1).max())

    plain = off_balance()
    declared = client.put("/api/settings/class-priors", json={"class_priors": "uniform"})
    assert declared.status_code == 200 and declared.json()["settings"]["class_priors"] == "uniform"
    assert off_balance() <= 0.05 < plain
    assert LabelingSession(tmp_path / "p").settings["class_priors"] == "uniform"  # stored
    bad = client.put("/api/settings/class-priors", json={"class_priors": "1,2"})
    assert bad.status_code == 422 and "10 positive shares" in bad.json()["detail"]
    assert session.settings["class_priors"] == "uniform"  # a refused change changes nothing
    shares = ",".join(["9"] * 9 + ["1"])  # the last class declared rare: it shrinks
    rare_before = int(np.sum(session.predictions()[0] == 9))
    assert client.put("/api/settings/class-priors", json={"class_priors": shares}).status_code == 200
    assert session.settings["class_priors"] == shares
    assert np.sum(session.predictions()[0] == 9) < rare_before / 2
    withdrawn = client.put("/api/settings/class-priors", json={"class_priors": None})
    assert withdrawn.json()["settings"]["class_priors"] is None and off_balance() == plain
    assert client.get("/api/labels").json() == labels  # the labels never move


def test_class_sizes_are_refused_for_a_spreading_project(tmp_path):
    init_project(tmp_path / "p", "digits", model="spreading")
    client = local_client(create_app(LabelingSession(tmp_path / "p")))
    answer = client.put("/api/settings/class-priors", json={"class_priors": "uniform"})
    assert answer.status_code == 422 and "poisson" in answer.json()["detail"]
