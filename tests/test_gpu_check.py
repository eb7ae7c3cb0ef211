"""The benchmark's GPU check (command buffers on and off), run here on the
CPU through the same subprocesses: the flags reach XLA, rows come back,
failures and time-outs are one line each."""

import os
from unittest import mock

from absl.testing import absltest

from benchmarks import gpu_check
from echo_jax.runtime import runner


class GpuCheckTest(absltest.TestCase):

  def test_skipped_without_a_gpu(self):
    check = gpu_check.time_command_buffers()
    self.assertIn("no GPU visible", check["skipped"])

  def test_each_setting_in_its_own_process(self):
    settings = {"loops on": gpu_check.COMMAND_BUFFER_SETTINGS["loops on"]}
    check = gpu_check.time_command_buffers(
        counts=(2,), epochs=3, repeats=1, settings=settings, timeout=300,
        require_gpu=False, hbm_working_set_bytes=4e6)
    good, = check["rows"]
    self.assertEqual((good["setting"], good["models"]), ("loops on", 2))
    self.assertGreater(good["models_per_second"], 0)
    self.assertGreater(good["fraction_of_fp32_peak"], 0)
    self.assertLess(good["fraction_of_fp32_peak"], 1)
    self.assertGreater(good["fraction_of_memory_bound"], 0)
    self.assertAlmostEqual(
        check["memory_bound_models_per_second"],
        check["stream_gbytes"] * 1e9 / check["bytes_per_model_run"])
    gpu_check.print_command_buffers(check)

  def test_a_setting_out_of_time_is_stopped(self):
    row = gpu_check.run_setting("", (2,), epochs=3, repeats=1, timeout=0.5)
    self.assertEqual(row, {"error": "stopped after 0.5 s", "measured": {}})

  def test_a_failed_setting_keeps_what_it_measured(self):
    # N = 2 trains; N = 1,000 is refused by the memory check (exit 2) in
    # a subprocess allowed 50 MB.
    # XLA refuses an unknown flag before measuring anything.
    with mock.patch.dict(os.environ, {runner.MEMORY_ENV: str(50 * 10**6)}):
      check = gpu_check.time_command_buffers(
          counts=(2, 1000), epochs=3, repeats=1,
          settings={"default": "", "bad flag": "--xla_no_such_flag=1"},
          timeout=300, require_gpu=False, hbm_working_set_bytes=4e6)
    kept, failed, bad = check["rows"]
    self.assertEqual(kept["models"], 2)
    self.assertGreater(kept["models_per_second"], 0)
    self.assertIsNone(kept["fraction_of_fp32_peak"])
    self.assertGreater(kept["fraction_of_memory_bound"], 0)
    self.assertRegex(failed["error"], r"^exit 2: error: the run needs about")
    # Each failure is one line saying how the process ended.
    self.assertEqual(bad["setting"], "bad flag")
    self.assertRegex(bad["error"], r"^exit -?\d+: ")
    self.assertNotIn("\n", bad["error"])
    gpu_check.print_command_buffers(check)

  def test_rates_read_from_a_log(self):
    log = ("I1204 benchmark.py:123] scaling N=1: 16.40 vs 16.41 models/s\n"
           "I1204 benchmark.py:123] scaling N=1024: - vs 1489.02 models/s\n"
           "jax.errors.JaxRuntimeError: RESOURCE_EXHAUSTED\n")
    self.assertEqual(gpu_check.measured_before_failure(log.encode()),
                     {1: 16.41, 1024: 1489.02})
    self.assertEqual(gpu_check.measured_before_failure(None), {})


if __name__ == "__main__":
  absltest.main()
