"""PyTorch's side of bench/train_compare.sh: one epoch of SGD over the first
N MNIST training images with the FedAvg paper's 2NN or CNN, timed like
models/examples/train_speed.rs (one warm-up epoch, then repetitions).

usage: train_speed.py MODEL BATCH SAMPLES REPS MNIST_DIR THREADS
"""
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn


def load(mnist_dir, n):
    def idx(name):
        path = os.path.join(mnist_dir, name)
        opener = gzip.open if os.path.exists(path + ".gz") else open
        with opener(path + ".gz" if os.path.exists(path + ".gz") else path, "rb") as f:
            return f.read()

    images = np.frombuffer(idx("train-images-idx3-ubyte"), dtype=np.uint8, offset=16)[: n * 784]
    labels = np.frombuffer(idx("train-labels-idx1-ubyte"), dtype=np.uint8, offset=8)[:n]
    x = torch.from_numpy(images.reshape(n, 784).astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def model(kind):
    if kind == "logreg":
        return nn.Linear(784, 10)
    if kind == "2nn":
        return nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 10))
    if kind == "cnn":
        return nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 512), nn.ReLU(), nn.Linear(512, 10),
        )
    raise SystemExit(f"unknown model {kind}")


def main():
    kind, batch, samples, reps, mnist_dir, threads = sys.argv[1:7]
    batch, samples, reps, threads = int(batch), int(samples), int(reps), int(threads)
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    x, y = load(mnist_dir, samples)
    net = model(kind)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(1)

    def epoch():
        start = time.perf_counter()
        order = torch.randperm(samples, generator=gen)
        for i in range(0, samples, batch):
            idx = order[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            loss.item()  # the Rust side reads every loss too
        return samples / (time.perf_counter() - start)

    epoch()
    rates = sorted(epoch() for _ in range(reps))
    print(json.dumps({"framework": f"pytorch-{torch.__version__}", "model": kind, "batch": batch,
                      "samples": samples, "best": round(rates[-1], 1), "median": round(rates[reps // 2], 1)}))


if __name__ == "__main__":
    main()
