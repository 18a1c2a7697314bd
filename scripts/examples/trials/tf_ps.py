"""A tiny real distributed training job in the TensorFlow parameter-server
style.  TF_CONFIG names this process's task: a parameter server ("ps") holds
the weights of a logistic regression and applies the gradients workers push
(asynchronous SGD); each worker pulls the weights, computes a gradient on its
shard and pushes it.  Worker 0 evaluates and writes the metrics, then tells
the parameter server to stop."""
import json
import os
import socket
import socketserver
import threading
import time

import common


def task():
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    cluster = config.get("cluster", {})
    t = config.get("task", {})
    return cluster, t.get("type", "worker"), int(t.get("index", 0))


def host_port(address):
    host, port = address.rsplit(":", 1)
    return host, int(port)


def serve_parameters(address, features, lr, workers):
    """The parameter server: answers pull, push and done, one JSON line each."""
    state = {"w": [0.0] * (features + 1), "done": 0, "updates": 0}
    lock = threading.Lock()
    stop = threading.Event()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                msg = json.loads(line)
                with lock:
                    if msg["op"] == "push":
                        state["w"] = [w - lr * g for w, g in zip(state["w"], msg["grad"])]
                        state["updates"] += 1
                    elif msg["op"] == "done":
                        state["done"] += 1
                    reply = {"w": state["w"], "updates": state["updates"]}
                self.wfile.write((json.dumps(reply) + "\n").encode())
                self.wfile.flush()
                if msg["op"] == "done" and state["done"] >= workers:
                    stop.set()

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    with Server(host_port(address), Handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stop.wait()
        server.shutdown()


class Client:
    def __init__(self, address):
        deadline = time.time() + 30
        while True:
            try:
                self.f = socket.create_connection(host_port(address)).makefile("rw")
                return
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def call(self, **msg):
        self.f.write(json.dumps(msg) + "\n")
        self.f.flush()
        return json.loads(self.f.readline())


def main():
    p = common.parser(__doc__)
    p.add_argument("--features", type=int, default=4)
    args = p.parse_args()
    cluster, kind, index = task()
    ps_hosts = cluster.get("ps", [])
    workers = cluster.get("worker", ["single"])
    if kind == "ps":
        serve_parameters(ps_hosts[index], args.features, args.lr, len(workers))
        return
    data = common.blobs(600, args.features, args.seed)
    train, val = data[:400], data[400:]
    shard = train[index::len(workers)]
    ps = Client(ps_hosts[0]) if ps_hosts else None
    w = [0.0] * (args.features + 1)
    metrics = common.Metrics(args.out) if index == 0 else None

    def evaluate(weights, rows):
        loss = correct = 0.0
        for x, y in rows:
            prob = common.sigmoid(sum(a * b for a, b in zip(weights, x)) + weights[-1])
            loss += common.log_loss(prob, y)
            correct += (prob >= 0.5) == (y == 1)
        return loss / len(rows), correct / len(rows)

    for epoch in range(1, args.epochs + 1):
        for start in range(0, len(shard), args.batch):
            if ps:
                w = ps.call(op="pull")["w"]
            batch = shard[start:start + args.batch]
            grad = [0.0] * (args.features + 1)
            for x, y in batch:
                err = common.sigmoid(sum(a * b for a, b in zip(w, x)) + w[-1]) - y
                for i, xi in enumerate(x):
                    grad[i] += err * xi / len(batch)
                grad[-1] += err / len(batch)
            if ps:
                w = ps.call(op="push", grad=grad)["w"]
            else:
                w = [a - args.lr * g for a, g in zip(w, grad)]
        if metrics:
            val_loss, val_acc = evaluate(w, val)
            metrics.step(epoch=epoch, val_loss=val_loss, val_accuracy=val_acc)
    reply = ps.call(op="done") if ps else {"updates": 0}
    if metrics:
        metrics.final(val_loss=val_loss, val_accuracy=val_acc, workers=len(workers), updates=reply["updates"])


if __name__ == "__main__":
    main()
