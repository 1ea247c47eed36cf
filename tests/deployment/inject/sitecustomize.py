"""Fault injection for the deployment suite, loaded by every Airflow process it starts.

A *pause point* stops a task process until the suite SIGKILLs it: when its file exists,
the process writes its id to ``<file>.pid`` and sleeps. The files sit next to
``MAIL_DEPLOYMENT_PAUSE_FILE`` (``<home>/pause-hand-over``), named ``pause-<point>``
(every DAG) or ``pause-<point>-<dag_id>`` (one DAG; the task runner exports the running
DAG's id as ``AIRFLOW_CTX_DAG_ID``):

- ``hand-over``: in ``ImapHook.fetch``, the read step of a hand-over (the messages were
  taken and marked seen, or put into the handed-over set, not yet read);
- ``before-action``: in ``OwedActions.settle_own``, which the sensor's success callback
  calls once Airflow confirmed the task instance's success, before the move or delete of
  ``after_receive`` (the action stays owed for the task's next run).

The product is unchanged: the classes are patched when their modules are imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from typing import Any

PAUSE_FILE = os.environ.get("MAIL_DEPLOYMENT_PAUSE_FILE")


def _pause(point: str) -> None:
    assert PAUSE_FILE
    base = os.path.join(os.path.dirname(PAUSE_FILE), f"pause-{point}")
    dag_id = os.environ.get("AIRFLOW_CTX_DAG_ID")
    for path in ([f"{base}-{dag_id}"] if dag_id else []) + [base]:
        if os.path.exists(path):
            with open(f"{path}.pid", "w") as out:
                out.write(str(os.getpid()))
            time.sleep(120)
            return


def _patch_fetch(module: Any) -> None:
    fetch = module.ImapHook.fetch

    def paused_fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        _pause("hand-over")
        return fetch(self, *args, **kwargs)

    module.ImapHook.fetch = paused_fetch


def _patch_settle_own(module: Any) -> None:
    settle_own = module.OwedActions.settle_own

    def paused_settle_own(self: Any, *args: Any, **kwargs: Any) -> Any:
        _pause("before-action")
        return settle_own(self, *args, **kwargs)

    module.OwedActions.settle_own = paused_settle_own


PATCHES: dict[str, Callable[[Any], None]] = {
    "airflow_provider_mail.hooks.imap": _patch_fetch,
    "airflow_provider_mail.handover.owed": _patch_settle_own,
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.waiting = dict(PATCHES)

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        patch = self.waiting.pop(name, None)
        if patch is None:
            return None
        if not self.waiting:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


if PAUSE_FILE:
    sys.meta_path.insert(0, _PatchOnImport())
