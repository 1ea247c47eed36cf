"""BENCHMARK ONLY, never shipped in the provider: probe (and optionally patch) the loop of
Airflow's triggerer supervisor, to show which part of the time is Airflow's.

Airflow 3.3's ``TriggerRunnerSupervisor.run_once`` does, once per iteration: load the
triggers from the database, ONE ``selector.select`` on the trigger runner's socket (whose
callback reads one request frame), the events, the heartbeat. Each request of a trigger
(a connection lookup is three: the URI, then masking two secrets) therefore waits for an
iteration, about one per second with thousands of triggers.

``SCALE_SUPERVISOR_PROBE=<file>``: every 5 s, append ``<unix time> <iterations> <frames>``
(run_once iterations and request frames served since the start) to ``<file>``.

``SCALE_SUPERVISOR_DRAIN=1``: a patched ``_service_subprocess`` that, after its select,
keeps serving every frame already waiting on the sockets (select with timeout 0) for up to
0.5 s, instead of one frame per iteration. Nothing else changes. This is what upstream
would need to do (apache/airflow#65286 is about the same stall); it is here only to
measure what the provider achieves once that limit is lifted.

Loaded into the benchmark's Airflow components by ``triggerer_patch/sitecustomize.py``,
which applies it when (and only if) ``airflow.jobs.triggerer_job_runner`` is imported.
"""

from __future__ import annotations

import os
import time
from typing import Any

DRAIN_SECONDS = 0.5


def install(module: Any) -> None:
    """Patch ``module`` (``airflow.jobs.triggerer_job_runner``) as the environment asks."""
    supervisor = module.TriggerRunnerSupervisor
    probe_file = os.environ.get("SCALE_SUPERVISOR_PROBE")
    counts = {"iterations": 0, "frames": 0, "written": time.time()}

    if probe_file:
        run_once, handle_request = supervisor.run_once, supervisor._handle_request

        def counted_run_once(self: Any) -> None:
            run_once(self)
            counts["iterations"] += 1
            now = time.time()
            if now - counts["written"] >= 5:
                counts["written"] = now
                with open(probe_file, "a") as out:
                    out.write(f"{now:.3f} {counts['iterations']} {counts['frames']}\n")

        def counted_handle_request(self: Any, *args: Any, **kwargs: Any) -> None:
            counts["frames"] += 1
            handle_request(self, *args, **kwargs)

        supervisor.run_once = counted_run_once
        supervisor._handle_request = counted_handle_request

    if os.environ.get("SCALE_SUPERVISOR_DRAIN") == "1":
        service = supervisor._service_subprocess

        def draining_service(self: Any, max_wait_time: float, *args: Any, **kwargs: Any) -> Any:
            exit_code = service(self, max_wait_time, *args, **kwargs)
            until = time.monotonic() + DRAIN_SECONDS
            while exit_code is None and time.monotonic() < until:
                ready = self.selector.select(timeout=0)
                if not ready:
                    break
                for key, _ in ready:
                    handler, on_close = key.data
                    try:
                        need_more = handler(key.fileobj)
                    except (BrokenPipeError, ConnectionResetError):
                        need_more = False
                    if not need_more:
                        on_close(key.fileobj)
                        key.fileobj.close()
                exit_code = self._check_subprocess_exit()
            return exit_code

        supervisor._service_subprocess = draining_service
