"""A tiny real training job: logistic regression by mini-batch SGD on two
Gaussian blobs, reporting loss and accuracy on held-out data every epoch."""
import math
import random

import common


def main():
    p = common.parser(__doc__)
    p.add_argument("--features", type=int, default=4)
    p.add_argument("--l2", type=float, default=0.0, help="weight decay")
    args = p.parse_args()
    data = common.blobs(600, args.features, args.seed)
    train, val = data[:400], data[400:]
    rng = random.Random(args.seed + 1)
    w = [rng.gauss(0, 0.01) for _ in range(args.features)]
    b = 0.0
    metrics = common.Metrics(args.out)

    def evaluate(rows):
        loss = correct = 0.0
        for x, y in rows:
            prob = common.sigmoid(sum(wi * xi for wi, xi in zip(w, x)) + b)
            loss += common.log_loss(prob, y)
            correct += (prob >= 0.5) == (y == 1)
        return loss / len(rows), correct / len(rows)

    for epoch in range(1, args.epochs + 1):
        rng.shuffle(train)
        for start in range(0, len(train), args.batch):
            batch = train[start:start + args.batch]
            gw = [0.0] * len(w)
            gb = 0.0
            for x, y in batch:
                err = common.sigmoid(sum(wi * xi for wi, xi in zip(w, x)) + b) - y
                for i, xi in enumerate(x):
                    gw[i] += err * xi
                gb += err
            n = len(batch)
            w = [wi - args.lr * (g / n + args.l2 * wi) for wi, g in zip(w, gw)]
            b -= args.lr * gb / n
        loss, _ = evaluate(train)
        val_loss, val_acc = evaluate(val)
        if not math.isfinite(val_loss):
            val_loss = float("nan")
        metrics.step(epoch=epoch, loss=loss, val_loss=val_loss, val_accuracy=val_acc)
    metrics.final(val_loss=val_loss, val_accuracy=val_acc, epochs=args.epochs)


if __name__ == "__main__":
    main()
