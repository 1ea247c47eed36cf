#!/usr/bin/env bash
# make test-matrix: one venv per Airflow 3 minor (oldest and newest Python each supports),
# the provider installed editable into each, then the unit tests and a representative set of
# real-server and dag.test() tests. Venvs are kept under $MATRIX_DIR and reused.
#
#   MATRIX="3.0.6:3.10 3.3.2:3.13" sh .ci/matrix.sh     # only some entries (CI: oldest, newest)
#   MATRIX_STEP=install sh .ci/matrix.sh                 # build the venvs, run nothing
set -euo pipefail
cd "$(dirname "$0")/.."

MATRIX_DIR="${MATRIX_DIR:-$PWD/.matrix}"
MATRIX="${MATRIX:-3.0.6:3.10 3.1.8:3.11 3.2.2:3.12 3.3.2:3.13}"
MATRIX_STEP="${MATRIX_STEP:-all}"
# What every entry runs: pure unit tests, the real-server hook/operator tests and dag.test()
# runs of the sensor and of the example DAGs.
MATRIX_TESTS="${MATRIX_TESTS:-tests/unit tests/test_smtp_hook.py tests/test_send_operator.py tests/test_receive_hooks_connect.py tests/test_receive_sensor.py tests/test_examples_end_to_end.py tests/test_map_send_dag.py tests/test_provider_cli.py}"

# A Python of the given minor: pyenv's (which this machine kind carries), else on PATH. Each
# candidate must run: pyenv's shims exist on PATH for versions that are not selected.
find_python() {
  local minor="$1" candidate
  for candidate in "$(pyenv root 2>/dev/null)/versions/$minor".*/bin/python "python$minor"; do
    if "$candidate" -c 'import venv' >/dev/null 2>&1; then
      command -v "$candidate"
      return
    fi
  done
  return 1
}

status=0
summary=""
for entry in $MATRIX; do
  airflow="${entry%%:*}"
  py="${entry##*:}"
  minor="${airflow%.*}"
  venv="$MATRIX_DIR/airflow-$airflow-py$py"
  if ! python_bin="$(find_python "$py")"; then
    echo "matrix: Python $py not found (install it or set MATRIX); skipping Airflow $airflow" >&2
    summary="$summary\n$airflow  py$py  SKIPPED (no Python $py)"
    status=1
    continue
  fi
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import airflow, sys; sys.exit(airflow.__version__ != '$airflow')" 2>/dev/null; then
    echo "matrix: creating $venv (Airflow $airflow, Python $py)"
    rm -rf "$venv"
    "$python_bin" -m venv "$venv"
    # The pins file names what each minor needs besides its own metadata (see its comments).
    # pip's notes about this machine's local index folders are noise here.
    "$venv/bin/python" -m pip install -q -e '.[test]' "apache-airflow==$airflow" \
      -c ".ci/pins/airflow-$minor.txt" 2>&1 | grep -v -e "is ignored: it is neither" >&2 || true
    "$venv/bin/python" -c "import airflow_provider_mail.sensors.receive" || { status=1; continue; }
  fi
  [ "$MATRIX_STEP" = install ] && continue
  echo "matrix: Airflow $airflow on Python $py"
  start=$(date +%s)
  # shellcheck disable=SC2086
  if "$venv/bin/python" -m pytest -q -p no:cacheprovider $MATRIX_TESTS; then
    result=passed
  else
    result=FAILED
    status=1
  fi
  summary="$summary\n$airflow  py$py  $result  $(( $(date +%s) - start )) s"
done
printf "matrix:%b\n" "$summary"
exit $status
