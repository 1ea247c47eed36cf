"""Fault injection for the deployment suite, loaded by every Airflow process it starts.

When the file named by ``MAIL_DEPLOYMENT_PAUSE_FILE`` exists, ``ImapHook.fetch`` (the read
step of a hand-over, after the messages were taken and marked seen) writes the process id
to ``<file>.pid`` and sleeps, so that the suite can SIGKILL the task process in the
middle of a hand-over. The product is unchanged: the hook is patched when it is imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import time
from typing import Any

PAUSE_FILE = os.environ.get("MAIL_DEPLOYMENT_PAUSE_FILE")
MODULE = "airflow_provider_mail.hooks.imap"


def _patch(module: Any) -> None:
    fetch = module.ImapHook.fetch

    def paused_fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        if PAUSE_FILE and os.path.exists(PAUSE_FILE):
            with open(f"{PAUSE_FILE}.pid", "w") as out:
                out.write(str(os.getpid()))
            time.sleep(120)
        return fetch(self, *args, **kwargs)

    module.ImapHook.fetch = paused_fetch


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


if PAUSE_FILE:
    sys.meta_path.insert(0, _PatchOnImport())
