"""What importing the provider costs a DAG file: the sensor, both operators, the trigger.

Run from the repository root::

    python -m benchmarks.imports              # 9 fresh interpreters per measure
    python -m benchmarks.imports --repeat 21

Every DAG-processor process imports these modules for each DAG file that uses them, after
``airflow.sdk``. Two measures, each in fresh interpreters that import ``airflow.sdk``
first (so only the provider's own cost counts):

- ``python -X importtime``: the cumulative time of the provider's top-level imports (what
  the issue asks for), per module too;
- the CPU time (``time.process_time``) the provider's imports take in the same process,
  which a busy machine inflates less than wall time.

Medians and minimums: on a shared machine the minimum is the closest to a quiet one.

The children run with their bytecode cached, as an installed provider runs (``pip``
writes the ``.pyc`` files): ``PYTHONDONTWRITEBYTECODE`` is dropped from their environment
and ``PYTHONPYCACHEPREFIX`` points at a temporary directory that the warm-up run fills, so
the worktree gets no ``__pycache__``. Without cached bytecode every fresh interpreter
compiles the provider's sources again, which nearly doubles the measure (``--no-bytecode``
shows it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict

from benchmarks.harness import machine_note, prepare_airflow_home

PROVIDER_MODULES = [
    "airflow_provider_mail.sensors.receive",
    "airflow_provider_mail.operators.map",
    "airflow_provider_mail.operators.send",
    "airflow_provider_mail.triggers.receive",
]
IMPORTS = "import airflow.sdk; import " + ", ".join(PROVIDER_MODULES)
CPU_OF_IMPORTS = (
    "import time, airflow.sdk; started = time.process_time(); import "
    + ", ".join(PROVIDER_MODULES)
    + "; print((time.process_time() - started) * 1000)"
)


#: The children's environment (see the module's docstring); set by :func:`main`.
CHILD_ENV: dict[str, str] = dict(os.environ)


def python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], check=True, capture_output=True, text=True, env=CHILD_ENV
    )


def importtime() -> dict[str, float]:
    """``-X importtime`` cumulative ms of each top-level import after ``airflow.sdk``."""
    rows: dict[str, float] = {}
    after_sdk = False
    for line in python("-X", "importtime", "-c", IMPORTS).stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _own, cumulative, name = line.removeprefix("import time:").split("|")
        if name.strip() == "airflow.sdk" and not name.startswith("  "):
            after_sdk = True
        elif after_sdk and cumulative.strip().isdigit() and not name.startswith("   "):
            rows[name.strip()] = int(cumulative) / 1000
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument(
        "--no-bytecode", action="store_true", help="compile the sources in every interpreter"
    )
    args = parser.parse_args(argv)
    prepare_airflow_home()
    cache = tempfile.TemporaryDirectory(prefix="bench-imports-pyc-")
    CHILD_ENV.clear()
    CHILD_ENV.update(os.environ)
    if args.no_bytecode:
        CHILD_ENV["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        CHILD_ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        CHILD_ENV["PYTHONPYCACHEPREFIX"] = cache.name
    python("-c", IMPORTS)  # warm the file cache and the bytecode
    totals, cpu = [], []
    modules: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.repeat):
        rows = importtime()
        totals.append(sum(rows.values()))
        for name, ms in rows.items():
            modules[name].append(ms)
        cpu.append(float(python("-c", CPU_OF_IMPORTS).stdout.split()[-1]))
    cache.cleanup()
    bytecode = "sources compiled in each" if args.no_bytecode else "bytecode cached"
    print(
        f"\n### Import cost over `import airflow.sdk` ({args.repeat} fresh interpreters, "
        f"{bytecode})\n"
    )
    print("| measure | median (ms) | min (ms) |\n|---|---:|---:|")
    print(
        "| `-X importtime`: the sensor, both operators and the trigger (cumulative) | "
        f"**{statistics.median(totals):.0f}** | {min(totals):.0f} |"
    )
    print(f"| CPU time of the same imports | {statistics.median(cpu):.0f} | {min(cpu):.0f} |")
    print("\n`-X importtime` per top-level import (cumulative ms, median / min):\n")
    for name, values in sorted(modules.items(), key=lambda item: -statistics.median(item[1])):
        print(f"- `{name}`: {statistics.median(values):.1f} / {min(values):.1f}")
    print(f"\n{machine_note()}")


if __name__ == "__main__":
    main()
