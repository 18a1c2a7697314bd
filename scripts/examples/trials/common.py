"""Shared by the example trials: tiny seeded data sets, argument parsing, and
writing metrics where bai collects them ($AZ_BATCHAI_OUTPUT_METRICS)."""
import argparse
import json
import math
import os
import random


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--lr", type=float, default=0.1, help="learning rate")
    p.add_argument("--batch", type=int, default=16, help="mini-batch size")
    p.add_argument("--epochs", type=int, default=20, help="passes over the training set")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the initial weights")
    p.add_argument("--out", default=os.environ.get("AZ_BATCHAI_OUTPUT_METRICS", "."),
                   help="directory for metrics.json and metrics.jsonl")
    return p


def blobs(n, features, seed, separation=1.5):
    """Two Gaussian classes in `features` dimensions, labels 0 and 1."""
    rng = random.Random(seed)
    center = [rng.uniform(-1, 1) for _ in range(features)]
    data = []
    for i in range(n):
        label = i % 2
        sign = 1 if label else -1
        x = [rng.gauss(sign * separation * c, 1.0) for c in center]
        data.append((x, label))
    rng.shuffle(data)
    return data


def moons(n, seed, noise=0.15):
    """The two interleaving half circles, in two dimensions."""
    rng = random.Random(seed)
    data = []
    for i in range(n):
        t = rng.uniform(0, math.pi)
        if i % 2:
            x = [math.cos(t), math.sin(t)]
        else:
            x = [1 - math.cos(t), 0.5 - math.sin(t)]
        data.append(([x[0] + rng.gauss(0, noise), x[1] + rng.gauss(0, noise)], i % 2))
    rng.shuffle(data)
    return data


def sigmoid(z):
    if z < -60:
        return 0.0
    if z > 60:
        return 1.0
    return 1.0 / (1.0 + math.exp(-z))


def log_loss(p, y):
    p = min(max(p, 1e-12), 1 - 1e-12)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


class Metrics:
    """metrics.jsonl gets one line per epoch as training goes (flushed, so
    early stopping sees it); metrics.json the final values at the end."""

    def __init__(self, out):
        os.makedirs(out, exist_ok=True)
        self.out = out
        self.lines = open(os.path.join(out, "metrics.jsonl"), "a")

    def step(self, **values):
        self.lines.write(json.dumps(values) + "\n")
        self.lines.flush()

    def final(self, **values):
        self.lines.close()
        tmp = os.path.join(self.out, "metrics.json.tmp")
        with open(tmp, "w") as f:
            json.dump(values, f)
        os.replace(tmp, os.path.join(self.out, "metrics.json"))
        print(" ".join("%s=%s" % (k, v) for k, v in values.items()), flush=True)
