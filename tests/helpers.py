"""Shared by the test modules (absltest's create_tempdir needs parsed absl
flags, which pytest does not provide)."""

import shutil
import tempfile


def make_tempdir(test) -> str:
  """A fresh directory, removed when `test` (a unittest.TestCase) ends."""
  path = tempfile.mkdtemp()
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path
