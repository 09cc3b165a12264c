"""The one build step of a run: each thing a run needs is made here, once.

Example:
    >>> from trainlab.build import start, load_data, make_model, build
    >>> started = start(plan)                       # memory, process group, a torchrun restart
    >>> data = load_data(started)                   # loaded and cut (subsets, validation split)
    >>> model = make_model(started, data)           # seeded; pretrained or local weights
    >>> run = build(started, model, data)           # config of what runs, device, precision,
    >>> Trainer(run.config).run(run)                # batches, optimizer, feature cache

``trainlab train`` goes through all four; ``Trainer.fit(model, data)`` through ``start``, the cut
and ``build``, with the model and data it was given. The plan (``trainlab.resolve.plan_run``)
comes first and reads the resumed checkpoint once; what that checkpoint owns is decided there
too (``resolve.refuse_owned_changes``). The Trainer then restores the run's state and loops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.config import TrainConfig
from trainlab.data import Dataset, load_dataset
from trainlab.engine.allocator import keep_freed_memory
from trainlab.engine.checkpoint import BestCheckpoint, best_checkpoint, load_weights
from trainlab.engine.device import resolve_device
from trainlab.engine.distributed import Dist
from trainlab.engine.features import FeatureCache, try_cache
from trainlab.engine.imbalance import imbalance_record
from trainlab.engine.probe import probe
from trainlab.engine.setup import (
    RunSetup,
    amp_warning,
    class_weights,
    input_transform,
    loss_kind,
    setup_run,
)
from trainlab.engine.threads import ThreadChooser
from trainlab.logs import say, warn
from trainlab.resolve import Plan, check_resumable, plan_run, settings_of
from trainlab.runs import describe_run, find_launched_run, run_config


@dataclass
class Started:
    """A plan joined to its process: the memory and process-group choices made, and a
    torchrun restart turned into a resume of the run it was writing."""

    plan: Plan
    dist: Dist
    threads: ThreadChooser | None = None  # the CPU threads chosen at the start, rechecked
    threads_record: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> TrainConfig:
        return self.plan.config

    @property
    def resuming(self) -> bool:
        return self.plan.checkpoint is not None


def start(plan: Plan) -> Started:
    """The prologue of every run, once: keep freed memory, join torchrun's process group (an
    unusable device fails here), continue a restarted job's run, and fit a default batch size
    to the number of processes."""
    keep_freed_memory()  # before the data and the first batch: see engine/allocator.py
    dist = Dist.from_env()
    dist.join(dist.device(resolve_device(plan.config.device)))
    if dist.restart and plan.checkpoint is None:  # torchrun restarted the job
        found = restarted_run(plan.config.runs_dir, dist)
        if found is not None:
            plan = plan_run(settings_of(plan.config), resume=found, source=str(found))
    plan.fit_processes(dist.world)
    # the cores other processes leave free, before the first batch (see engine/threads.py)
    threads = ThreadChooser(int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    record = threads.start()
    return Started(plan, dist, threads, record)


def restarted_run(runs_dir: str | Path, dist: Dist) -> Path | None:
    """torchrun restarted this job (--max-restarts): the run it was writing, to continue."""
    found = find_launched_run(runs_dir, dist.run_id) if dist.main and dist.run_id else None
    found = dist.broadcast(str(found) if found else None)
    if dist.main:
        say(
            f"torchrun restart {dist.restart}: "
            + (f"resuming {found}" if found else "no checkpoint of this job; starting over")
        )
    return Path(found) if found else None


def cut_data(started: Started, data: Dataset) -> Dataset:
    """The splits the run uses: its subsets and validation split (a cut the data has is kept).
    A dataset that holds out a validation split by default (a folder of images) gets it unless
    the run chose one."""
    _default_val_split(started, data)
    cfg = started.config
    seed = cfg.effective_data_seed
    return data.cut(cfg.subset, cfg.test_subset, cfg.val_split, seed=seed, fold=cfg.cv_fold)


def _default_val_split(started: Started, data: Dataset) -> None:
    plan = started.plan
    if "val_split" in plan.chosen or data.val_y is not None or plan.config.folds:
        return
    from trainlab.data.registry import DATASETS, by_path

    spec = DATASETS.lookup(data.name) or by_path(data.name)
    if spec is None or not spec.val_split:
        return
    plan.config = plan.config.replace(val_split=spec.val_split)
    note = (
        f"--val-split {spec.val_split:g} by default for {spec.summary}: best.pt is chosen on "
        "it, never on the test split (--val-split 0 turns it off)"
    )
    plan.notes["val_split"] = note
    say(f"note: {note}")


def load_data(started: Started) -> Dataset:
    """The dataset the config names, loaded (one process per machine fetches and verifies
    first) and cut."""
    cfg, dist = started.config, started.dist
    with dist.node_first():
        data = load_dataset(
            cfg.dataset, cfg.data_dir, seed=cfg.effective_data_seed, **cfg.data_options
        )
    return cut_data(started, data)


def make_model(started: Started, data: Dataset, *, trust_code: bool = False) -> nn.Module:
    """The model a config describes: built (seeded), with pretrained or local weights and its
    features frozen if asked. On a resume the checkpoint holds the weights, so pretrained and
    local weight files are not read again (an offline resume must not need them); a model of
    the user's own code is imported on a resume only with ``trust_code``."""
    from trainlab.models import build_model, record_of, set_record
    from trainlab.models.pretrained import freeze_features, load_pretrained, load_weights_file

    if started.config.model == "auto" and not started.resuming:
        _auto_model(started, data)
    _default_model(started, data)
    cfg, resuming = started.config, started.resuming
    torch.manual_seed(cfg.seed)
    model = build_model(
        cfg.model,
        data,
        init=cfg.init,
        trust_code=trust_code or not resuming,
        **cfg.model_options,
    )
    source = None
    if cfg.pretrained and not resuming:
        loaded, source = load_pretrained(model, cfg.model)  # and where they came from
        say(f"loaded ImageNet weights for {cfg.model}: {len(loaded)} tensors (the head is new)")
    if cfg.weights and not resuming:
        loaded = load_weights_file(model, cfg.weights)
        say(f"loaded {len(loaded)} tensors from {cfg.weights}")
    if cfg.freeze_features:
        trainable = freeze_features(model)
        say(f"features frozen: training the head only ({trainable:,} parameters)")
    set_record(
        model,
        {
            **record_of(model),
            "pretrained": cfg.pretrained,
            "weights": cfg.weights,
            "freeze_features": cfg.freeze_features,
            **({"weights_source": source} if source else {}),
        },
    )
    return model


def _auto_model(started: Started, data: Dataset) -> None:
    """``--model auto``: the choice of ``trainlab.auto``, in the budget that is left."""
    from trainlab.auto import apply
    from trainlab.engine.budget import seconds_left

    cfg = started.config
    left = seconds_left(cfg.budget) if cfg.budget else None
    apply(started.plan, data, started.dist.device(resolve_device(cfg.device)), left)


def _default_model(started: Started, data: Dataset) -> None:
    """The model the data's kind trains when the run names none (a table: an MLP sized from
    its columns); the run records it and says so."""
    plan = started.plan
    if "model" in plan.chosen or started.resuming:
        return
    default = data.kind_entry.default_model(data)
    if default is None:
        return
    name, options = default
    options = {**options, **plan.config.model_options}  # options given keep their values
    plan.config = plan.config.replace(model=name, model_options=options)
    note = f"--model {name} {options} by default for {data.kind_entry.summary}"
    plan.notes["model"] = note
    say(f"note: {note} (--model chooses another)")


@dataclass
class Run:
    """A built run: what the Trainer restores and loops over, as one value."""

    config: TrainConfig  # what runs (recorded): the plan's, described by the model and data
    plan: Plan
    dist: Dist
    model: nn.Module
    data: Dataset
    setup: RunSetup  # device, precision, batches, optimizer, scorer (the head, when cached)
    best: BestCheckpoint
    features: FeatureCache | None
    description: dict[str, Any]  # config.toml's and every checkpoint's account of the run
    notes: dict[str, str] = field(default_factory=dict)
    threads: ThreadChooser | None = None  # rechecked between epochs

    @property
    def checkpoint(self) -> dict[str, Any] | None:
        return self.plan.checkpoint


def build(started: Started, model: nn.Module, data: Dataset) -> Run:
    """Everything the loop needs, from the plan, the model and the cut data: the config of what
    runs (checked against a resumed checkpoint), the checkpoint's weights, the setup, the choice
    of best.pt and whether the frozen features are cached."""
    plan, dist = started.plan, started.dist
    # one batch through the model first: a wrong input or output shape, a final softmax under
    # cross-entropy, and lazy modules' shapes (before parameters are counted or loaded)
    loss = loss_kind(plan.config, model, data.kind_entry.task)
    notes = probe(model, data, input_transform(model, data, plan.config), loss)
    cfg = run_config(plan.config, model, data)
    if cfg.budget and plan.checkpoint is not None:  # the epochs its budget planned at first
        cfg = cfg.replace(epochs=plan.checkpoint["config"]["epochs"])
    if plan.checkpoint is not None:
        check_resumable(plan.checkpoint, cfg)
        # the backbone's final weights before anything is computed from them (feature cache)
        load_weights(model, plan.checkpoint["state_dict"], plan.checkpoint["path"], cfg.model)
    setup = setup_run(cfg, model, data, dist)
    warning = amp_warning(setup.amp_dtype, setup.device)
    if warning and dist.main:  # a warning, not progress: said when quiet too
        warn(warning)
    task = data.kind_entry.task
    best = best_checkpoint(cfg.monitor, "val" in setup.splits, task)
    if cfg.early_stop and not best.chooses:
        from trainlab.errors import ConfigError

        raise ConfigError(
            "--early-stop watches a validation figure, and this run has no validation split "
            "(stopping on the test split would choose the model on it). Hold one out with "
            "--val-split 0.1, or give --monitor train_loss."
        )
    setup, features = try_cache(cfg, model, data, setup)
    if features is not None and dist.main:
        say(features.line())
    budget = None
    if cfg.budget and plan.checkpoint is None:  # a resume keeps the epochs planned at first
        from trainlab.engine.budget import plan_epochs

        most = cfg.epochs if "epochs" in plan.chosen else None  # given: the most it plans
        budget = plan_epochs(cfg.budget, setup, model, data.num_classes, most=most, dist=dist)
        budget = dist.broadcast(budget)  # every process runs rank 0's plan
        cfg = cfg.replace(epochs=budget["epochs"])
        if dist.main:
            say(budget.pop("line"))
    description = describe_run(cfg, model, data, setup.transform)
    if budget is not None or (plan.checkpoint or {}).get("budget"):
        description["budget"] = budget or plan.checkpoint["budget"]  # what the first plan said
    description["resolved"] = {
        **resolved_record(setup),
        **started.threads_record,
    }
    augment = setup.train.transform.augment if setup.train.transform else None
    if augment is not None:  # what --augment chose for this data
        description["data"]["augment"] = augment.describe()
    if features is not None:  # the head trains from features computed once
        description["features"] = features.describe()
    if task.has_classes:  # the classes' sizes, and the weights the loss gave them
        description["data"].update(imbalance_record(data, class_weights(cfg, data)))
    notes = {**plan.notes, **notes}
    if notes:  # what the plan adjusted (a rounded default) and what the probe saw
        description["notes"] = notes
    if dist.launched:
        description["launch"] = {
            "world_size": dist.world,
            "batch_size_is": "global (split evenly among the processes)",
            "batch_per_process": cfg.batch_size // dist.world,
            "backend": dist.backend or "none",
            "run_id": dist.run_id,
            "restart": dist.restart,
        }
    return Run(
        cfg, plan, dist, model, data, setup, best, features, description, notes, started.threads
    )


def resolved_record(setup: RunSetup) -> dict[str, Any]:
    """What ``auto`` became on this machine: the precision the steps ran in, the device type
    and the thread count (``start`` adds how it was chosen). Eval, predict and serve score in
    the recorded precision."""
    return {
        "precision": "bf16" if setup.amp_dtype == torch.bfloat16 else "float32",
        "device": setup.device.type,
        "threads": torch.get_num_threads(),
    }


def start_info(run: Run, position: Any, changes: dict) -> dict[str, Any]:
    """What a fit says as it starts (``on_fit_start``): where, on what, from which epoch."""
    setup = run.setup
    amp = str(setup.amp_dtype).replace("torch.", "") if setup.amp_dtype else "float32"
    return {
        "run_dir": position.run_dir,
        "device": str(setup.device),
        "amp": amp,
        "epochs": run.config.epochs,
        "start_epoch": position.epoch,
        "start_batch": position.batch,
        "resumed": bool(position.history) or bool(position.epoch or position.batch),
        "steps_per_epoch": setup.steps,
        "train_samples": len(run.data.train_y),
        "monitor": run.best.monitor,
        "changes": dict(changes),
    }
