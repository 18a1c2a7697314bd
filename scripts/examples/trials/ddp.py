"""A tiny real multi-process training job in the PyTorch style: data-parallel
linear regression.  Each of WORLD_SIZE processes (RANK 0..n-1) computes the
gradient on its shard of the data; the gradients are summed over TCP through
rank 0 at MASTER_ADDR:MASTER_PORT (an all-reduce) and every process applies the
same update.  Rank 0 writes the metrics.  Without WORLD_SIZE it runs alone."""
import json
import os
import random
import socket
import time

import common


def make_data(n, features, seed):
    rng = random.Random(seed)
    true_w = [rng.uniform(-2, 2) for _ in range(features)]
    rows = []
    for _ in range(n):
        x = [rng.gauss(0, 1) for _ in range(features)]
        rows.append((x, sum(a * b for a, b in zip(true_w, x)) + rng.gauss(0, 0.1)))
    return rows


class AllReduce:
    """Sums lists of floats across the ranks, through rank 0."""

    def __init__(self, rank, world):
        self.rank, self.world = rank, world
        addr = os.environ.get("MASTER_ADDR", "127.0.0.1")
        port = int(os.environ.get("MASTER_PORT", "29500"))
        if world == 1:
            return
        if rank == 0:
            server = socket.create_server((addr, port))
            self.peers = []
            while len(self.peers) < world - 1:
                conn, _ = server.accept()
                self.peers.append(conn.makefile("rw"))
            server.close()
        else:
            deadline = time.time() + 30
            while True:
                try:
                    self.conn = socket.create_connection((addr, port)).makefile("rw")
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.05)

    def sum(self, values):
        if self.world == 1:
            return values
        if self.rank == 0:
            total = list(values)
            for peer in self.peers:
                for i, v in enumerate(json.loads(peer.readline())):
                    total[i] += v
            line = json.dumps(total) + "\n"
            for peer in self.peers:
                peer.write(line)
                peer.flush()
            return total
        self.conn.write(json.dumps(values) + "\n")
        self.conn.flush()
        return json.loads(self.conn.readline())


def main():
    p = common.parser(__doc__)
    p.add_argument("--features", type=int, default=8)
    args = p.parse_args()
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    data = make_data(800, args.features, args.seed)
    train, val = data[:600], data[600:]
    shard = train[rank::world]
    reduce = AllReduce(rank, world)
    w = [0.0] * args.features
    metrics = common.Metrics(args.out) if rank == 0 else None
    steps = max(1, len(shard) // args.batch)
    for epoch in range(1, args.epochs + 1):
        for step in range(steps):
            batch = shard[step * args.batch:(step + 1) * args.batch]
            grad = [0.0] * (args.features + 1)
            for x, y in batch:
                err = sum(a * b for a, b in zip(w, x)) - y
                for i, xi in enumerate(x):
                    grad[i] += 2 * err * xi
            grad[-1] = len(batch)
            total = reduce.sum(grad)
            n = total[-1]
            w = [wi - args.lr * g / n for wi, g in zip(w, total[:-1])]
        if metrics:
            val_loss = sum((sum(a * b for a, b in zip(w, x)) - y) ** 2 for x, y in val) / len(val)
            metrics.step(epoch=epoch, val_loss=val_loss, world_size=world)
    if metrics:
        metrics.final(val_loss=val_loss, world_size=world)


if __name__ == "__main__":
    main()
