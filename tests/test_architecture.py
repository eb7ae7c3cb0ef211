"""The package's layers: each imports only the layers below it; programs are
built in one module; no private jax API; the runner trains what
`make_train` defines."""

import ast
import json
import os
import re
import subprocess
import sys

from absl.testing import absltest
import chex
import jax
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import train
from echo_jax.runtime import runner
from echo_jax.tasks import task as task_lib

import helpers
from helpers import make_tempdir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "echo_jax")
# Bottom to top: a module may import its own layer and the ones before it.
LAYERS = ("core", "tasks", "runtime", "report", "studies")


def imported_modules(path: str) -> set[str]:
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f"{node.module}.{a.name}" for a in node.names)
    elif isinstance(node, ast.Import):
      names.update(a.name for a in node.names)
  return names


def package_modules():
  for layer in LAYERS:
    folder = os.path.join(PACKAGE, layer)
    for name in sorted(os.listdir(folder)):
      if name.endswith(".py"):
        yield layer, os.path.join(folder, name)


class LayersTest(absltest.TestCase):

  def test_every_module_is_in_a_layer(self):
    self.assertEqual(
        sorted(n for n in os.listdir(PACKAGE) if n.endswith(".py")),
        ["__init__.py"])
    for name in os.listdir(PACKAGE):
      if os.path.isdir(os.path.join(PACKAGE, name)) and name != "__pycache__":
        self.assertIn(name, LAYERS)

  def test_imports_only_go_down(self):
    for layer, path in package_modules():
      allowed = LAYERS[:LAYERS.index(layer) + 1]
      for module in imported_modules(path):
        if module.startswith("experiments"):
          self.fail(f"{path} imports the binaries' {module}")
        if not module.startswith("echo_jax."):
          continue
        target = module.split(".")[1]
        self.assertIn(target, allowed,
                      f"{os.path.relpath(path, REPO)} ({layer}) imports "
                      f"{module} from a layer above it")

  def test_programs_are_built_in_one_module(self):
    # jax.jit and shard_map are applied in runtime/parallel.py only (tests
    # and the benchmark harness may call them directly).
    callers = set()
    for root, _, names in os.walk(PACKAGE):
      for name in names:
        if not name.endswith(".py"):
          continue
        path = os.path.join(root, name)
        with open(path) as f:
          tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
          if (isinstance(node, ast.Attribute) and node.attr in ("jit",
                                                                 "shard_map")
              and isinstance(node.value, ast.Name) and node.value.id == "jax"):
            callers.add(os.path.relpath(path, REPO))
    self.assertEqual(callers, {os.path.join("echo_jax", "runtime",
                                            "parallel.py")})

  def test_no_private_jax_api(self):
    # jax._src changes without notice between versions: public API only.
    for folder in ("echo_jax", "experiments", "benchmarks", "tests"):
      for root, _, names in os.walk(os.path.join(REPO, folder)):
        for name in names:
          if name.endswith(".py") and name != "test_architecture.py":
            with open(os.path.join(root, name)) as f:
              self.assertNotIn("jax._src", f.read(),
                               os.path.join(root, name))


class RunnerIsMakeTrainTest(absltest.TestCase):

  def test_runner_trains_what_make_train_defines(self):
    # Same batching (two models vmapped on one device) both ways.
    config = config_lib.preset("echo_lag").replace(
        seeds=2, epochs=6, hidden=8, eval_sequences=3)
    output = runner.run_task(task_lib.tutorial_task(config), max_devices=1,
                             chunk_epochs=4)
    keys_S = train.model_keys(config.seed, config.seeds)
    whole = jax.jit(jax.vmap(train.make_train(config)))(keys_S)
    trained = output.trained()
    # Bit for bit: the runner compiles make_train's own parts (its
    # initialisation mapped over the models, then chunks of its epochs).
    chex.assert_trees_all_equal(trained.params, jax.device_get(whole.params))
    np.testing.assert_array_equal(trained.loss_E, whole.loss_E)
    np.testing.assert_array_equal(trained.accuracy_E, whole.accuracy_E)


def doc_blocks(path: str) -> list[str]:
  with open(path) as f:
    return re.findall(r"```python\n(.*?)```", f.read(), re.S)


class ArchitectureDocTest(absltest.TestCase):

  DOC = os.path.join(REPO, "docs", "architecture.md")

  def test_worked_example_is_the_code_in_the_repository(self):
    _, model, binary = doc_blocks(self.DOC)
    for block, path in ((model, "echo_jax/tasks/gru.py"),
                        (binary, "experiments/gru_echo.py")):
      with open(os.path.join(REPO, path)) as f:
        self.assertIn(block, f.read(), f"docs/architecture.md vs {path}")

  def test_worked_example_binary_runs(self):
    workdir = os.path.join(make_tempdir(self), "out")
    env = helpers.binary_env(2, ECHO_JAX_COMPILATION_CACHE=helpers.SUITE_CACHE)
    result = subprocess.run(
        [sys.executable, "-m", "experiments.gru_echo", "--seeds=2",
         "--epochs=3", "--hidden=4", "--eval_sequences=4",
         f"--workdir={workdir}"], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=300, check=False)
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    with open(os.path.join(workdir, "gru_echo.json")) as f:
      record = json.load(f)
    self.assertEqual([r["variant"] for r in record["rows"]],
                     ["lstm", "gru_4"])
    self.assertCountEqual(os.listdir(os.path.join(workdir, "gru_echo")),
                          ["lstm", "gru_4", "study.json"])

  def test_python_snippet_runs(self):
    # The README's "Use it from Python" is the same snippet: one run checks
    # both pages.
    readme, = doc_blocks(os.path.join(REPO, "README.md"))
    self.assertEqual(readme, doc_blocks(self.DOC)[0])
    snippet = readme.replace("epochs=20", "epochs=2")
    self.assertNotEqual(snippet, readme)
    # pylint: disable=exec-used
    exec(compile(snippet, "docs/architecture.md", "exec"), {})


if __name__ == "__main__":
  absltest.main()
