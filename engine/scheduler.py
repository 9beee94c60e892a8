"""The daemon's scheduler: APScheduler 3.11, one job per (connection, flow).

Jobs are rebuilt from the config at every start (memory job store); durable
state lives in the state database. ``max_instances=1`` and ``coalesce`` keep a
slow run from piling up; the misfire grace time is generous. The connections'
first runs are spread over the shortest interval (at most two minutes), so a
daemon with many connections does not start them all in the same instant.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from engine.runner import Engine

log = logging.getLogger("ordersync.scheduler")

MISFIRE_GRACE_SECONDS = 15 * 60
GRACE_SECONDS = 30.0
"""On SIGTERM, how long running flows get to finish their current step."""
MAX_SPREAD_SECONDS = 120.0
"""First runs of the connections are spread over the shortest interval, at most this long."""


def build_scheduler(engine: Engine, *, cycles: int | None = None) -> AsyncIOScheduler:
    """Schedule every enabled flow of every active connection.

    :param cycles: stop the engine once every job has run this many times (demo, tests).
    """
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": MISFIRE_GRACE_SECONDS,
        },
    )
    runs: Counter[str] = Counter()
    job_ids: list[str] = []

    async def job(connection_id: str, flow: str) -> None:
        if engine.stop.is_set():
            return
        await engine.run_flow(connection_id, flow)
        runs[f"{connection_id}:{flow}"] += 1
        if cycles is not None and all(runs[j] >= cycles for j in job_ids):
            engine.stop.set()

    now = datetime.now(UTC)
    connections = engine.loaded.connections
    intervals = [getattr(c.schedule, f) for c in connections for f in c.flows()]
    spread = min([MAX_SPREAD_SECONDS, *intervals])
    for index, conn in enumerate(connections):
        # Connection i of n first runs i/n of the way into the shortest interval:
        # a thousand connections do not start three thousand flow runs at once.
        first = now + timedelta(seconds=spread * index / len(connections))
        for flow in conn.flows():
            job_id = f"{conn.id}:{flow}"
            job_ids.append(job_id)
            scheduler.add_job(
                job,
                "interval",
                seconds=getattr(conn.schedule, flow),
                args=[conn.id, flow],
                id=job_id,
                name=job_id,
                next_run_time=first,
                replace_existing=True,
            )

    def listener(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("job %s missed its run time %s", event.job_id, event.scheduled_run_time)
        elif event.exception is not None:
            log.error("job %s raised %r", event.job_id, event.exception)

    scheduler.add_listener(listener, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    if not job_ids and cycles is not None:
        engine.stop.set()
    return scheduler


async def run_until_stopped(
    engine: Engine, *, cycles: int | None = None, grace: float = GRACE_SECONDS
) -> None:
    """Run the schedule until ``engine.stop`` is set, then stop cleanly.

    Stopping: no job starts any more; the flows that are running (or waiting for
    their connection) finish their current step and checkpoint, for up to
    ``grace`` seconds; only then is the scheduler shut down (APScheduler's
    asyncio executor cancels whatever is still running when it shuts down).
    Anything still running after ``grace`` is cancelled; its committed intents
    are reconciled at the next start.
    """
    scheduler = build_scheduler(engine, cycles=cycles)
    scheduler.start()
    try:
        await engine.stop.wait()
    finally:
        engine.stop.set()
        scheduler.pause()
        scheduler.remove_all_jobs()
        await finish_running(engine, grace)
        scheduler.shutdown(wait=False)
        await engine.aclose()


async def finish_running(engine: Engine, grace: float) -> None:
    """Wait up to ``grace`` seconds for the engine's flows; cancel the rest."""
    pending = {t for t in engine.tasks if not t.done()}
    if not pending:
        return
    log.info("stopping: waiting for %d running flow(s) to checkpoint", len(pending))
    _, still = await asyncio.wait(pending, timeout=grace)
    if still:
        log.warning("stopping: cancelling %d flow(s) still running after %.0f s", len(still), grace)
        for task in still:
            task.cancel()
        await asyncio.wait(still, timeout=5)
    else:
        log.info("stopping: every running flow has checkpointed")
