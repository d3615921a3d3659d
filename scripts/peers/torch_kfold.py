"""The k-fold benchmark task in PyTorch (CPU), as a standard fold loop.

Per fold: a fresh model, AdamW(lr 1e-3) with weight decay 1e-4 on the weight matrices only
(parameter groups), manual shuffled index batching of 100, model.train() for the epoch,
model.eval() + torch.no_grad() for the validation pass after every epoch, best-val-loss
weights kept (deep copy of the state dict) and restored at the end; the fold's accuracy is
the validation accuracy at that best epoch. 2 intra-op threads (--threads N to change: on a
machine where other processes also run, 2-thread ops can be many times slower than 1 thread).
Run: .bench/venv/bin/python scripts/peers/torch_kfold.py [--threads N]
"""

import argparse
import copy
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


class MLP(nn.Module):
  """MNIST-1D's reference MLP: h1 = drop(relu(W1 x)); h2 = h1 + drop(relu(W2 h1)); W3 h2."""

  def __init__(self):
    super().__init__()
    self.l1 = nn.Linear(40, common.HIDDEN)
    self.l2 = nn.Linear(common.HIDDEN, common.HIDDEN)
    self.l3 = nn.Linear(common.HIDDEN, common.NUM_CLASSES)
    self.drop = nn.Dropout(common.DROPOUT)

  def forward(self, x):
    h1 = self.drop(F.relu(self.l1(x)))
    h2 = h1 + self.drop(F.relu(self.l2(h1)))
    return self.l3(h2)


def train_fold(xt, yt, xv, yv, generator):
  model = MLP()
  decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
  no_decay = [p for n, p in model.named_parameters() if not n.endswith("weight")]
  optimizer = torch.optim.AdamW(
      [{"params": decay, "weight_decay": common.WEIGHT_DECAY},
       {"params": no_decay, "weight_decay": 0.0}],
      lr=common.LEARNING_RATE)
  best_loss, best_acc, best_state = float("inf"), 0.0, None
  n = len(xt)
  for _ in range(common.EPOCHS):
    model.train()
    perm = torch.randperm(n, generator=generator)
    for start in range(0, n, common.BATCH_SIZE):
      idx = perm[start:start + common.BATCH_SIZE]
      optimizer.zero_grad(set_to_none=True)
      loss = F.cross_entropy(model(xt[idx]), yt[idx])
      loss.backward()
      optimizer.step()
    model.eval()
    with torch.no_grad():
      logits = model(xv)
      val_loss = F.cross_entropy(logits, yv).item()
      val_acc = (logits.argmax(dim=1) == yv).float().mean().item()
    if val_loss < best_loss:
      best_loss, best_acc = val_loss, val_acc
      best_state = copy.deepcopy(model.state_dict())
  model.load_state_dict(best_state)
  return best_acc


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
  torch.set_num_threads(parser.parse_args().threads)
  torch.manual_seed(common.SEED)
  x, y = common.load_mnist1d()
  generator = torch.Generator().manual_seed(common.SEED)
  accs = []
  with common.Timer() as timer:
    for train_idx, val_idx in common.folds(y):
      xt, xv = common.standardize(x[train_idx], x[val_idx])
      accs.append(train_fold(torch.from_numpy(xt), torch.from_numpy(y[train_idx]),
                             torch.from_numpy(xv), torch.from_numpy(y[val_idx]), generator))
  common.emit("torch", timer.seconds, accs,
              framework=f"torch {torch.__version__}, threads={torch.get_num_threads()}")


if __name__ == "__main__":
  main()
