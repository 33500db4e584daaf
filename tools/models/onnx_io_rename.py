#!/usr/bin/env python3
"""Rename graph inputs/outputs of an ONNX model (and every reference to them), then
check that the renamed model computes exactly the same thing as the original.

Used by convert_nanodet.sh / convert_ssdlite.sh. One-off tool, needs `onnx`, `onnxruntime`, `numpy`.

  python -m tools.models.onnx_io_rename IN.onnx OUT.onnx --nanodet  # names from output shapes
  python -m tools.models.onnx_io_rename IN.onnx OUT.onnx --map old=new ...  # explicit
  add --fix-input-shape 1,300,300,3 to pin the (single) input's shape
  add --output-shapes NAME=1,100,4 ... to write fixed output dims (checked against a real run)
  add --keep-outputs NAME ... (new names) to drop the other graph outputs (not computed then,
  unless the kept ones need them)
"""
import argparse
import sys

import numpy as np
import onnx
import onnx.utils


def nanodet_map(model, path):
    """input -> images; [1,n,80] -> cls_pred_strideS, [1,n,44] -> reg_pred_strideS, n = (416/S)^2.
    tf2onnx leaves the output shapes symbolic, so they are measured with onnxruntime and written
    into the graph outputs as fixed dims."""
    import onnxruntime as ort
    inp = model.graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[:2] == [1, 3] and dims[2] == dims[3], dims
    side = dims[2]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    res = sess.run(None, {inp.name: np.zeros(dims, np.float32)})
    shapes = {o.name: r.shape for o, r in zip(sess.get_outputs(), res)}
    m = {inp.name: "images"}
    for o in model.graph.output:
        d = list(shapes[o.name])
        assert len(d) == 3 and d[0] == 1, (o.name, d)
        stride = int(round(side / np.sqrt(d[1])))
        assert (side // stride) ** 2 == d[1], (o.name, d)
        kind = {80: "cls_pred", 44: "reg_pred"}[d[2]]
        m[o.name] = "%s_stride%d" % (kind, stride)
        for dim, v in zip(o.type.tensor_type.shape.dim, d):
            dim.ClearField("dim_param")
            dim.dim_value = v
    return m


def rename(model, mapping):
    g = model.graph
    for n in g.node:
        for i, x in enumerate(n.input):
            if x in mapping:
                n.input[i] = mapping[x]
        for i, x in enumerate(n.output):
            if x in mapping:
                n.output[i] = mapping[x]
    for coll in (g.input, g.output, g.value_info):
        for v in coll:
            if v.name in mapping:
                v.name = mapping[v.name]
    for t in g.initializer:
        assert t.name not in mapping


def sort_outputs(model):
    outs = sorted(model.graph.output, key=lambda o: (int(o.name.split("_stride")[-1]), o.name))
    outs = [onnx.ValueInfoProto.FromString(o.SerializeToString()) for o in outs]
    del model.graph.output[:]
    model.graph.output.extend(outs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--nanodet", action="store_true")
    ap.add_argument("--map", nargs="*", default=[])
    ap.add_argument("--fix-input-shape", default=None)
    ap.add_argument("--output-shapes", nargs="*", default=[],
                    help="NAME=d0,d1,... (new names): write fixed dims into graph outputs; verified below")
    ap.add_argument("--check-input", default=None, help=".npy file fed to both models for the equality check")
    ap.add_argument("--keep-outputs", nargs="*", default=None,
                    help="NAME ... (new names): the graph outputs to keep; the others are dropped")
    args = ap.parse_args()

    model = onnx.load(args.src)
    mapping = nanodet_map(model, args.src) if args.nanodet else {}
    for kv in args.map:
        k, v = kv.split("=", 1)
        mapping[k] = v
    print("renaming:", mapping)
    rename(model, mapping)
    if args.nanodet:
        sort_outputs(model)
    if args.fix_input_shape:
        dims = [int(x) for x in args.fix_input_shape.split(",")]
        shp = model.graph.input[0].type.tensor_type.shape
        assert len(shp.dim) == len(dims)
        for d, v in zip(shp.dim, dims):
            d.ClearField("dim_param")
            d.dim_value = v
        # drop stale intermediate shape info; ORT re-infers it
        del model.graph.value_info[:]
    fixed_out = {}
    for kv in args.output_shapes:
        k, v = kv.split("=", 1)
        fixed_out[k] = [int(x) for x in v.split(",")]
    for o in model.graph.output:
        if o.name in fixed_out:
            shp = o.type.tensor_type.shape
            assert len(shp.dim) == len(fixed_out[o.name]), o.name
            for d, v in zip(shp.dim, fixed_out[o.name]):
                d.ClearField("dim_param")
                d.dim_value = v
    if args.keep_outputs is not None:
        kept = [onnx.ValueInfoProto.FromString(o.SerializeToString())
                for o in model.graph.output if o.name in args.keep_outputs]
        assert len(kept) == len(args.keep_outputs), ("unknown output", args.keep_outputs)
        del model.graph.output[:]
        model.graph.output.extend(kept)
        model = onnx.utils.Extractor(model).extract_model(
            [i.name for i in model.graph.input], args.keep_outputs)
    onnx.checker.check_model(model)
    onnx.save(model, args.dst)

    # equivalence check
    import onnxruntime as ort
    a = ort.InferenceSession(args.src, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(args.dst, providers=["CPUExecutionProvider"])
    ia = a.get_inputs()[0]
    if args.check_input:
        x = np.load(args.check_input)
    else:
        shape = [d if isinstance(d, int) else 300 for d in b.get_inputs()[0].shape]
        rng = np.random.default_rng(0)
        x = rng.uniform(-2, 2, shape).astype(np.float32) if "float" in ia.type else \
            rng.integers(0, 256, shape).astype(np.uint8)
    ra = dict(zip([o.name for o in a.get_outputs()], a.run(None, {ia.name: x})))
    rb = dict(zip([o.name for o in b.get_outputs()], b.run(None, {b.get_inputs()[0].name: x})))
    for old, va in ra.items():
        new = mapping.get(old, old)
        if new not in rb:
            continue  # dropped with --keep-outputs
        if new in fixed_out and list(rb[new].shape) != fixed_out[new]:
            print("SHAPE MISMATCH", new, rb[new].shape, fixed_out[new], file=sys.stderr)
            sys.exit(1)
        if not np.array_equal(va, rb[new]):
            print("MISMATCH", old, new, file=sys.stderr)
            sys.exit(1)
    print("renamed model identical on test input; inputs:",
          [(i.name, i.shape, i.type) for i in b.get_inputs()])
    for o in b.get_outputs():
        print("  output", o.name, o.shape, o.type)


if __name__ == "__main__":
    main()
