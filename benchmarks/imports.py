"""What importing the provider costs a DAG file: the sensor, both operators, the trigger.

Run from the repository root::

    python -m benchmarks.imports              # 7 fresh interpreters per row
    python -m benchmarks.imports --repeat 15

Every DAG-processor process imports these modules for each DAG file that uses them, after
``airflow.sdk``. Each row is the median CPU time of fresh interpreters
(``python -c "import ..."``), run alternately so that load on the machine hits both rows
alike; the provider's cost is the difference. ``python -X importtime`` then names the
provider's modules that cost the most.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys

from benchmarks.harness import machine_note, prepare_airflow_home

BASE = "import airflow.sdk"
PROVIDER_MODULES = [
    "airflow_provider_mail.sensors.receive",
    "airflow_provider_mail.operators.map",
    "airflow_provider_mail.operators.send",
    "airflow_provider_mail.triggers.receive",
]
WITH_PROVIDER = BASE + "; import " + ", ".join(PROVIDER_MODULES)


def cpu_time(code: str) -> float:
    """CPU seconds (user + system) of a fresh interpreter running ``code``.

    CPU rather than wall time: on a shared machine the wall time of a process that
    imports for seconds mostly measures the other processes.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def provider_import_times() -> list[tuple[int, str]]:
    """``-X importtime`` cumulative microseconds of modules imported after ``airflow.sdk``."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", WITH_PROVIDER],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    rows = []
    after_sdk = False
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        if name.strip() == "airflow.sdk" and name.startswith("  airflow.sdk") is False:
            after_sdk = True
            continue
        if after_sdk and name.strip() and cumulative.strip().isdigit():
            rows.append((int(cumulative), name.rstrip()))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    prepare_airflow_home()
    cpu_time(WITH_PROVIDER)  # warm the file cache and the bytecode
    base, provider, importtime = [], [], []
    tops: list[tuple[int, str]] = []
    for _ in range(args.repeat):
        base.append(cpu_time(BASE))
        provider.append(cpu_time(WITH_PROVIDER))
        rows = provider_import_times()
        tops = [row for row in rows if not row[1].startswith("  ")]
        importtime.append(sum(cumulative for cumulative, _name in tops) / 1000)
    base_ms = statistics.median(base) * 1000
    provider_ms = statistics.median(provider) * 1000
    print(f"\n### Import cost (median of {args.repeat} fresh interpreters)\n")
    print("| measure | ms |\n|---|---:|")
    print(
        "| `-X importtime`: the provider's modules imported after `airflow.sdk` "
        f"(cumulative) | **{statistics.median(importtime):.0f}** |"
    )
    print(f"| CPU of `import airflow.sdk` | {base_ms:.0f} |")
    print(f"| CPU of the same + sensor, trigger, both operators | {provider_ms:.0f} |")
    print(
        "\nThe CPU rows differ by less than their noise when `airflow.sdk` alone takes "
        "seconds; `-X importtime` times the provider's modules themselves."
    )
    print("\n`-X importtime`, last run (top-level imports after `airflow.sdk`, cumulative ms):\n")
    for cumulative, name in sorted(tops, reverse=True)[:12]:
        print(f"- `{name.strip()}`: {cumulative / 1000:.1f}")
    print(f"\n{machine_note()}")


if __name__ == "__main__":
    main()
