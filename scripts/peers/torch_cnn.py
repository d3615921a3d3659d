"""The CNN benchmark task (scripts/peers/cnn_common.py) in PyTorch (CPU), as a standard fold loop.

Per fold: a fresh model (channels-first, as PyTorch users write it), Adam(lr 1e-3), shuffled
index batches of 128, model.train() for the epoch, model.eval() + torch.no_grad() for the
validation pass (batches of 2000) after every epoch. 2 intra-op threads (--threads N).
Run: .bench/venv/bin/python scripts/peers/torch_cnn.py [--threads N]
"""

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cnn_common as common  # noqa: E402


class CNN(nn.Module):
  def __init__(self):
    super().__init__()
    self.conv0 = nn.Conv2d(1, 32, 3, padding="same")
    self.conv1 = nn.Conv2d(32, 64, 3, padding="same")
    self.dense = nn.Linear(7 * 7 * 64, 256)
    self.drop = nn.Dropout(common.DROPOUT)
    self.head = nn.Linear(256, common.NUM_CLASSES)

  def forward(self, x):
    h = F.avg_pool2d(F.relu(self.conv0(x)), 2)
    h = F.avg_pool2d(F.relu(self.conv1(h)), 2)
    h = self.drop(F.relu(self.dense(h.flatten(1))))
    return self.head(h)


def train_fold(xt, yt, xv, yv, generator, clock):
  model = CNN()
  optimizer = torch.optim.Adam(model.parameters(), lr=common.LEARNING_RATE, eps=1e-8)
  n, acc = len(xt), 0.0
  clock.fold()
  for _ in range(common.EPOCHS):
    model.train()
    perm = torch.randperm(n, generator=generator)
    for start in range(0, n, common.BATCH_SIZE):
      idx = perm[start:start + common.BATCH_SIZE]
      optimizer.zero_grad(set_to_none=True)
      F.cross_entropy(model(xt[idx]), yt[idx]).backward()
      optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
      for start in range(0, len(xv), 2000):
        correct += (model(xv[start:start + 2000]).argmax(1) == yv[start:start + 2000]).sum().item()
    acc = correct / len(xv)
    clock.epoch_end()
  return acc


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
  torch.set_num_threads(parser.parse_args().threads)
  torch.manual_seed(common.SEED)
  x, y = common.load_fashion_mnist()
  generator = torch.Generator().manual_seed(common.SEED)
  chw = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()  # noqa: E731
  accs, clock, images = [], common.EpochClock(), 0
  t0 = time.perf_counter()
  for train_idx, val_idx in common.folds(y):
    xt, xv = common.standardize(x[train_idx], x[val_idx])
    images += len(train_idx)
    accs.append(train_fold(chw(xt), torch.from_numpy(y[train_idx]), chw(xv),
                           torch.from_numpy(y[val_idx]), generator, clock))
  common.emit("torch", time.perf_counter() - t0, accs, clock.folds, images,
              framework=f"torch {torch.__version__}, threads={torch.get_num_threads()}")


if __name__ == "__main__":
  main()
