"""An idiomatic PyTorch port of the tutorial's three experiments: the peer the
benchmark times echo_jax against (same sizes, same number of Adam updates,
same stateful semantics). Only imported when torch is installed
(requirements-bench.txt); never part of echo_jax.
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
  """The same framing as echo_jax.core.data.frame_windows."""
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


class CellEcho(nn.Module):
  """The same LSTM(hidden) + Dense(n_unique) with a hand-written cell:
  torch.func.vmap has no batching rule for nn.LSTM's fused kernel. Input
  ids index the input kernel's rows (the same math as one-hot rows times
  it, without the matmul: echo_jax's default does the same)."""

  def __init__(self, n_unique: int, hidden: int):
    super().__init__()
    self.input_kernel = nn.Parameter(
        torch.randn(n_unique, 4 * hidden) / n_unique**0.5)
    self.recurrent = nn.Linear(hidden, 4 * hidden)
    self.head = nn.Linear(hidden, n_unique)

  def forward(self, ids_BxT, h_BxH, c_BxH):
    for t in range(ids_BxT.shape[1]):
      z = self.input_kernel[ids_BxT[:, t]] + self.recurrent(h_BxH)
      i, f, g, o = z.chunk(4, -1)
      c_BxH = torch.sigmoid(f) * c_BxH + torch.sigmoid(i) * torch.tanh(g)
      h_BxH = torch.sigmoid(o) * torch.tanh(c_BxH)
    return self.head(h_BxH), h_BxH, c_BxH


def train_many(config: config_lib.EchoConfig, num_models: int,
               seed: int = 0) -> dict:
  """Trains `num_models` models of `config` at once the way a PyTorch user
  would batch them: parameters stacked (torch.func.stack_module_state), one
  functional_call vmapped over models, one Adam over the stacked tensors
  (elementwise, so each model gets its own Adam update). Each model sees its
  own fresh sequence every epoch, batches in order, the carry kept across
  batches when stateful, as in `train_and_evaluate`. Returns seconds and
  model-updates/s of training (no evaluation)."""
  from torch import func  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  stacked, _ = func.stack_module_state(
      [CellEcho(config.n_unique, config.hidden) for _ in range(num_models)])
  base = CellEcho(config.n_unique, config.hidden).to("meta")
  params = {name: p.detach().requires_grad_() for name, p in stacked.items()}
  optimizer = torch.optim.Adam(params.values(), lr=config.learning_rate,
                               betas=(config.adam_b1, config.adam_b2),
                               eps=config.adam_eps)

  def loss(model_params, ids_BxT, y_B, h_BxH, c_BxH):
    logits, h_BxH, c_BxH = func.functional_call(
        base, model_params, (ids_BxT, h_BxH, c_BxH))
    return nn.functional.cross_entropy(logits, y_B), (h_BxH, c_BxH)

  grads_of = func.vmap(func.grad(loss, has_aux=True))
  b, hidden = config.batch_size, config.hidden
  ends_N = torch.arange(config.lag + config.context - 1, config.length)
  window_NxC = ends_N[:, None] + torch.arange(config.context)[None, :] - (
      config.context - 1)
  updates = 0
  start = time.perf_counter()
  for _ in range(config.epochs):
    sequences_MxL = torch.randint(0, config.n_unique,
                                  (num_models, config.length))
    ids_MxNxC = sequences_MxL[:, window_NxC]
    y_MxN = sequences_MxL[:, ends_N - config.lag]
    h = c = torch.zeros(num_models, b, hidden)
    for k in range(0, ids_MxNxC.shape[1], b):
      grads, (h, c) = grads_of(params, ids_MxNxC[:, k:k + b], y_MxN[:, k:k + b],
                               h, c)
      for name, p in params.items():
        p.grad = grads[name]
      optimizer.step()
      updates += 1
      if not config.stateful:
        h = c = torch.zeros(num_models, b, hidden)
      else:
        h, c = h.detach(), c.detach()
  seconds = time.perf_counter() - start
  return {"models": num_models, "epochs": config.epochs,
          "train_seconds": seconds,
          "model_updates_per_second": num_models * updates / seconds,
          "models_per_second": num_models / seconds}
