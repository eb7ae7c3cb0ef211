"""Chunked runs: resumed == uninterrupted, bit for bit; NaN stops; atomic files."""

import json
import os
from unittest import mock

from absl.testing import absltest
import chex
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.runtime import files
from echo_jax.runtime import runner
from echo_jax.report import tensorboard
from echo_jax.studies import runs
from echo_jax.studies import streaming_budget
from echo_jax.tasks import task as task_lib

import helpers
from helpers import make_tempdir

TINY = config_lib.EchoConfig(
    experiment="tiny", length=10, n_unique=12, lag=1, context=3, hidden=8,
    batch_size=7, stateful=True, epochs=23, seeds=3, eval_sequences=30)


class ResumeTest(absltest.TestCase):

  def test_stopped_after_k_chunks_and_resumed_equals_uninterrupted(self):
    # 23 epochs in chunks of 5: the last chunk overshoots and must stop at 23.
    plain, plain_trained = helpers.run_tutorial(TINY, chunk_epochs=5)
    whole_dir = make_tempdir(self)
    whole, whole_trained = helpers.run_tutorial(
        TINY, run_dir=whole_dir, chunk_epochs=5)
    chex.assert_trees_all_equal(whole_trained, plain_trained)

    run_dir = make_tempdir(self)
    with self.assertRaises(helpers.Stop):
      helpers.run_tutorial(TINY, run_dir=run_dir, chunk_epochs=5,
                                on_chunk=helpers.stop_after(2))
    resumed, resumed_trained = helpers.run_tutorial(
        TINY, run_dir=run_dir, chunk_epochs=5)
    self.assertEqual(resumed["resumed_from_epoch"], 10)
    chex.assert_trees_all_equal(resumed_trained, whole_trained)
    for key in ("eval_accuracy_per_seed", "eval_accuracy_per_position",
                "train_loss_per_epoch", "example"):
      self.assertEqual(resumed[key], whole[key])
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
      rows = [json.loads(line) for line in f]
    self.assertEqual([r["epoch"] for r in rows], list(range(1, 24)))
    np.testing.assert_array_equal(
        [r["loss_per_seed"] for r in rows], whole_trained.loss_E.T)

  def test_chunk_sizes_dividing_the_epochs_give_identical_results(self):
    # (A chunk size that does not divide the epochs adds a guard to the
    # last chunk's loop body, which XLA may compile to other roundings.)
    config = TINY.replace(epochs=20)
    _, by_5 = helpers.run_tutorial(config, chunk_epochs=5)
    _, by_all = helpers.run_tutorial(config, chunk_epochs=20)
    chex.assert_trees_all_equal(by_5, by_all)

  def test_chunk_scores_are_the_runs_and_survive_a_resume(self):
    # streaming_budget's scoring after every chunk: the last score is the
    # run's evaluation; a run stopped after 2 chunks, the second's score
    # lost too (killed between its checkpoint and its scoring), resumes
    # with the same scores.
    task = task_lib.tutorial_task(TINY)
    options = runs.RunOptions(chunk_epochs=5)
    whole, scores = streaming_budget.run_scored(task, make_tempdir(self),
                                                options)
    self.assertEqual(list(scores), [5, 10, 15, 20, 23])
    np.testing.assert_array_equal(scores[23], whole.evaluation.sums)
    run_dir = make_tempdir(self)
    run = runner.run

    def killed(compiled, folder, on_chunk):
      stop = helpers.stop_after(2)

      def both(*args):
        on_chunk(*args)
        stop(*args)

      return run(compiled, folder, both)

    with mock.patch.object(runner, "run", killed):
      with self.assertRaises(helpers.Stop):
        streaming_budget.run_scored(task, run_dir, options)
    path = os.path.join(run_dir, "chunk_evaluations.json")
    saved = files.read_json(path)
    self.assertEqual(list(saved), ["5", "10"])
    files.write_json_atomic(path, {"5": saved["5"]})
    resumed, resumed_scores = streaming_budget.run_scored(task, run_dir,
                                                          options)
    self.assertEqual(resumed.timing["resumed_from_epoch"], 10)
    self.assertEqual(resumed_scores, scores)

  def test_runs_differing_in_epochs_stop_at_their_own_end(self):
    # The end epoch is data: a chunk that overshoots a run's end stops there.
    _, trained_23 = helpers.run_tutorial(TINY, chunk_epochs=5)
    _, trained_13 = helpers.run_tutorial(TINY.replace(epochs=13),
                                         chunk_epochs=5)
    np.testing.assert_array_equal(trained_13.loss_E,
                                  trained_23.loss_E[:, :13])

  def test_resume_with_a_chunk_that_cannot_reach_the_end_is_refused(self):
    # Checkpointed at epoch 5 of 20 by chunks of 5; chunks of 4 (which
    # divide 20, so compile unguarded) would run past epoch 20.
    run_dir = make_tempdir(self)
    config = TINY.replace(epochs=20)
    with self.assertRaises(helpers.Stop):
      helpers.run_tutorial(config, run_dir=run_dir, chunk_epochs=5,
                           on_chunk=helpers.stop_after(1))
    with self.assertRaisesRegex(config_lib.ConfigError,
                                "checkpointed at epoch 5, not a multiple of "
                                "chunk_epochs=4: resume with the "
                                "--chunk_epochs it ran with"):
      helpers.run_tutorial(config, run_dir=run_dir, chunk_epochs=4)
    resumed, _ = helpers.run_tutorial(config, run_dir=run_dir, chunk_epochs=5)
    self.assertEqual(resumed["resumed_from_epoch"], 5)

  def test_resume_with_another_config_is_refused(self):
    run_dir = make_tempdir(self)
    with self.assertRaises(helpers.Stop):
      helpers.run_tutorial(TINY, run_dir=run_dir, chunk_epochs=5,
                                on_chunk=helpers.stop_after(1))
    with self.assertRaisesRegex(config_lib.ConfigError, "differs in hidden"):
      helpers.run_tutorial(TINY.replace(hidden=9), run_dir=run_dir)


class ChunkCallbackTest(absltest.TestCase):

  def test_called_once_per_chunk_with_that_chunks_epochs(self):
    calls = []
    _, trained = helpers.run_tutorial(
        TINY, chunk_epochs=10,
        on_chunk=lambda first, end, loss, accuracy, params: calls.append(
            (first, end, loss[:, first:end].copy())))
    self.assertEqual([(a, b) for a, b, _ in calls], [(0, 10), (10, 20),
                                                     (20, 23)])
    np.testing.assert_array_equal(np.concatenate([c for _, _, c in calls], 1),
                                  trained.loss_E)

  def test_tensorboard_summaries_when_installed(self):
    try:
      import tensorboardX  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      self.skipTest("tensorboardX not installed (optional extra)")
    logdir = make_tempdir(self)
    with tensorboard.writer(logdir) as on_chunk:
      on_chunk(0, 2, np.ones((2, 3)), np.zeros((2, 3)), None)
    self.assertTrue(any(name.startswith("events.out.tfevents")
                        for name in os.listdir(logdir)))


class NonFiniteTest(absltest.TestCase):

  def test_nan_loss_names_the_epoch(self):
    with self.assertRaisesRegex(FloatingPointError,
                                r"non-finite training loss at epoch \d+"):
      helpers.run_tutorial(TINY.replace(learning_rate=3e38, seeds=1),
                           chunk_epochs=5)

  def test_check_finite(self):
    loss = np.ones((2, 6))
    runner.check_finite(loss, 0)
    loss[1, 4] = np.nan
    with self.assertRaisesRegex(FloatingPointError,
                                "at epoch 15 \\(model 1\\)"):
      runner.check_finite(loss, 10)


class AtomicWriteTest(absltest.TestCase):

  def test_failure_mid_write_leaves_previous_file(self):
    path = os.path.join(make_tempdir(self), "result.json")
    files.write_json_atomic(path, {"accuracy": 1.0})
    with self.assertRaises(RuntimeError):
      with files.atomic_path(path) as tmp_path:
        with open(tmp_path, "w") as f:
          f.write('{"accuracy": 0.')  # truncated...
        raise RuntimeError("killed mid-write")
    with open(path) as f:
      self.assertEqual(json.load(f), {"accuracy": 1.0})
    self.assertEqual(os.listdir(os.path.dirname(path)), ["result.json"])

  def test_unserialisable_payload_leaves_previous_file(self):
    path = os.path.join(make_tempdir(self), "result.json")
    files.write_json_atomic(path, {"accuracy": 1.0})
    with self.assertRaises(TypeError):
      files.write_json_atomic(path, {"accuracy": object()})
    with open(path) as f:
      self.assertEqual(json.load(f), {"accuracy": 1.0})


if __name__ == "__main__":
  absltest.main()
