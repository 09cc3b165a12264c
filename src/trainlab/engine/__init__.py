"""Training engine: plain loop functions (``loop``), metrics as counts, checkpoints, run setup,
callbacks, devices and torchrun.

``trainlab.trainer.Trainer`` composes these; nothing here imports the presentation side
(``trainlab.report``). Import the modules themselves, e.g. ``trainlab.engine.loop.evaluate``.
"""
