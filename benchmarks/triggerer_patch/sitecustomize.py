"""BENCHMARK ONLY: applies :mod:`benchmarks.supervisor_patch` to Airflow's triggerer
supervisor when ``airflow.jobs.triggerer_job_runner`` is imported (nothing else is touched;
this directory is on the PYTHONPATH of the benchmark's Airflow only when asked for)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

TARGET = "airflow.jobs.triggerer_job_runner"


class _Patcher(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def patched_exec(module: ModuleType) -> None:
            exec_module(module)
            from benchmarks.supervisor_patch import install

            install(module)

        loader.exec_module = patched_exec  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _Patcher())
