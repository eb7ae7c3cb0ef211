"""TensorBoard summaries of a run's training curves (--tensorboard).

Opt-in, and imported only then: tensorboardX's import alone costs seconds
(it imports torch if present)."""

import contextlib

from echo_jax.core import config as config_lib


@contextlib.contextmanager
def writer(logdir: str, also=None):
  """Yields an on_chunk callback (`runner.ChunkCallback`) writing per-epoch
  scalars (mean over seeds) into `logdir`, then calling `also` (if any);
  ConfigError (one line) without tensorboardX."""
  try:
    import tensorboardX  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise config_lib.ConfigError(
        "tensorboard=true needs tensorboardX: pip install -r "
        "requirements-tensorboard.txt") from None
  summary_writer = tensorboardX.SummaryWriter(logdir)

  def on_chunk(first, end, loss_SxE, accuracy_SxE, params):
    for epoch in range(first, end):
      summary_writer.add_scalar("train/loss", loss_SxE[:, epoch].mean(),
                                epoch + 1)
      summary_writer.add_scalar("train/accuracy",
                                accuracy_SxE[:, epoch].mean(), epoch + 1)
    summary_writer.flush()
    if also is not None:
      also(first, end, loss_SxE, accuracy_SxE, params)

  try:
    yield on_chunk
  finally:
    summary_writer.close()
