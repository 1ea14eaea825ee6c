"""CPU time of processes, for the benchmarks' cost-per-item figures."""

from __future__ import annotations

import psutil


def cpu_seconds(process: psutil.Process, *, children: bool = True) -> float:
    """User + system CPU seconds of ``process`` (and, by default, every process it started).

    A child that exits between listing and reading is skipped (its time is lost).
    """
    processes = [process, *process.children(recursive=True)] if children else [process]
    total = 0.0
    for each in processes:
        try:
            times = each.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total
