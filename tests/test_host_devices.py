"""Process set-up before JAX starts (experiments/common.py): host devices
and BLAS threads.

Each case runs in a fresh interpreter, since both settings only take effect
before JAX (or NumPy's BLAS) is imported.
"""

import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PROBE = """
import os, sys
{before}
from experiments import common
print(os.environ.get("XLA_FLAGS", ""))
print(os.environ.get("OPENBLAS_NUM_THREADS", "unset"))
"""


def probe(env_changes, before=""):
  env = dict(os.environ)
  for name in ("XLA_FLAGS", "OPENBLAS_NUM_THREADS", "ECHO_JAX_HOST_DEVICES"):
    env.pop(name, None)
  env.update(env_changes)
  result = subprocess.run(
      [sys.executable, "-c", _PROBE.format(before=before)], cwd=REPO, env=env,
      capture_output=True, text=True, timeout=60, check=True)
  return result.stdout.splitlines()


class HostDevicesTest(parameterized.TestCase):

  def test_defaults_one_device_per_core_and_one_blas_thread(self):
    xla_flags, blas = probe({"ECHO_JAX_HOST_DEVICES": "3"})
    self.assertEqual(xla_flags, "--xla_force_host_platform_device_count=3")
    self.assertEqual(blas, "1")
    xla_flags, _ = probe({})
    self.assertEqual(xla_flags, "--xla_force_host_platform_device_count="
                     f"{len(os.sched_getaffinity(0))}")

  def test_user_settings_are_kept(self):
    xla_flags, blas = probe({
        "XLA_FLAGS": "--xla_force_host_platform_device_count=5",
        "OPENBLAS_NUM_THREADS": "4"})
    self.assertEqual(xla_flags, "--xla_force_host_platform_device_count=5")
    self.assertEqual(blas, "4")

  def test_zero_devices_leaves_xla_flags_alone(self):
    xla_flags, _ = probe({"ECHO_JAX_HOST_DEVICES": "0"})
    self.assertEqual(xla_flags, "")

  @parameterized.parameters("numpy", "jax")
  def test_too_late_once_a_library_is_imported(self, module):
    xla_flags, blas = probe({}, before=f"import {module}")
    # BLAS may be loaded; with JAX imported, XLA_FLAGS was read already.
    self.assertEqual(blas, "unset")
    if module == "jax":
      self.assertEqual(xla_flags, "")


if __name__ == "__main__":
  absltest.main()
