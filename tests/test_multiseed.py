"""The extensions' runner: batching, sharing one program across variants
equals separate runs, padding-only batches leave Adam alone."""

import json
import os

from absl.testing import absltest
import chex
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import samples as samples_lib
from echo_jax.report import rows
from echo_jax.tasks import lags
from echo_jax.tasks import seq2seq

import helpers
from helpers import make_tempdir

TINY = config_lib.EchoConfig(length=12, n_unique=9, lag=1, context=4, hidden=4,
                             epochs=4, batch_size=3, stateful=False, seeds=2,
                             eval_sequences=6)


class BatchSamplesTest(absltest.TestCase):

  def test_pads_last_batch_with_zero_weight(self):
    samples = samples_lib.Samples(jnp.arange(14).reshape(7, 2), jnp.arange(7),
                                jnp.ones(7))
    batches = samples_lib.batch_samples(samples, 3)
    chex.assert_shape([batches.inputs], (3, 3, 2))
    np.testing.assert_array_equal(batches.targets.ravel()[:7], np.arange(7))
    np.testing.assert_array_equal(batches.weights.ravel(),
                                  [1] * 7 + [0] * 2)


class EpochsToReachTest(absltest.TestCase):

  def test_trailing_window(self):
    accuracy = np.array([[0, 1, 1, 1, 1], [0, 0, 0, 0, 1]], float)
    self.assertEqual(rows.epochs_to_reach(accuracy, 0.99, 2), [3, None])


def row_of(rows, value):
  return next(r for r in rows if r["variant_value"] == value)


class VariantsTest(absltest.TestCase):

  def test_shared_program_equals_separate_run(self):
    together, trained = helpers.run_framed(
        seq2seq.lag_sequence_task(TINY, (1, 2)), max_devices=1)
    alone, alone_trained = helpers.run_framed(
        seq2seq.lag_sequence_task(TINY, (2,)), max_devices=1)
    self.assertEqual(row_of(together, 2)["eval_accuracy"]["per_seed"],
                     alone[0]["eval_accuracy"]["per_seed"])
    chex.assert_trees_all_close(
        jax_tree_index(trained.params, 1), jax_tree_index(alone_trained.params,
                                                          0), atol=1e-6)

  def test_padding_only_batches_do_not_move_adam(self):
    # With length 12, lag 5 (window 6) has 2 rows, lag 1 (window 4) 8: lag
    # 5 shares 3 batches of 3 rows, two of them padding only; it must train
    # as if alone (1 batch).
    together, trained = helpers.run_framed(lags.lags_task(TINY, (1, 5)),
                                           max_devices=1)
    alone, alone_trained = helpers.run_framed(lags.lags_task(TINY, (5,)),
                                              max_devices=1)
    chex.assert_trees_all_close(jax_tree_index(trained.params, 1),
                                jax_tree_index(alone_trained.params, 0),
                                atol=1e-6)
    self.assertLen(together, 2)
    self.assertEqual(together[1]["variant"], "lag 5, hidden 4")
    self.assertEqual(row_of(together, 5)["eval_accuracy"]["per_seed"],
                     alone[0]["eval_accuracy"]["per_seed"])


class ResumeTest(absltest.TestCase):

  def test_stopped_after_k_chunks_and_resumed_equals_uninterrupted(self):
    # 7 epochs in chunks of 3: the last chunk overshoots and must stop at 7.
    task = seq2seq.lag_sequence_task(TINY.replace(epochs=7), (1, 2))
    whole_rows, whole = helpers.run_framed(task, chunk_epochs=3,
                                           run_dir=make_tempdir(self))
    run_dir = make_tempdir(self)
    with self.assertRaises(helpers.Stop):
      helpers.run_framed(task, chunk_epochs=3, run_dir=run_dir,
                         on_chunk=helpers.stop_after(2))
    rows, resumed = helpers.run_framed(task, chunk_epochs=3, run_dir=run_dir)
    self.assertEqual(rows[0]["resumed_from_epoch"], 6)
    chex.assert_trees_all_equal(resumed, whole)
    for row, whole_row in zip(rows, whole_rows):
      self.assertEqual(row["eval_accuracy"], whole_row["eval_accuracy"])
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
      metrics = [json.loads(line) for line in f]
    self.assertEqual([m["epoch"] for m in metrics], list(range(1, 8)))
    np.testing.assert_array_equal(
        [m["per_variant"]["lag 2"]["loss_per_seed"] for m in metrics],
        whole.loss_E[1].T)

  def test_resume_of_another_task_is_refused(self):
    run_dir = make_tempdir(self)
    with self.assertRaises(helpers.Stop):
      helpers.run_framed(seq2seq.lag_sequence_task(TINY, (1, 2)),
                         chunk_epochs=2, run_dir=run_dir, on_chunk=helpers.stop_after(1))
    with self.assertRaisesRegex(config_lib.ConfigError, "differs in variant"):
      helpers.run_framed(seq2seq.lag_sequence_task(TINY, (1, 3)),
                         run_dir=run_dir)


def jax_tree_index(tree, i):
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree.map(lambda x: x[i], tree)


if __name__ == "__main__":
  absltest.main()
