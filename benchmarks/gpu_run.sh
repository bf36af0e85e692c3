#!/usr/bin/env bash
# On the GPU machine (JAX with CUDA, no TensorFlow, no network), from the kplug tree's root:
#   bash benchmarks/gpu_run.sh [gpu_throughput.py arguments]
# Installs the wheels in $WHEELS (keras, keras-hub, pydantic, ..., and kplug's own wheel,
# which carries its plugin entry points) into /tmp/site, checks that TensorFlow is absent,
# then runs benchmarks/gpu_throughput.py; its log and JSON go to $OUT.
# Defaults: WHEELS=../.whl, OUT=/tmp/kplug-gpu, PYTHON=python3. The CPU dry run:
#   WHEELS=/work/main/.whl PYTHON=/tmp/py312/bin/python bash benchmarks/gpu_run.sh --tiny
set -uo pipefail
WHEELS=${WHEELS:-../.whl}
OUT=${OUT:-/tmp/kplug-gpu}
PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
mkdir -p "$OUT"
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$WHEELS"/*.whl || { echo "gpu_run: installing $WHEELS failed"; exit 1; }
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
"$PYTHON" - <<'PY' 2>&1 | tee "$OUT/environment.txt" || exit 1
import importlib.util, sys
if importlib.util.find_spec("tensorflow") is not None:
    sys.exit("gpu_run: TensorFlow is importable here; this run is for a TensorFlow-free install")
import jax, keras, keras_hub, kplug
from kplug.plugins import registry
print("python", sys.version.split()[0], "jax", jax.__version__, "keras", keras.__version__,
      "keras_hub", keras_hub.__version__, "kplug", kplug.__file__)
print("devices", jax.devices())
print("kplug datasets:", ", ".join(c.name for c in registry().all("dataset")))
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee -a "$OUT/environment.txt"
"$PYTHON" benchmarks/gpu_throughput.py --json "$OUT/gpu_throughput.json" "$@" 2>&1 | tee "$OUT/gpu_throughput.log"
