"""A tiny real training job: a multi-layer perceptron (tanh hidden layers,
sigmoid output) trained by SGD with backpropagation on the two-moons data."""
import math
import random

import common


def main():
    p = common.parser(__doc__)
    p.add_argument("--depth", type=int, default=1, help="hidden layers")
    p.add_argument("--width", type=int, default=8, help="units per hidden layer")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout rate of hidden units while training")
    args = p.parse_args()
    data = common.moons(300, args.seed)
    train, val = data[:200], data[200:]
    rng = random.Random(args.seed + 1)
    sizes = [2] + [args.width] * args.depth + [1]
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        scale = 1.0 / math.sqrt(n_in)
        layers.append(([[rng.gauss(0, scale) for _ in range(n_in)] for _ in range(n_out)], [0.0] * n_out))

    def forward(x, train_mode):
        acts = [x]
        for li, (W, b) in enumerate(layers):
            z = [sum(wij * aj for wij, aj in zip(row, acts[-1])) + bi for row, bi in zip(W, b)]
            if li == len(layers) - 1:
                acts.append([common.sigmoid(z[0])])
            else:
                a = [math.tanh(v) for v in z]
                if train_mode and args.dropout > 0:
                    keep = 1 - args.dropout
                    a = [v / keep if rng.random() < keep else 0.0 for v in a]
                acts.append(a)
        return acts

    def evaluate(rows):
        loss = correct = 0.0
        for x, y in rows:
            prob = forward(x, False)[-1][0]
            loss += common.log_loss(prob, y)
            correct += (prob >= 0.5) == (y == 1)
        return loss / len(rows), correct / len(rows)

    metrics = common.Metrics(args.out)
    for epoch in range(1, args.epochs + 1):
        rng.shuffle(train)
        for x, y in train:
            acts = forward(x, True)
            delta = [acts[-1][0] - y]
            for li in range(len(layers) - 1, -1, -1):
                W, b = layers[li]
                prev = acts[li]
                if li > 0:
                    back = [sum(W[k][j] * delta[k] for k in range(len(W))) * (1 - prev[j] ** 2) for j in range(len(prev))]
                for k, row in enumerate(W):
                    g = args.lr * delta[k]
                    for j in range(len(row)):
                        row[j] -= g * prev[j]
                    b[k] -= g
                if li > 0:
                    delta = back
        loss, _ = evaluate(train)
        val_loss, val_acc = evaluate(val)
        metrics.step(epoch=epoch, loss=loss, val_loss=val_loss, val_accuracy=val_acc)
    metrics.final(val_loss=val_loss, val_accuracy=val_acc, parameters=sum(len(W) * (len(W[0]) + 1) for W, _ in layers))


if __name__ == "__main__":
    main()
