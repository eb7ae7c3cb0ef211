"""The benchmark's cost model: counts from the architecture, rates measured."""

from absl.testing import absltest

from benchmarks import cost_model
from echo_jax.core import config as config_lib


class CostModelTest(absltest.TestCase):

  def test_update_cost_of_the_tutorial_model(self):
    config = config_lib.preset("echo_lag")  # V=100, H=50, window 5, batch 5
    cost = cost_model.update_cost(config)
    # Input kernel 100x200, recurrent 50x200, bias 200, head 50x100 + 100.
    self.assertEqual(cost.params, 20000 + 10000 + 200 + 5000 + 100)
    self.assertEqual(cost.matmul_flops,
                     5 * (5 * 3 * 2 * 50 * 200 + 3 * 2 * 50 * 100))
    self.assertEqual(cost.adam_bytes, 8 * 4 * cost.params)
    one_hot = cost_model.update_cost(config.replace(input_encoding="one_hot"))
    self.assertEqual(one_hot.matmul_flops - cost.matmul_flops,
                     5 * 5 * 2 * 2 * 100 * 200)

  def test_limit_adds_matmul_and_memory_time_per_model(self):
    cost = cost_model.UpdateCost(params=1, matmul_flops=2e9, adam_bytes=3e9,
                                 activation_bytes=1e9)
    self.assertAlmostEqual(cost_model.limit_seconds(cost, 1.0, 2.0), 4.0)
    self.assertAlmostEqual(cost_model.limit_seconds(cost, 1.0, 2.0, 3), 12.0)
    self.assertAlmostEqual(cost_model.fraction(1.0, 4.0), 0.25)

  def test_rates_are_measured(self):
    self.assertGreater(cost_model.matmul_gflops(5, 8, repeats=1, steps=100),
                       0)
    self.assertGreater(cost_model.stream_gbytes(1e5, repeats=1,
                                                target_bytes=1e7), 0)

  def test_sweep_rows_take_the_layout_auto_picks(self):
    # pylint: disable=g-import-not-at-top
    from benchmarks import benchmark
    program = "sweep group, context 10, hidden 64"
    row = lambda block, rate: {
        "program": program, "block": block, "models": 72,
        "models_per_device": 36, "auto_block": 4, "updates_per_model": 100,
        "models_per_second": rate}
    rows = [row(None, 9.0), row(4, 18.0),
            dict(row(1, 30.0), program="echo_lag, 64 models", auto_block=1)]
    got, = benchmark.time_sweep_cost(rows, epochs=2, repeats=1)
    self.assertEqual((got["program"], got["block"]), (program, 4))
    config = benchmark.layout_tasks(2)[program].config
    self.assertEqual((config.context, config.hidden), (10, 64))
    self.assertEqual(got["matmul_flops_per_update"],
                     cost_model.update_cost(config).matmul_flops)
    # 72 models at 18 models/s, 100 updates each: 0.04 s per update of a
    # device's 36 models.
    self.assertAlmostEqual(got["measured_seconds_per_update_device"], 0.04)
    self.assertAlmostEqual(got["fraction_device"],
                           got["limit_seconds_per_update_device"] / 0.04)


if __name__ == "__main__":
  absltest.main()
