# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # echo_jax: the echo tutorial, from Python
#
# The three experiments of Jason Brownlee's Keras tutorial
# ["How to Learn to Echo Random Integers with LSTMs in Keras"](https://machinelearningmastery.com/learn-echo-random-integers-long-short-term-memory-recurrent-neural-networks/)
# and one extension, run through echo_jax's Python API: a config, a task,
# the runner, the record. Open it as a notebook with
# `jupytext --to ipynb notebooks/tutorial.py` (or Jupyter's jupytext
# extension), or run it as a script: `python3 notebooks/tutorial.py`.
#
# `QUICK = True` trains every model briefly (about a minute on 2 CPU cores,
# accuracies far from the tutorial's); `False` uses the tutorial's settings
# (2000 epochs for the stateful experiments, a few minutes on 2 cores).

# %%
QUICK = False

import matplotlib.pyplot as plt
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.runtime import runner
from echo_jax.tasks import task


def settings(experiment, quick_epochs):
  """The tutorial's preset, 4 seeds each scored on the same 1000 fresh
  sequences; QUICK: `quick_epochs` epochs, 2 seeds, 100 sequences."""
  config = config_lib.preset(experiment).replace(seeds=4)
  if QUICK:
    config = config.replace(epochs=quick_epochs, seeds=2, eval_sequences=100)
  return config


def train(config):
  """Every seed trained at once (vmapped, sharded over the host's devices),
  then scored: the record the binaries write as <experiment>.json."""
  output = runner.run_task(task.tutorial_task(config))
  return output, records.tutorial_record(output)


def summary(record):
  low, high = record["eval_accuracy_ci95"]
  return (f"{record['experiment']}: {100 * record['eval_accuracy']:.2f}% "
          f"[{100 * low:.2f}%, {100 * high:.2f}%] over "
          f"{len(record['eval_accuracy_per_seed'])} seeds (tutorial: "
          f"{100 * record['tutorial_accuracy']:.0f}%, chance "
          f"{100 * record['chance_accuracy']:.0f}%)")


def curves(output, title):
  """Training loss and accuracy per epoch, one thin line per seed."""
  figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5),
                                       constrained_layout=True)
  left.plot(output.loss_MxE.T, lw=0.8)
  left.set(xlabel="epoch", ylabel="training loss", yscale="log")
  right.plot(100 * output.accuracy_MxE.T, lw=0.8)
  right.set(xlabel="epoch", ylabel="training accuracy (%)", ylim=(0, 101))
  figure.suptitle(title)
  return figure


# %% [markdown]
# ## 1. Echo the current value
#
# One timestep per sample, LSTM(15), batch 1, 500 epochs of one fresh
# sequence of 25 integers in [0, 100). The tutorial learns it perfectly.

# %%
current_output, current = train(settings("echo_current", quick_epochs=60))
print(summary(current))
print("expected: ", current["example"]["expected"])
print("predicted:", current["example"]["predicted"])
curves(current_output, "Echo current: LSTM(15), batch 1")

# %% [markdown]
# ## 2. The beginner's mistake: echo the previous value from one timestep
#
# A stateful LSTM(50), batch 6, one timestep per sample. Keras carries row i
# of one batch into row i of the next, so sample j starts from the state
# sample j-6 left, and no gradient crosses a batch: the value to echo never
# reaches the state that predicts it. Accuracy stays at chance (1%) at every
# position of the sequence.

# %%
mistake_output, mistake = train(settings("echo_lag_no_context",
                                         quick_epochs=60))
print(summary(mistake))
positions = 100 * np.array(mistake["eval_accuracy_per_position"])
print("accuracy per position (%):", np.round(positions, 1))
curves(mistake_output, "Beginner's mistake: stateful LSTM(50), batch 6")

# %% [markdown]
# ## 3. The fix: echo the previous value from a window of 5
#
# Each sample is the window of the last 5 values, target X(t-1), stateful
# LSTM(50), batch 5, 2000 epochs. Learned.

# %%
lag_output, lag = train(settings("echo_lag", quick_epochs=150))
print(summary(lag))
curves(lag_output, "Echo lag with context: stateful LSTM(50), window 5")

# %% [markdown]
# ## An extension: does the carried state help the windowed echo?
#
# The same windows, batches, epochs and seeds, with every sample starting
# from zeros (stateless). The window already holds the value to echo; the
# binary `python3 -m experiments.ignore_state` answers this with 8 seeds.

# %%
stateless_output, stateless = train(
    settings("echo_lag", quick_epochs=150).replace(stateful=False))
print(summary(stateless))


def epochs_to(accuracy_MxE, level=0.99):
  """First epoch (1-based) each seed's training accuracy reaches `level`."""
  reached = accuracy_MxE >= level
  return [int(np.argmax(r)) + 1 if r.any() else None for r in reached]


figure, axis = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
for name, output in (("stateful", lag_output),
                     ("stateless", stateless_output)):
  axis.plot(100 * output.accuracy_MxE.mean(0), label=name)
  print(f"{name}: first epoch at 99% training accuracy per seed:",
        epochs_to(output.accuracy_MxE))
axis.set(xlabel="epoch", ylabel="training accuracy (%), mean of seeds",
         ylim=(0, 101), title="Windowed echo: stateful vs stateless")
axis.legend()

# %%
plt.show()
