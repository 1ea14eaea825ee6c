"""Historical search benchmark: 10 million reads, searched through the gateway and as raw SQL.

1. Loads ``--rows`` synthetic reads (default 10,000,000) over ``--days`` days into the real
   schema (migrations of every service applied): one day at a time, each day's ``reads``
   and ``plates`` rows are COPYed into new tables which are then attached as that day's
   partitions, so PostgreSQL builds the partitions' indexes in bulk and checks the
   foreign key once per day. Prints rows/s.
   Plates follow a skewed distribution: a small pool of frequent vehicles (commuters, fleet)
   makes up ``--frequent-share`` of the reads and is seen dozens of times; the rest come from
   a large pool and are seen once or twice. Cameras are fixed, around one city.
2. Starts the platform (gateway, recognition, hot lists, audit) as processes with
   ``lprctl.stack.Stack`` on this database, bootstraps a trained officer and logs in.
3. Times, sequentially, the same searches end to end through the gateway (authentication,
   policy, audit event, signed forwarding, the recognition service's SQL) and as the raw SQL
   the recognition service runs (``lpr_recognition.search.repository.build_search_sql``)
   over asyncpg: exact plate over 30 days, wildcard (``7AB?12*``) over 30 days, area
   (500 m around a camera) over 30 days, newest 50 results.
4. Runs the exact searches again through the gateway alone and prints the CPU time each
   process spent per search (gateway, recognition, audit, hotlist, PostgreSQL with its
   backends when the bench started it, and this client): where the overhead goes.

Without ``DATABASE_URL`` an embedded PostgreSQL is started in a temporary directory (and
removed). The last line printed is one JSON object. Run:
``uv run python bench/search.py --rows 200000`` first, then without ``--rows``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._cpu import cpu_seconds
from lpr_common.http import WireTransport
from lpr_common.migrations import upgrade
from lpr_common.settings import LprSettings
from lpr_recognition.search.repository import SearchQuery, build_search_sql, positional
from lpr_recognition.search.schemas import SearchRequest
from lpr_recognition.search.service import build_query
from lprctl.postgres import EmbeddedPostgres, free_port, free_ports
from lprctl.stack import SERVICES, Stack

AGENCY = "CA0010000"
CENTER = (38.5816, -121.4944)
CASE = "PD-2026-000777"
READ_COLUMNS = [
    "id", "captured_at", "received_at", "camera_read_id", "camera_id", "agency",
    "deployment_id", "latitude", "longitude", "heading", "status",
]  # fmt: skip
PLATE_COLUMNS = [
    "read_id", "captured_at", "plate_index", "text", "normalized_text", "confidence",
    "state", "source",
]  # fmt: skip
LETTERS = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ"))
DIGITS = np.array(list("0123456789"))


def log(message: str) -> None:
    """Progress on stderr; the JSON line alone on stdout at the end."""
    print(message, file=sys.stderr, flush=True)


# --- synthetic data -------------------------------------------------------------------------


@dataclass
class Population:
    """The plates and cameras the synthetic reads are drawn from."""

    plates: np.ndarray[Any, Any]  # str, every plate of the population
    frequent: int  # plates[:frequent] are the frequent ones
    camera_block: list[str]  # per camera: camera_id, agency, deployment, lat, lon, heading, status
    camera_points: np.ndarray[Any, Any]  # per camera (lat, lon)


def make_population(
    rows: int, cameras: int, frequent_share: float, rng: np.random.Generator
) -> Population:
    """Plates like California's ``7ABC123`` and fixed cameras within ~15 km of the center."""
    frequent = max(10, rows // 200)
    rare = max(10, int(rows * (1 - frequent_share) / 1.6))
    total = frequent + rare
    parts = [
        DIGITS[rng.integers(1, 10, total)],
        LETTERS[rng.integers(0, len(LETTERS), total)],
        LETTERS[rng.integers(0, len(LETTERS), total)],
        LETTERS[rng.integers(0, len(LETTERS), total)],
        DIGITS[rng.integers(0, 10, total)],
        DIGITS[rng.integers(0, 10, total)],
        DIGITS[rng.integers(0, 10, total)],
    ]
    plates = np.array(["".join(chars) for chars in zip(*parts, strict=True)])
    points = np.column_stack(
        [
            CENTER[0] + rng.uniform(-0.13, 0.13, cameras),
            CENTER[1] + rng.uniform(-0.17, 0.17, cameras),
        ]
    )
    block = [
        f"bench-cam-{c:04d}\t{AGENCY}\tbench-dep-{c // 4:04d}\t{lat:.6f}\t{lon:.6f}\t"
        f"{(c * 37) % 360}\trecognized"
        for c, (lat, lon) in enumerate(points)
    ]
    return Population(plates, frequent, block, points)


def day_rows(
    population: Population,
    count: int,
    start: datetime,
    seconds: float,
    frequent_share: float,
    rng: np.random.Generator,
) -> tuple[bytes, bytes]:
    """COPY text of ``count`` reads (and their plates) captured within one day."""
    offsets = np.sort(rng.uniform(0, seconds, count))
    stamps = np.datetime64(start.replace(tzinfo=None), "us") + (offsets * 1e6).astype(
        "timedelta64[us]"
    )
    times = np.datetime_as_string(stamps, unit="ms")
    frequent = rng.random(count) < frequent_share
    plate_ids = np.where(
        frequent,
        rng.integers(0, population.frequent, count),
        rng.integers(population.frequent, len(population.plates), count),
    )
    plates = population.plates[plate_ids]
    cameras = rng.integers(0, len(population.camera_block), count)
    ids = secrets.token_hex(16 * count)
    confidence = np.round(rng.uniform(0.55, 0.99, count), 3).astype(str)
    block = population.camera_block
    reads = io.StringIO()
    plate_rows = io.StringIO()
    reads.writelines(
        f"{ids[32 * i : 32 * i + 32]}\t{t}Z\t{t}Z\tb{i}\t{block[c]}\n"
        for i, (t, c) in enumerate(zip(times, cameras, strict=True))
    )
    plate_rows.writelines(
        f"{ids[32 * i : 32 * i + 32]}\t{t}Z\t0\t{p}\t{p}\t{q}\tCA\tedge\n"
        for i, (t, p, q) in enumerate(zip(times, plates, confidence, strict=True))
    )
    return reads.getvalue().encode(), plate_rows.getvalue().encode()


def day_spans(days: int, now: datetime) -> list[tuple[date, datetime, float]]:
    """Each UTC day of the window: the day, when its reads start, how many seconds they span."""
    start = now - timedelta(days=days)
    spans = []
    day = start.date()
    while True:
        day_start = datetime.combine(day, day_time(), tzinfo=UTC)
        lo = max(day_start, start)
        hi = min(day_start + timedelta(days=1), now)
        if lo >= now:
            break
        spans.append((day, lo, (hi - lo).total_seconds()))
        day += timedelta(days=1)
    return spans


async def load(
    url: str, rows: int, days: int, cameras: int, frequent_share: float, seed: int
) -> tuple[Population, dict[str, float]]:
    """Load the reads; return the population and load figures."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    population = make_population(rows, cameras, frequent_share, rng)
    now = datetime.now(UTC)
    spans = day_spans(days, now)
    total_seconds = sum(s for _, _, s in spans)
    counts = [round(rows * s / total_seconds) for _, _, s in spans]
    counts[-1] += rows - sum(counts)
    log(
        f"population: {len(population.plates):,} plates ({population.frequent:,} frequent), {cameras} cameras, {len(spans)} days"
    )
    connection = await asyncpg.connect(url)
    await connection.execute("SET maintenance_work_mem = '512MB'")
    copy_s = attach_s = 0.0
    executor = ThreadPoolExecutor(max_workers=1)
    loaded = 0

    def generate(index: int) -> tuple[bytes, bytes]:
        _, lo, seconds = spans[index]
        return day_rows(
            population,
            counts[index],
            lo,
            seconds,
            frequent_share,
            np.random.default_rng(seed + index + 1),
        )

    pending: Future[tuple[bytes, bytes]] = executor.submit(generate, 0)
    try:
        for index, (day, _, _) in enumerate(spans):
            reads_text, plates_text = pending.result()
            if index + 1 < len(spans):
                pending = executor.submit(generate, index + 1)
            suffix = f"p{day:%Y%m%d}"
            exists = await connection.fetchval(
                "SELECT to_regclass($1)", f"recognition.reads_{suffix}"
            )
            begin = time.perf_counter()
            if exists:
                # A database that already has this day: COPY through the parent instead.
                await connection.copy_to_table(
                    "reads",
                    schema_name="recognition",
                    source=io.BytesIO(reads_text),
                    columns=READ_COLUMNS,
                )
                await connection.copy_to_table(
                    "plates",
                    schema_name="recognition",
                    source=io.BytesIO(plates_text),
                    columns=PLATE_COLUMNS,
                )
                copy_s += time.perf_counter() - begin
            else:
                for table in ("reads", "plates"):
                    await connection.execute(
                        f"CREATE TABLE recognition.{table}_{suffix} "
                        f"(LIKE recognition.{table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                    )
                await connection.copy_to_table(
                    f"reads_{suffix}",
                    schema_name="recognition",
                    source=io.BytesIO(reads_text),
                    columns=READ_COLUMNS,
                )
                await connection.copy_to_table(
                    f"plates_{suffix}",
                    schema_name="recognition",
                    source=io.BytesIO(plates_text),
                    columns=PLATE_COLUMNS,
                )
                middle = time.perf_counter()
                copy_s += middle - begin
                day_start = datetime.combine(day, day_time(), tzinfo=UTC)
                bounds = f"FROM ('{day_start.isoformat()}') TO ('{(day_start + timedelta(days=1)).isoformat()}')"
                for table in ("reads", "plates"):
                    await connection.execute(
                        f"ALTER TABLE recognition.{table} ATTACH PARTITION recognition.{table}_{suffix} FOR VALUES {bounds}"
                    )
                attach_s += time.perf_counter() - middle
            loaded += counts[index]
            if index % 10 == 0 or index == len(spans) - 1:
                elapsed = time.perf_counter() - started
                log(f"  {day}: {loaded:,} reads loaded, {loaded / elapsed:,.0f} rows/s")
        begin = time.perf_counter()
        await connection.execute("VACUUM (ANALYZE) recognition.reads")
        await connection.execute("VACUUM (ANALYZE) recognition.plates")
        vacuum_s = time.perf_counter() - begin
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        await connection.close()
    total_s = time.perf_counter() - started
    figures = {
        "load_s": round(total_s, 1),
        "copy_s": round(copy_s, 1),
        "attach_index_s": round(attach_s, 1),
        "vacuum_analyze_s": round(vacuum_s, 1),
        "load_rows_per_s": round(rows / (total_s - vacuum_s)),
        "copy_rows_per_s": round(rows / copy_s) if copy_s else 0,
    }
    log(f"loaded {rows:,} reads in {total_s:.0f} s: {figures}")
    return population, figures


# --- queries --------------------------------------------------------------------------------


def _window(days: int = 30) -> dict[str, str]:
    now = datetime.now(UTC)
    return {"start": (now - timedelta(days=days)).isoformat(), "end": now.isoformat()}


def make_bodies(
    population: Population, count: int, rng: np.random.Generator
) -> dict[str, list[dict[str, Any]]]:
    """Search bodies of each kind: half frequent plates, half rare ones."""
    plates = population.plates
    picks = [
        int(rng.integers(0, population.frequent))
        if i % 2 == 0
        else int(rng.integers(population.frequent, len(plates)))
        for i in range(count)
    ]
    base = {"purpose": "stolen_vehicle", "case_number": CASE, "limit": 50}
    exact = [{**base, "plate": str(plates[p]), "time_range": _window()} for p in picks]
    wildcard = [
        {**base, "plate": f"{plates[p][:3]}?{plates[p][4:6]}*", "time_range": _window()}
        for p in picks
    ]
    cams = rng.integers(0, len(population.camera_points), count)
    area = [
        {
            **base,
            "area": {
                "center": {
                    "latitude": float(population.camera_points[c][0]),
                    "longitude": float(population.camera_points[c][1]),
                },
                "radius_m": 500,
            },
            "time_range": _window(),
        }
        for c in cams
    ]
    return {"exact": exact, "wildcard": wildcard, "area": area}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank) in milliseconds, rounded."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return round(ordered[rank] * 1000, 2)


def raw_query(body: dict[str, Any]) -> SearchQuery:
    """The query the recognition service builds for ``body`` (same code path)."""
    request = SearchRequest.model_validate(body)
    query, _, _ = build_query(request, owner=AGENCY, now=datetime.now(UTC))
    return query


async def time_both(
    url: str, gateway_url: str, officer: Officer, bodies: list[dict[str, Any]], warmup: int
) -> dict[str, list[float]]:
    """Latencies of each search as raw SQL and through the gateway, alternating which goes first.

    Raw SQL runs on one asyncpg connection (prepared statements, as asyncpg caches them); the
    gateway is called on one keep-alive connection, through the same lean HTTP wire the
    services use between themselves (httpx's API over aiohttp: about a third of httpcore's
    CPU per request), so that both sides are measured with an efficient client.
    Alternating keeps caches fair to both.
    """
    connection = await asyncpg.connect(url)
    timings: dict[str, list[float]] = {"raw": [], "gateway": [], "raw_count": [], "count": []}
    try:
        async with httpx.AsyncClient(
            base_url=gateway_url, timeout=60, transport=WireTransport()
        ) as client:
            for position, body in enumerate(bodies):
                sql, params = build_search_sql(raw_query(body))
                statement, args = positional(sql, {**params, "limit": body["limit"] + 1})
                headers = {"Authorization": f"Bearer {await officer.token(client)}"}
                measured: dict[str, float] = {}
                for which in ("raw", "gateway") if position % 2 else ("gateway", "raw"):
                    begin = time.perf_counter()
                    if which == "raw":
                        rows = await connection.fetch(statement, *args)
                    else:
                        response = await client.post("/v1/reads/search", json=body, headers=headers)
                    measured[which] = time.perf_counter() - begin
                if response.status_code != 200:
                    raise RuntimeError(
                        f"search failed: HTTP {response.status_code} {response.text[:300]}"
                    )
                if position >= warmup:
                    timings["raw"].append(measured["raw"])
                    timings["gateway"].append(measured["gateway"])
                    timings["raw_count"].append(min(len(rows), body["limit"]))
                    timings["count"].append(int(response.headers["X-LPR-Result-Count"]))
    finally:
        await connection.close()
    return timings


def cpu_by_process(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds of each named process with its children, and of this one (``client``)."""
    totals: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            totals[name] = cpu_seconds(psutil.Process(pid))
        except psutil.Error:
            continue
    totals["client"] = cpu_seconds(psutil.Process(), children=False)
    return totals


async def cpu_per_search(
    gateway_url: str, officer: Officer, bodies: list[dict[str, Any]], pids: dict[str, int]
) -> dict[str, float]:
    """Milliseconds of CPU each process spent per search, over searches through the gateway."""
    async with httpx.AsyncClient(
        base_url=gateway_url, timeout=60, transport=WireTransport()
    ) as client:
        headers = {"Authorization": f"Bearer {await officer.token(client)}"}
        before = cpu_by_process(pids)
        for body in bodies:
            response = await client.post("/v1/reads/search", json=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"search failed: HTTP {response.status_code}")
        after = cpu_by_process(pids)
    return {
        name: round(1000 * (after[name] - before[name]) / len(bodies), 2)
        for name in after
        if name in before
    }


class Officer:
    """A trained officer's token, renewed before it expires."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self._token, self._renew_at = "", 0.0

    async def token(self, client: httpx.AsyncClient) -> str:
        """A valid bearer token (renewed outside the timed calls)."""
        if time.monotonic() >= self._renew_at:
            response = await client.post(
                "/v1/auth/token",
                data={
                    "grant_type": "password",
                    "username": self.username,
                    "password": self.password,
                },
            )
            response.raise_for_status()
            answer = response.json()
            self._token = answer["access_token"]
            self._renew_at = time.monotonic() + min(600, answer.get("expires_in", 900) - 60)
        return self._token


# --- main -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90, help="days of reads, ending now")
    parser.add_argument("--cameras", type=int, default=400)
    parser.add_argument("--frequent-share", type=float, default=0.4)
    parser.add_argument("--queries", type=int, default=200, help="timed searches of each kind")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="lpr-bench-search-"))
    server: EmbeddedPostgres | None = None
    stack: Stack | None = None
    try:
        url = os.environ.get("DATABASE_URL")
        if not url:
            server = EmbeddedPostgres(workdir / "pg", free_port(), database="lpr_bench")
            server.initialize()
            server.start()
            url = server.url
            log(f"embedded PostgreSQL at {url}")
        for spec in SERVICES:
            upgrade(spec.package, spec.name, url)
        population, figures = asyncio.run(
            load(url, args.rows, args.days, args.cameras, args.frequent_share, args.seed)
        )

        gateway, recognition, hotlist, audit, *triton_ports = free_ports(7)
        settings = LprSettings(
            data_dir=workdir / "stack",
            environment="test",
            agency=AGENCY,
            gateway_url=f"http://127.0.0.1:{gateway}",
            recognition_url=f"http://127.0.0.1:{recognition}",
            hotlist_url=f"http://127.0.0.1:{hotlist}",
            audit_url=f"http://127.0.0.1:{audit}",
        )
        stack = Stack(
            settings,
            echo=log,
            external_database_url=url,
            triton="off",
            triton_ports=(triton_ports[0], triton_ports[1], triton_ports[2]),
            extra_env={"LPR_AGENCY": AGENCY, "LPR_WORKERS_ENABLED": "false"},
        )
        stack.start(ready_timeout_s=120)
        from lpr_gateway.bootstrap import bootstrap_user

        username, password = f"bench-officer-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
        bootstrap_user(
            url,
            username=username,
            password=password,
            roles=["officer"],
            agency=AGENCY,
            training_expires_at=datetime.now(UTC) + timedelta(days=365),
        )
        bodies = make_bodies(
            population, args.queries + args.warmup, np.random.default_rng(args.seed + 99)
        )
        results: dict[str, Any] = {"rows": args.rows, "days": args.days, "queries": args.queries}
        officer = Officer(username, password)
        for kind in ("exact", "wildcard", "area"):
            timings = asyncio.run(
                time_both(url, settings.gateway_url, officer, bodies[kind], args.warmup)
            )
            if timings["raw_count"] != timings["count"]:
                log(f"  note: {kind}: raw SQL and gateway result counts differ")
            results[f"{kind}_p50_ms"] = percentile(timings["gateway"], 50)
            results[f"{kind}_p95_ms"] = percentile(timings["gateway"], 95)
            results[f"raw_{kind}_p50_ms"] = percentile(timings["raw"], 50)
            results[f"raw_{kind}_p95_ms"] = percentile(timings["raw"], 95)
            results[f"{kind}_mean_results"] = round(statistics.fmean(timings["count"]), 1)
            log(
                f"{kind:>8}: gateway p50 {results[f'{kind}_p50_ms']} ms "
                f"p95 {results[f'{kind}_p95_ms']} ms; raw SQL p50 {results[f'raw_{kind}_p50_ms']} ms "
                f"p95 {results[f'raw_{kind}_p95_ms']} ms; "
                f"{results[f'{kind}_mean_results']} results on average"
            )
        pids = {
            component.name: component.process.pid
            for component in stack.components
            if component.process is not None
        }
        if server is not None and server.process is not None:
            pids["postgres"] = server.process.pid
        cpu = asyncio.run(
            cpu_per_search(settings.gateway_url, officer, bodies["exact"][args.warmup :], pids)
        )
        results["exact_cpu_ms_per_search"] = cpu
        log(
            "CPU per exact search through the gateway: "
            + ", ".join(f"{name} {value:.2f} ms" for name, value in cpu.items())
        )
        results["exact_ratio_to_raw_sql"] = round(
            results["exact_p95_ms"] / max(results["raw_exact_p95_ms"], 0.001), 2
        )
        results["exact_overhead_p95_ms"] = round(
            results["exact_p95_ms"] - results["raw_exact_p95_ms"], 2
        )
        results.update(figures)
        results["exact_p95_target_met"] = results["exact_p95_ms"] < 50
        print(json.dumps(results, sort_keys=True))
        return 0
    finally:
        if stack is not None:
            stack.stop()
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
