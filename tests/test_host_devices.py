"""Process set-up before JAX starts: host devices and BLAS threads.

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
from echo_jax.runtime import host_devices
print(host_devices.expose_host_devices(), host_devices.single_threaded_blas())
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
    returned, xla_flags, blas = probe({"ECHO_JAX_HOST_DEVICES": "3"})
    self.assertEqual(returned, "3 True")
    self.assertEqual(xla_flags, "--xla_force_host_platform_device_count=3")
    self.assertEqual(blas, "1")

  def test_user_settings_are_kept(self):
    returned, xla_flags, blas = probe({
        "XLA_FLAGS": "--xla_force_host_platform_device_count=5",
        "OPENBLAS_NUM_THREADS": "4"})
    self.assertEqual(returned, "None False")
    self.assertEqual(xla_flags, "--xla_force_host_platform_device_count=5")
    self.assertEqual(blas, "4")

  def test_zero_devices_leaves_xla_flags_alone(self):
    returned, xla_flags, _ = probe({"ECHO_JAX_HOST_DEVICES": "0"})
    self.assertEqual(returned, "None True")
    self.assertEqual(xla_flags, "")

  @parameterized.parameters("numpy", "jax")
  def test_too_late_once_a_library_is_imported(self, module):
    returned, xla_flags, blas = probe({}, before=f"import {module}")
    # JAX imported: XLA_FLAGS would be read already; BLAS may be loaded.
    self.assertEqual(returned.split()[1], "False")
    self.assertEqual(blas, "unset")
    if module == "jax":
      self.assertEqual(returned.split()[0], "None")
      self.assertEqual(xla_flags, "")


if __name__ == "__main__":
  absltest.main()
