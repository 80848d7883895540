"""`make bench`'s runner: benchmarks in their own processes hand their targets over, and the
table in BENCHMARKS.md is regenerated in place, naming what was not measured."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import bench_usage, report, run_all
from bench.bench_embed import RAW, ROUND_TRIP
from bench.bench_embed import figures as embed_figures
from bench.bench_embed import targets as embed_targets
from bench.bench_hooks import SPORADIC_S
from bench.bench_hooks import figures as hook_figures
from bench.bench_ingest import figure as ingest_figure
from bench.bench_locomo import figures as locomo_figures
from bench.report import Figure, idle_share, read_figures, write_figures


def test_a_printing_benchmark_hands_its_figures_over(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fake_bench.py").write_text(
        "import sys\nfrom pathlib import Path\nfrom bench.report import Figure, write_figures\n"
        "print('a table')\n"
        "write_figures(Path(sys.argv[sys.argv.index('--figures') + 1]),"
        " [Figure('fake', 'latency', 1.5, 'ms', target='<= 2', met=True)])\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{run_all.ROOT.parent}")
    output, found = run_all.run_benchmark("fake_bench", ())
    assert output["exit"] == 0 and output["output"] == "a table\n"
    assert found == [Figure("fake", "latency", 1.5, "ms", target="<= 2", met=True)]


def test_a_failed_benchmark_gives_no_figures_and_keeps_its_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_bench.py").write_text("raise SystemExit('no peer venv')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    output, found = run_all.run_benchmark("broken_bench", ())
    assert (output["exit"], found) == (1, [])
    assert "no peer venv" in output["error"]


def test_figures_survive_the_file_between_processes(tmp_path: Path) -> None:
    figures = [Figure("hooks", "recall", 86.7, "ms", baseline=12.4, baseline_name="python",
                      target="p50 <= 60", met=False, load=0.5)]
    write_figures(tmp_path / "f.json", figures)
    assert read_figures(tmp_path / "f.json") == figures


def test_the_table_is_replaced_in_place_and_names_what_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "BENCHMARKS.md"
    page.write_text(f"# Benchmarks\n\nprose before\n\n{run_all.START}\nold table\n"
                    f"{run_all.END}\n\nprose after\n")
    monkeypatch.setattr(run_all, "BENCHMARKS", page)
    facts = {"date": "2026-12-04 17:00 UTC", "cpu": "AMD EPYC", "cores": 2, "memory_gib": 23.5,
             "python": "3.11.7", "git_sha": "abc1234", "load_average": 0.3}
    settled = [{"bench": "bench.bench_log", "idle": 0.97, "waited_s": 2.0},
               {"bench": "bench.bench_hooks", "idle": 0.62, "waited_s": 60.1}]
    run_all.write_tables(facts, [Figure("log", "replay", 44300, "events/s",
                                        target=">= 100000", met=False)], ["bench.bench_hooks"],
                         settled)
    text = page.read_text()
    assert "old table" not in text
    assert text.startswith("# Benchmarks\n\nprose before\n") and text.endswith("prose after\n")
    assert "| log | replay | 44300 events/s |" in text and "**missed**" in text
    assert "Not measured in this run (failed: see bench/results.json): bench.bench_hooks." in text
    assert text.count("Started before the CPUs were quiet") == 1
    assert "wait): bench.bench_hooks (62%)." in text


def test_each_hook_target_is_judged_beside_its_floor() -> None:
    rows = [("floor: GET /v1/health (tcp, new connection)", [0.7], None),
            ("http hook, 300 chars, largest project", [23.0, 24.0, 25.0], 15.0),
            ("http hook, 2,000 chars, new project", [1.2], 60.0),
            ("http hook, 300 chars, largest project, 0.5 s apart", [27.0], 15.0),
            ("floor: raw query embed in process, 300 chars", [12.9], None),
            ("floor: raw query embed in process, 2,000 chars", [46.4], None),
            ("floor: raw query embed in process, 300 chars, 0.5 s apart", [15.0], None),
            ("floor: curl /v1/health (fresh process, socket)", [8.6], None),
            ("command hook (sh + curl, socket), 300 chars", [40.4], 30.0),
            ("floor: the CLI's Python, started empty (-c pass)", [12.2], None),
            ("memlane recall (fresh CLI process)", [78.7], 60.0)]
    judged = {f.name: (f.value, f.baseline, f.met) for f in hook_figures(rows)}
    assert judged == {"http hook, 300 chars, largest project": (24.0, 12.9, False),
                      "http hook, 2,000 chars, new project": (1.2, 0.7, True),
                      "http hook, 300 chars, largest project, 0.5 s apart": (27.0, 15.0, False),
                      "command hook (sh + curl, socket), 300 chars": (40.4, 8.6, False),
                      "memlane recall (fresh CLI process)": (78.7, 12.2, False)}
    assert SPORADIC_S == 0.5  # the rows above name the pause


def test_each_embedding_target_is_judged_beside_its_baseline() -> None:
    latency = {case: {RAW: [raw], "daemon, unix socket (CLI Client)": [mine]}
               for case, raw, mine in (("1 text", 5.0, 7.0), ("20 texts", 50.0, 54.0))}
    latency[ROUND_TRIP] = {RAW: [0.0], "daemon, unix socket (CLI Client)": [0.5]}
    rates = {"20 sequential, batching on": (130.0, 20.0),
             "20 concurrent, batching on": (270.0, 2.0)}
    rows = {f.name: (f.value, f.baseline, f.target, f.met)
            for f in embed_figures(embed_targets(latency, rates, 0.6))}
    assert rows == {
        "20 texts, daemon, unix socket (CLI Client)": (54.0, 50.0, "<= 55.00", True),
        "1 text, daemon, unix socket (CLI Client)": (7.0, 5.0, "<= 6.00", False),
        "20 concurrent single texts (batching on)": (270.0, 130.0, ">= 260.00", True),
        "cold start to ready (median)": (0.6, None, "<= 1.50", True)}


def test_ingest_is_judged_as_a_share_of_the_floor() -> None:
    met = ingest_figure(10_000, floor=40.0, ingest=50.0, load=0.4)
    assert (met.value, met.baseline, met.met) == (200.0, 250.0, True)  # 0.8x the floor
    assert round(met.ratio or 0, 2) == 0.8
    assert not ingest_figure(10_000, floor=40.0, ingest=60.0, load=0.4).met  # 0.67x


def test_locomo_figures_keep_the_tuning_split_apart_beside_fair_bm25() -> None:
    def row(split: str, kind: str, memlane: float, bm25: float) -> dict[str, object]:
        metrics = {"memlane search": {"recall@10": memlane, "mrr@10": memlane / 2},
                   "bm25 (fair)": {"recall@10": bm25, "mrr@10": bm25 / 2},
                   "dense exact": {"recall@10": 0.5, "mrr@10": 0.25}}
        return {"split": split, "kind": kind, "metrics": metrics}

    rows = [row("tuning", "positive", 1.0, 0.5), row("test", "positive", 0.6, 0.4),
            row("test", "positive", 0.8, 0.6), row("test", "clean negative", 0.0, 0.0)]
    found = {f.name: (f.value, f.baseline, f.baseline_name) for f in locomo_figures(rows, 0.2)}
    test, tuning = "test split (41 42 43: held out)", "tuning split (26 30: weights chosen on it)"
    fair, dense = "bm25 (fair)", "dense exact"
    assert found == {
        f"{test}, memlane search recall@10 against {fair}": (0.7, 0.5, f"{fair}, same run"),
        f"{test}, memlane search mrr@10 against {fair}": (0.35, 0.25, f"{fair}, same run"),
        f"{test}, memlane search recall@10 against {dense}": (0.7, 0.5, f"{dense}, same run"),
        f"{tuning}, memlane search recall@10 against {fair}": (1.0, 0.5, f"{fair}, same run"),
        f"{tuning}, memlane search mrr@10 against {fair}": (0.5, 0.25, f"{fair}, same run"),
        f"{tuning}, memlane search recall@10 against {dense}": (1.0, 0.5, f"{dense}, same run")}


def test_the_usage_detector_reports_precision_and_recall(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two uses found, one false use, one use missed: 2/3 each."""
    turns = [{"used": used, "found": found} for used, found in
             ((True, True), (True, True), (False, True), (True, False), (False, False))]
    monkeypatch.setattr(bench_usage, "load", lambda: turns)
    monkeypatch.setattr(bench_usage, "predict", lambda turn: turn["found"])
    found = {f.name: f.value for f in bench_usage.measure()}
    name = "usage detector (lexical part) on 5 labelled turns"
    assert found == {f"{name}, precision": 0.667, f"{name}, recall": 0.667}


def test_make_bench_runs_the_ingest_and_locomo_benchmarks() -> None:
    modules = [module for module, _ in run_all.PRINTING]
    assert {"bench.bench_ingest", "bench.bench_locomo"} <= set(modules)


def test_a_measured_benchmark_runs_in_a_process_of_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "measured_bench.py").write_text(
        "import os\nfrom bench.report import Figure\n"
        "def measure():\n    print('measured')\n"
        "    return [Figure('fake', 'pid', float(os.getpid()), '')]\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{run_all.ROOT.parent}")
    monkeypatch.setattr(run_all, "MEASURED", ("measured_bench",))
    output, found = run_all.run_benchmark("measured_bench", ())
    assert output["exit"] == 0 and output["output"] == "measured\n"
    assert len(found) == 1 and found[0].value != os.getpid()


def test_idle_share_is_the_idle_part_of_the_ticks_between_readings() -> None:
    assert idle_share((100, 1000), (190, 1100)) == pytest.approx(0.9)
    assert idle_share((100, 1000), (100, 1000)) == 1.0  # no tick passed


def test_the_runner_waits_for_quiet_cpus_and_gives_up_after_its_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter([(0, 0), (10, 100), (10, 100), (105, 200)])  # 10% idle, then 95% idle
    monkeypatch.setattr(report, "cpu_times", lambda: next(readings))
    monkeypatch.setattr(report.time, "sleep", lambda s: None)
    assert report.wait_quiet(idle=0.9) == pytest.approx(0.95)
    busy = iter([(0, 0), (0, 100)] * 1000)
    monkeypatch.setattr(report, "cpu_times", lambda: next(busy))
    clock = iter(range(0, 10_000, 30))  # each reading 30 s later
    monkeypatch.setattr(report.time, "monotonic", lambda: next(clock))
    assert report.wait_quiet(idle=0.9, limit_s=60) == 0.0
