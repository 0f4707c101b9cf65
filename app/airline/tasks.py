"""Housekeeping jobs on a schedule, deferred by procrastinate's periodic deferrer and run by the scheduler
process, the only worker of SCHEDULED_QUEUE (app/Procfile).

Every worker process defers periodic jobs, but the database records one defer per job and scheduled time
(procrastinate_periodic_defers), so two schedulers, or a scheduler and the workers, never run a tick twice;
each job's queueing lock also keeps at most one of it waiting, so a backlog cannot build while no scheduler
runs.
"""

from __future__ import annotations

import logging
from importlib import import_module

from asgiref.sync import sync_to_async
from django.conf import settings
from procrastinate import JobContext
from procrastinate.contrib.django import app

logger = logging.getLogger(__name__)

# Succeeded jobs are kept this long (to see what was sent); failed ones until someone deletes them.
FINISHED_JOBS_KEPT_HOURS = 7 * 24


@app.periodic(cron=settings.CLEANUP_CRON)
@app.task(queue=settings.SCHEDULED_QUEUE, queueing_lock="clean_up", pass_context=True)
async def clean_up(context: JobContext, timestamp: int) -> None:
    """Delete expired sessions (what `manage.py clearsessions` does) and old succeeded jobs."""
    session_store = import_module(settings.SESSION_ENGINE).SessionStore
    await sync_to_async(session_store.clear_expired)()
    await context.app.job_manager.delete_old_jobs(nb_hours=FINISHED_JOBS_KEPT_HOURS)


@app.periodic(cron=settings.STALLED_JOBS_CRON)
@app.task(queue=settings.SCHEDULED_QUEUE, queueing_lock="retry_stalled_jobs", pass_context=True)
async def retry_stalled_jobs(context: JobContext, timestamp: int) -> None:
    """Queue again the jobs of workers that died mid-job (SIGKILL, a lost machine): a worker sends a
    heartbeat every 10 s, and one silent for 30 s is taken for dead (procrastinate's defaults)."""
    for job in await context.app.job_manager.get_stalled_jobs():
        logger.warning("retrying stalled job %s", job.call_string)
        await context.app.job_manager.retry_job(job)
