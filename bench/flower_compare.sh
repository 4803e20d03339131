#!/usr/bin/env bash
# Flower (flwr) vs Starling aggregation benchmark: entry point.
#
#   bench/flower_compare.sh [--quick] [--workloads a,b,c] [--rules fedavg,median,...]
#                           [--keep-inputs | --regen-inputs] [--repeat K] [--seed S]
#                           [--flower-only] [--no-build] [...flower_compare.py options]
#
# 1. creates bench/.venv (if missing, or if bench/requirements.txt changed) with the
#    pinned flwr / numpy / safetensors;
# 2. builds Starling: cargo build --release -p starling-cli
#    (binary: ${CARGO_TARGET_DIR:-target}/release/starling);
# 3. runs bench/flower_compare.py, which writes bench/out/flower_compare.{md,json}.
#
# Environment: PYTHON (interpreter for the venv, default python3), CARGO_TARGET_DIR,
# STARLING_BIN (use this binary, skip the build), BENCH_* (see flower_compare.py --help).
# Exit status: 0, or 1 when a Flower/Starling result disagreement was flagged.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "${BENCH_DIR}/.." && pwd)"
VENV="${BENCH_DIR}/.venv"
REQS="${BENCH_DIR}/requirements.txt"
PYTHON="${PYTHON:-python3}"

build=1
flower_only=0
pass=()
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --flower-only) flower_only=1; pass+=("$arg") ;;
    -h|--help)
      sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      if [[ -x "${VENV}/bin/python" ]]; then
        echo
        "${VENV}/bin/python" "${BENCH_DIR}/flower_compare.py" --help
      fi
      exit 0 ;;
    *) pass+=("$arg") ;;
  esac
done

# ---- 1. virtualenv with pinned packages
stamp="${VENV}/.requirements.sha256"
want_sha="$(sha256sum "${REQS}" | cut -d' ' -f1)"
if [[ ! -x "${VENV}/bin/python" ]] || [[ "$(cat "${stamp}" 2>/dev/null || true)" != "${want_sha}" ]]; then
  echo ">> preparing ${VENV}"
  if [[ ! -x "${VENV}/bin/python" ]]; then
    "${PYTHON}" -m venv "${VENV}"
  fi
  "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
  # --no-deps: the file is a complete, pinned freeze (see its header for why).
  "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "${REQS}"
  echo "${want_sha}" > "${stamp}"
fi

# ---- 2. build Starling
starling=""
if [[ ${flower_only} -eq 0 ]]; then
  if [[ -n "${STARLING_BIN:-}" ]]; then
    starling="${STARLING_BIN}"
  else
    target_dir="${CARGO_TARGET_DIR:-${REPO_DIR}/target}"
    if [[ ${build} -eq 1 ]]; then
      echo ">> cargo build --release -p starling-cli (target dir ${target_dir})"
      (cd "${REPO_DIR}" && CARGO_TARGET_DIR="${target_dir}" cargo build --release -p starling-cli)
    fi
    starling="${target_dir}/release/starling"
  fi
  if [[ ! -x "${starling}" ]]; then
    echo "error: Starling binary not found at ${starling}" >&2
    exit 2
  fi
  if ! "${starling}" aggregate --help >/dev/null 2>&1; then
    echo "error: ${starling} has no 'aggregate' subcommand yet" >&2
    exit 2
  fi
fi

# ---- 3. run the comparison
cd "${REPO_DIR}"
if [[ -n "${starling}" ]]; then
  exec "${VENV}/bin/python" "${BENCH_DIR}/flower_compare.py" --starling "${starling}" ${pass[@]+"${pass[@]}"}
else
  exec "${VENV}/bin/python" "${BENCH_DIR}/flower_compare.py" ${pass[@]+"${pass[@]}"}
fi
