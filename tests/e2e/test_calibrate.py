"""`memlane calibrate` on a real daemon with the offline model: the user's recorded searches in
three unrelated projects set the relevance floor, and the next search uses it."""

from __future__ import annotations

import itertools
from typing import Any

from memlane.cli.lifecyclecmd import calibration_text
from memlane.daemon.domain.models import MINILM
from memlane.events.log import EventLog, read_log
from memlane.events.model import ThresholdSet

from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import run_json

PER_PROJECT = 40
LOW = 0.2  # a floor that lets most questions asked in the wrong project through

COOKING = [(f"{dish}: {verb} the {food} for {minutes} minutes before serving",
            f"how long should I {verb} the {food} for the {dish}?")
           for (dish, food), verb, minutes in zip(
               itertools.product(["risotto", "ratatouille", "paella", "lasagne", "curry"],
                                 ["onions", "garlic", "rice", "tomatoes", "peppers", "aubergine",
                                  "mushrooms", "carrots"]),
               itertools.cycle(["simmer", "saute", "roast", "braise", "caramelise"]),
               itertools.cycle([5, 8, 12, 20, 25, 30, 40]))]
KUBERNETES = [((f"The {service} deployment in the {namespace} namespace runs {n} replicas"
                f" behind an ingress; roll it out with kubectl rollout restart"),
               f"how many replicas does the {service} deployment run in {namespace}?")
              for (service, namespace), n in zip(
                  itertools.product(["billing", "checkout", "search", "auth", "gateway",
                                     "notifier", "ledger", "scheduler"],
                                    ["staging", "production", "canary", "sandbox", "qa"]),
                  itertools.cycle([2, 3, 4, 6, 8]))]
GARDENING = [(f"Sow {plant} in {season} in {soil} soil and water them {often}",
              f"which soil suits {plant} sown in {season}, and how often to water them?")
             for (plant, season), soil, often in zip(
                 itertools.product(["tomatoes", "courgettes", "beans", "lettuce", "carrots",
                                    "sweet peas", "dahlias", "sunflowers"],
                                   ["early spring", "late spring", "midsummer", "autumn",
                                    "late winter"]),
                 itertools.cycle(["loamy", "sandy", "clay", "chalky", "peaty"]),
                 itertools.cycle(["daily", "twice a week", "weekly"]))]
PROJECTS = {"cooking": COOKING[:PER_PROJECT], "kubernetes": KUBERNETES[:PER_PROJECT],
            "gardening": GARDENING[:PER_PROJECT]}


def search(daemon: DaemonProcess, query: str, project: str, *,
           recall: bool = False) -> list[dict[str, Any]]:
    answer = daemon.client.request("POST", "/v1/search", {"query": query, "project": project,
                                                          "recall": recall})
    return answer["hits"]  # type: ignore[no-any-return]


def test_calibrate_sets_the_relevance_floor_from_recorded_searches(
        daemon: DaemonProcess) -> None:
    """A user whose floor is too low (0.2, recorded as a calibration would) searches in three
    unrelated projects: those searches are the probes, calibrate suggests a higher relevance
    that answers at least 90% of them asked in the wrong project with nothing (or says why
    not); applied, it is a ``threshold_set`` event and the next search uses it."""
    daemon.stop()
    log = EventLog.open(daemon.paths.log_dir)
    log.append([ThresholdSet(model=MINILM.name, name="relevance", value=LOW)])
    log.close()
    daemon.start()
    daemon.client.request("POST", "/v1/import", {"memories": [
        {"text": text, "project": project}
        for project, pairs in PROJECTS.items() for text, _ in pairs]})
    daemon.wait_idle()
    answered = sum(bool(search(daemon, question, project, recall=True))
                   for project, pairs in PROJECTS.items() for _, question in pairs)
    answer = daemon.client.request("POST", "/v1/calibrate", {"apply": False})
    probes, why = answer["relevance_probes"], answer["why"]["relevance"]
    print(f"answered {answered} of {3 * PER_PROJECT}; probes {probes}; why: {why}")
    assert answered >= probes["own"] >= 90 and probes["projects"] == 3
    assert probes["negative"] == 2 * probes["own"]  # each asked in both other projects
    suggested = answer["suggested"]["relevance"]
    assert answer["current"]["relevance"] == LOW
    assert suggested == probes["suggested"]["value"] > LOW
    assert probes["current"]["negatives_empty"] < 0.9
    assert probes["suggested"]["negatives_empty"] >= 0.9 or "not reachable" in why
    assert probes["suggested"]["own_held_back"] <= probes["current"]["own_held_back"] + 0.01
    assert f"at {suggested}" in why
    text = calibration_text(answer)
    print(text)
    assert f"relevance {answer['current']['relevance']} → {suggested}: a query" in text
    assert run_json(daemon, "calibrate")["relevance_probes"] == probes

    applied = daemon.client.request("POST", "/v1/calibrate", {"apply": True})
    assert applied["suggested"]["relevance"] == suggested and applied["applied"]
    assert ThresholdSet(model=answer["model"], name="relevance", value=suggested) in [
        r.event for r in read_log(daemon.paths.log_dir)]
    assert daemon.client.request("POST", "/v1/calibrate", {})["current"]["relevance"] \
        == suggested
    # A question of one project asked in another gets nothing; asked at home it gets hits.
    question = "which soil suits dahlias sown in autumn, and how often to water them?"
    assert search(daemon, question, "kubernetes") == []
    assert search(daemon, question, "gardening")
