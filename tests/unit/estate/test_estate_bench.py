"""`hub bench estate` end to end on a tiny embedded estate: every figure is measured."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from hub.bench.estate import bench, ratio
from hub.bench.estate_probes import MemorySampler, _nearest_watched, _parents, percentile
from hub.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_ratio_stays_readable_when_tiny():
    assert ratio(50.0, 100.0) == "0.500" and ratio(1.0, 2500.0) == "1/2,500" and ratio(1.0, 0.0) == "n/a"


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 95) == 95.0
    assert percentile([3.0], 95) == 3.0 and math.isnan(percentile([], 50))


def test_memory_sampler_reports_child_processes_apart():
    """A worker's bulk link may run in a child process: its memory is reported with the worker's,
    not hidden, and not with the process that started the worker."""
    code = "import time; b = b'x' * (64 << 20); time.sleep(30)"
    worker = subprocess.Popen([sys.executable, "-c", (
        f"import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', {code!r}]); time.sleep(30)")])
    try:
        sampler = MemorySampler()
        sampler.watch("bench", os.getpid())
        sampler.watch("worker", worker.pid)
        for _ in range(200):
            sampler.sample()
            if sampler.peaks.get("worker: largest child process", 0) > 60 << 20:
                break
            time.sleep(0.05)
        grandchild, = psutil.Process(worker.pid).children()
        # the worker is watched itself: its child is its, not the bench's (which may have others)
        assert _nearest_watched(grandchild.pid, _parents(), {os.getpid(): "bench", worker.pid: "worker"}) == "worker"
    finally:
        for child in psutil.Process(worker.pid).children(recursive=True):
            child.kill()
        worker.kill()
        worker.wait()
    assert sampler.peaks["worker"] > 0 and sampler.peaks["worker: largest child process"] > 60 << 20


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1])  # 0: in the bench's process after the ingest; 1: a `hub worker` process
def test_embedded_bench_measures_every_figure(tmp_path, workers):
    figures = {row[0]: row for row in bench(people=80, deployment="embedded", workers=workers, changes=4,
                                             queries=10, seed=3, systems_dir=REPO / "systems", work=tmp_path).rows}
    records, messages = (int(x.replace(",", "")) for x in
                         figures["records announced / messages (record batches)"][1].split(" / "))
    assert records > 80 and 0 < messages < records  # records travel in batches
    assert figures["initial load: wall time to store"][1] > 0
    seen, missed = (int(x) for x in figures["changes seen / not seen within 60 s"][1].split(" / "))
    assert seen == 4 and missed == 0
    assert 0 < figures["freshness p50 (change → visible in view)"][1] <= figures["freshness p95"][1]
    assert figures["search p95"][1] > 0 and figures["person view p95"][1] > 0
    found, asked = (int(x) for x in figures["searches finding the person on page 1"][1].split(" / "))
    assert asked > 0 and found / asked >= 0.8
    throughput = figures["initial load throughput"]
    assert throughput[3] > 0 and throughput[4] == ratio(throughput[1], throughput[3])
    assert figures["store size"][1] > 0
    assert figures["ingest rate (adapters → outbox → bus)"][1] > 0
    rate = "records worker rate (after the ingest)" if workers == 0 else "records workers rate (1, during the ingest)"
    assert figures[rate][1] > 0
    per_system = [name for name in figures if name.strip().startswith("ingest rate: ")]
    assert len(per_system) == 6
    assert figures["routing worker: caught up after the store was loaded"][1] >= 0  # NaN: it never caught up
    bulk = figures["  of which linking in bulk (beside and after the load)"]  # 80 people: few batches, maybe never behind
    assert bulk[1] >= 0 and ("person records" in bulk[3] or bulk[3].startswith("none"))
    assert figures["routing queue depth at the end (+ unrelayed outbox)"][1] <= 5
    assert any(name.startswith("peak RSS") and row[1] > 10 for name, row in figures.items())


def test_amqp_without_its_bus_module_is_a_clear_error_not_a_crash(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "hub.bus.amqp" else real(name, *a))
    result = CliRunner().invoke(main, ["bench", "estate", "--people", "50", "--deployment", "amqp"])
    assert result.exit_code != 0 and "hub.bus.amqp" in result.output


def test_worker_options_reach_the_benchs_config_and_its_heading(monkeypatch, tmp_path):
    from hub.bench import estate
    from hub.bench.estate import Figures

    seen = {}

    def fake(*args, **kwargs):
        seen["options"] = args[-1]
        return Figures()

    monkeypatch.setattr(estate, "bench", fake)
    result = CliRunner().invoke(main, ["bench", "estate", "--people", "50", "--work-dir", str(tmp_path),
                                       "--bulk-link-process-at", "0", "--bulk-link-max-records", "40000",
                                       "--bulk-link-process-max-records", "90000"])
    assert result.exit_code == 0, result.output
    assert seen["options"] == {"bulk_link_process_at": 0, "bulk_link_max_records": 40000,
                               "bulk_link_process_max_records": 90000}
    assert ("--bulk-link-process-at 0 --bulk-link-max-records 40000 --bulk-link-process-max-records 90000"
            in result.output.splitlines()[0])
    result = CliRunner().invoke(main, ["bench", "estate", "--people", "50", "--work-dir", str(tmp_path)])
    assert seen["options"] == {} and "--bulk-link" not in result.output
