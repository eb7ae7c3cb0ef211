"""An idiomatic PyTorch port of the tutorial's three experiments: the peer the
benchmark times echo_jax against (same sizes, same number of Adam updates,
same stateful semantics). Only imported when torch is installed
(requirements-bench.txt); never part of the package.
"""

import time

import torch
from torch import nn

from echo_jax.core import config as config_lib


class TorchEcho(nn.Module):

  def __init__(self, n_unique: int, hidden: int):
    super().__init__()
    self.lstm = nn.LSTM(n_unique, hidden, batch_first=True)
    self.head = nn.Linear(hidden, n_unique)

  def forward(self, x_BxTxV, carry):
    _, (h, c) = self.lstm(x_BxTxV, carry)
    return self.head(h[-1]), (h, c)


def windows(sequence_L: torch.Tensor, lag: int, context: int):
  """The same framing as echo_jax.data.frame_windows."""
  length = sequence_L.shape[0]
  ends_N = torch.arange(lag + context - 1, length)
  offsets_C = torch.arange(context) - (context - 1)
  return sequence_L[ends_N[:, None] + offsets_C[None, :]], sequence_L[
      ends_N - lag]


def fresh_batches(config: config_lib.EchoConfig):
  """One fresh sequence, framed and one-hot encoded, in order, in batches."""
  sequence = torch.randint(0, config.n_unique, (config.length,))
  x_ids, y = windows(sequence, config.lag, config.context)
  x = nn.functional.one_hot(x_ids, config.n_unique).float()
  b = config.batch_size
  return [(x[k:k + b], y[k:k + b]) for k in range(0, x.shape[0], b)]


def train_and_evaluate(config: config_lib.EchoConfig, seed: int = 0,
                       eval_sequences: int = 100) -> dict:
  """Trains one model the tutorial's way; returns accuracy and seconds."""
  torch.manual_seed(seed)
  model = TorchEcho(config.n_unique, config.hidden)
  optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate,
                               betas=(config.adam_b1, config.adam_b2),
                               eps=config.adam_eps)
  loss_fn = nn.CrossEntropyLoss()
  start = time.perf_counter()
  for _ in range(config.epochs):
    carry = None
    for x, y in fresh_batches(config):
      logits, carry = model(x, carry)
      loss = loss_fn(logits, y)
      optimizer.zero_grad()
      loss.backward()
      optimizer.step()
      # Keras stateful: row i carries into row i of the next batch, as a
      # constant; stateless: every batch starts from zeros.
      carry = tuple(s.detach() for s in carry) if config.stateful else None
  train_seconds = time.perf_counter() - start
  correct = total = 0
  with torch.no_grad():
    for _ in range(eval_sequences):
      carry = None
      for x, y in fresh_batches(config):
        logits, carry = model(x, carry)
        if not config.stateful:
          carry = None
        correct += int((logits.argmax(-1) == y).sum())
        total += len(y)
  return {"train_seconds": train_seconds,
          "seconds": time.perf_counter() - start,
          "eval_accuracy": correct / total}
