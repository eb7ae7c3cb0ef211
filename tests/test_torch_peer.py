"""The PyTorch peers run (only where torch is installed:
requirements-bench.txt; CI installs requirements.txt, without it)."""

import unittest

from absl.testing import absltest

from echo_jax.core import config as config_lib

try:
  import torch  # pylint: disable=unused-import
  from benchmarks import torch_peer
except ImportError:
  torch_peer = None


@unittest.skipIf(torch_peer is None, "torch is not installed")
class TorchPeerTest(absltest.TestCase):

  def test_many_models_at_once(self):
    config = config_lib.preset("echo_lag").replace(epochs=2, hidden=8)
    row = torch_peer.train_many(config, 3)
    self.assertEqual((row["models"], row["epochs"]), (3, 2))
    updates = 3 * 2 * config.num_batches
    self.assertAlmostEqual(row["model_updates_per_second"],
                           updates / row["train_seconds"])

  def test_cell_maps_windows_to_logits_and_carry(self):
    torch.manual_seed(0)
    cell = torch_peer.CellEcho(n_unique=10, hidden=8)
    ids = torch.randint(0, 10, (5, 3))
    logits, h, c = cell(ids, torch.zeros(5, 8), torch.zeros(5, 8))
    self.assertEqual((tuple(logits.shape), tuple(h.shape), tuple(c.shape)),
                     ((5, 10), (5, 8), (5, 8)))


if __name__ == "__main__":
  absltest.main()
