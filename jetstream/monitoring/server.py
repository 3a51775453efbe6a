"""`jetstream monitor serve`: run the three jobs on their cron schedules in a background
thread and serve the monitoring page (and the exported JSON) over HTTP.

With `demo` set, each five-minute run first refreshes the synthetic live event stream up
to the current time (`jetstream.synthetic.generate_live`), so the page shows moving
numbers; `tick` shortens the five-minute cadence for a demo.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from jetstream.artifacts import ArtifactStore
from jetstream.errors import JetstreamError
from jetstream.experiments import Experiment
from jetstream.logs import get_logger
from jetstream.monitoring.jobs import PAGE_PATH, Monitor
from jetstream.monitoring.schedule import CRON, Job, utc

log = get_logger(__name__)

PLACEHOLDER = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='5'>"
    "<title>Live experiment monitoring</title></head><body><p>Waiting for the first "
    "five-minute run...</p></body></html>"
)


def due_jobs(
    since: dt.datetime, until: dt.datetime, cron: dict[Job, str] = CRON
) -> list[tuple[dt.datetime, Job]]:
    """Every (scheduled time, job) in (since, until], in time order; daily before hourly
    before five-minute at the same instant (so the five-minute job sees their work)."""
    from croniter import croniter  # type: ignore[import-untyped]

    order = {Job.DAILY: 0, Job.HOURLY: 1, Job.FIVE_MINUTE: 2}
    out = []
    for job, expr in cron.items():
        it = croniter(expr, utc(since))
        while True:
            t = utc(it.get_next(dt.datetime))
            if t > utc(until):
                break
            out.append((t, job))
    return sorted(out, key=lambda p: (p[0], order[p[1]]))


@attrs.define
class DemoStream:
    """Regenerates the synthetic live tables before a run: every event from the start of
    the previous UTC day (when the demo experiments start) up to `now`. The generator is
    deterministic per minute, so each refresh keeps the old events and adds the new."""

    clients: int = 20_000
    seed: int = 1

    def refresh(self, warehouse: Any, now: dt.datetime) -> None:
        from jetstream import synthetic

        origin = dt.datetime.combine(utc(now).date() - dt.timedelta(days=1), dt.time(),
                                     tzinfo=dt.UTC)  # fmt: skip
        hours = int((utc(now) - origin) / dt.timedelta(hours=1)) + 1
        synthetic.write(warehouse, synthetic.generate_live(self.clients, self.seed, now, hours))


def demo_experiments(today: dt.date) -> list[Experiment]:
    """The synthetic experiments, started yesterday, enrolling."""
    from jetstream.config.model import Branch
    from jetstream.synthetic import DEFAULT_EXPERIMENTS

    return [
        Experiment(
            slug=e.slug,
            app_name=e.app_name,
            app_id=e.app_id,
            branches=tuple(Branch(b.slug, b.ratio) for b in e.branches),
            reference_branch=e.branches[0].slug,
            start_date=today - dt.timedelta(days=1),
            end_date=None,
            proposed_enrollment=7,
            enrollment_end_date=None,
            is_enrollment_paused=False,
            is_rollout=e.is_rollout,
            status="Live",
        )  # fmt: skip
        for e in DEFAULT_EXPERIMENTS
    ]


class Scheduler:
    """Runs due jobs; `tick` > 0 runs the five-minute job every `tick` seconds at the
    current time instead of on its cron schedule."""

    def __init__(
        self,
        monitor: Monitor,
        experiments: Callable[[], Sequence[Experiment]],
        store: ArtifactStore,
        demo: DemoStream | None = None,
        tick: float = 0.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ):
        self.monitor, self.experiments, self.store = monitor, experiments, store
        self.demo, self.tick, self.clock = demo, tick, clock
        self.stop = threading.Event()
        self.last: dt.datetime | None = None
        self.runs = 0

    def run_once(self, now: dt.datetime) -> None:
        if self.last is None:
            # First pass: finalize yesterday, cover the last hour, then the recents.
            plan = [(now, Job.DAILY), (now, Job.HOURLY), (now, Job.FIVE_MINUTE)]
        elif self.tick:
            plan = [(t, j) for t, j in due_jobs(self.last, now) if j is not Job.FIVE_MINUTE]
            plan.append((now, Job.FIVE_MINUTE))
        else:
            plan = due_jobs(self.last, now)
        self.last = now
        if self.demo is not None:
            self.demo.refresh(self.monitor.wh, now)
        for at, job in plan:
            try:
                self.monitor.run(job, at, self.experiments(), self.store)
                self.runs += 1
            except Exception as exc:  # noqa: BLE001 - keep serving; the next run retries
                log.error("monitor.job_failed", job=str(job), at=at.isoformat(), error=str(exc))

    def loop(self) -> None:
        while not self.stop.is_set():
            self.run_once(self.clock())
            self.stop.wait(self.tick if self.tick else 20.0)


def app(store: ArtifactStore) -> Any:
    """Starlette app: `/` the page, `/monitoring/<file>` the exported documents."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    async def page(request: Any) -> Response:
        try:
            return HTMLResponse(store.read_bytes(PAGE_PATH).decode())
        except FileNotFoundError:
            return HTMLResponse(PLACEHOLDER)

    async def document(request: Any) -> Response:
        name = request.path_params["name"]
        try:
            data = store.read_bytes(f"monitoring/{name}")
        except (FileNotFoundError, JetstreamError, OSError):
            return Response("not found", status_code=404)
        kind = "text/html" if name.endswith(".html") else "application/json"
        return Response(data, media_type=kind)

    return Starlette(routes=[Route("/", page), Route("/monitoring/{name:str}", document)])
