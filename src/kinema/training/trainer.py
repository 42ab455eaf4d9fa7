"""The one training loop, on Hugging Face Accelerate, that every family's objective plugs into."""

from __future__ import annotations

import contextlib
import copy
import math
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import (
    DistributedDataParallelKwargs,
    DistributedType,
    gather_object,
    set_seed,
)
from torch import nn

from kinema.io.atomic import atomic_path
from kinema.training import checkpoint as ckpt
from kinema.training.config import (
    ConfigError,
    RunConfig,
    dump_yaml,
    flatten,
    load_config,
)
from kinema.training.export import write_model_folder
from kinema.training.logging import RunLogger
from kinema.training.objectives import Objective, get_family
from kinema.training.sampler import DataPosition, GlobalBatchSampler


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT / SIGTERM after saving a checkpoint; ``--resume auto`` continues it."""

    def __init__(self, signal_name: str, run_dir: Path, step: int) -> None:
        super().__init__(f"{signal_name} received: stopped at step {step} with a checkpoint in {run_dir}; continue with --resume auto")
        self.signal_name, self.run_dir, self.step = signal_name, run_dir, step


def train(
    config: str | Path | RunConfig,
    overrides: Sequence[str] = (),
    resume: str | Path | None = None,
    out: str | Path | None = None,
    until_step: int | None = None,
    time_limit: float | None = None,
) -> Path:
    """Train a model from a config; return the run folder.

    config: a YAML path (configs/<family>/<name>.yaml) or a RunConfig.
    overrides: "key.sub=value" strings applied on top of the YAML (values parsed as YAML).
    resume: None (a new run; refuses a folder that already has checkpoints), "auto" (the newest
        valid checkpoint of the run folder, or a fresh start if there is none), or a checkpoint
        file / run folder to continue from.
    out: the run folder; default runs/<config stem>.
    until_step / time_limit (minutes): stop early with a checkpoint; the LR schedule stays that of
        train.max_steps, so `resume="auto"` later continues as if the run had never stopped.

    Raises TrainingInterrupted (a KeyboardInterrupt) after the checkpoint when SIGINT or SIGTERM stopped it.
    """
    if isinstance(config, RunConfig):
        if overrides:
            raise ValueError("overrides apply to a YAML config; edit the RunConfig instead")
        if out is None:
            raise ValueError("out is required when config is a RunConfig")
        cfg = config
    else:
        cfg = load_config(config, overrides)
    run_dir = Path(out) if out is not None else Path("runs") / Path(config).stem
    if until_step is not None and until_step < 0:
        raise ValueError(f"until_step must be 0 or more, got {until_step}")
    if time_limit is not None and time_limit < 0:
        raise ValueError(f"time_limit must be 0 or more minutes, got {time_limit}")
    trainer = Trainer(cfg, run_dir)
    try:
        trainer.fit(resume=resume, until_step=until_step, time_limit=time_limit)
    finally:
        trainer.close()
    if trainer.stop_signal:
        raise TrainingInterrupted(trainer.stop_signal, run_dir, trainer.step)
    return run_dir


def lr_factor(step: int, train: Any) -> float:
    """Linear warmup to 1 over warmup_steps, then constant or cosine down to min_lr_ratio at max_steps."""
    if step < train.warmup_steps:
        return (step + 1) / train.warmup_steps
    if train.lr_schedule == "constant":
        return 1.0
    progress = min(1.0, (step - train.warmup_steps) / max(1, train.max_steps - train.warmup_steps))
    return train.min_lr_ratio + (1 - train.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class EMA:
    """Exponential moving average of some modules' weights, decay warmed up as (1 + n) / (10 + n)."""

    def __init__(self, modules: dict[str, nn.Module], decay: float, device: torch.device):
        self.decay = decay
        self.modules = modules
        self.copies = {name: copy.deepcopy(m).requires_grad_(False).eval().to(device) for name, m in modules.items()}
        self._params = [(e, p) for n in modules for e, p in zip(self.copies[n].parameters(), modules[n].parameters()) if e.is_floating_point()]
        self._buffers = [(e, b) for n in modules for e, b in zip(self.copies[n].buffers(), modules[n].buffers())]

    @torch.no_grad()
    def update(self, num_updates: int) -> None:
        decay = min(self.decay, (1 + num_updates) / (10 + num_updates))
        ema, model = [e for e, _ in self._params], [p for _, p in self._params]
        torch._foreach_lerp_(ema, model, 1 - decay)
        for e, b in self._buffers:
            e.copy_(b)

    @torch.no_grad()
    def reset(self) -> None:
        """Start the averages at the modules' current weights (after loading weights into them)."""
        for name, module in self.copies.items():
            module.load_state_dict(self.modules[name].state_dict())

    def state_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        return {name: module.state_dict() for name, module in self.copies.items()}

    def load_state_dict(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        for name, module in self.copies.items():
            module.load_state_dict(state[name])


class Trainer:
    """Builds everything a run needs from a RunConfig; `fit()` runs (or resumes) the loop."""

    def __init__(self, config: RunConfig, run_dir: Path):
        self.config = config
        self.run_dir = Path(run_dir)
        t = self.train_config = config.train
        self._check_hardware(t)

        # 1. accelerator: DDP / FSDP, mixed precision, device
        fsdp_plugin = None
        if t.fsdp:
            from accelerate import FullyShardedDataParallelPlugin

            fsdp_plugin = FullyShardedDataParallelPlugin(fsdp_version=2)
        self.accelerator = Accelerator(
            mixed_precision=t.mixed_precision,
            # without cpu=True, Accelerate sets up no process group for torchrun-launched CPU processes
            cpu=t.cpu or not torch.cuda.is_available(),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=t.find_unused_parameters)],
            fsdp_plugin=fsdp_plugin,
        )
        self.num_processes = self.accelerator.num_processes
        self.fsdp = self.accelerator.distributed_type == DistributedType.FSDP  # only when launched on several GPUs
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched != self.num_processes:
            raise RuntimeError(f"launched as {launched} processes but Accelerate set up {self.num_processes}")
        self.is_main = self.accelerator.is_main_process
        self.logger: RunLogger | None = None

        # 2. objective and data; the same seed on every process gives the same initial weights
        family = get_family(config.family)
        set_seed(t.seed)
        self.objective: Objective = family.objective(config)
        self.dataset = family.dataset(config)
        self.sampler_args = {"num_samples": len(self.dataset), "global_batch": t.batch_size, "accumulation": t.gradient_accumulation_steps}
        # refuse a batch that the dataset or the process count cannot serve before anything is written
        GlobalBatchSampler(**self.sampler_args, num_processes=self.num_processes, process_index=0, seed=t.seed, start=DataPosition())

        # 3. optimizers over the objective's param groups; modules they train are prepared, others only moved
        groups = {
            name: [dict(g, params=list(g["params"])) for g in param_groups]  # params may be a one-shot generator
            for name, param_groups in self.objective.optimizer_groups().items()
        }
        if not groups or any(not any(g["params"] for g in param_groups) for param_groups in groups.values()):
            raise ValueError(f"{type(self.objective).__name__}.optimizer_groups() must give every optimizer some parameters")
        self.objective._optimizer_names = tuple(groups)
        self.raw: dict[str, nn.Module] = dict(self.objective.modules)
        trained = {id(p) for param_groups in groups.values() for g in param_groups for p in g["params"]}
        owned = {id(p) for m in self.raw.values() for p in m.parameters()}
        if trained - owned:
            raise ValueError("optimizer_groups() returned parameters that belong to no module in objective.modules")
        self.trainable = [n for n, m in self.raw.items() if any(id(p) in trained for p in m.parameters())]
        self.group_hparams: dict[str, list[dict]] = {}
        optimizers = {}
        for name, param_groups in groups.items():
            optimizers[name] = torch.optim.AdamW(param_groups, lr=t.lr, betas=t.betas, eps=t.eps, weight_decay=t.weight_decay)
            self.group_hparams[name] = [{k: v for k, v in g.items() if k != "params"} for g in optimizers[name].param_groups]
        self.phase_params = {name: [p for g in opt.param_groups for p in g["params"]] for name, opt in optimizers.items()}

        for module in self.raw.values():
            module.to(self.accelerator.device)
        ema_names = self.objective.ema_modules if self.objective.ema_modules is not None else tuple(self.trainable)
        self.ema = EMA({n: self.raw[n] for n in ema_names}, t.ema_decay, self.accelerator.device) if t.ema_decay else None

        prepared = self.accelerator.prepare(*[self.raw[n] for n in self.trainable], *optimizers.values())
        self.prepared = dict(zip(self.trainable, prepared[: len(self.trainable)]))
        self.optimizers = dict(zip(optimizers, prepared[len(self.trainable) :]))
        if t.compile:
            names = list(self.prepared) if t.compile is True else t.compile
            unknown = sorted(set(names) - set(self.prepared))
            if unknown:
                raise ValueError(f"train.compile names {', '.join(unknown)}; this run trains {', '.join(self.prepared)}")
            # fixed shapes: a run's batches are all alike, and dynamic-shape inductor graphs fail on some models
            self.prepared |= {n: torch.compile(self.prepared[n], dynamic=False) for n in names}
        self.training_view = {**self.raw, **self.prepared}
        self.objective.modules = self.training_view
        for name in self.trainable:
            self.raw[name].train()
        # schedulers after prepare, on the inner optimizers, so they wrap the step that really runs
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(opt.optimizer, lambda step: lr_factor(step, t))
            for name, opt in self.optimizers.items()
        }

        self.step = 0
        self.position = DataPosition()
        self.saved_step: int | None = None
        self._stop_signal: str | None = None

    # ------------------------------------------------------------------ the loop

    @property
    def stop_signal(self) -> str | None:
        """The signal that stopped the run (SIGINT, SIGTERM), or None."""
        return self._stop_signal

    def fit(self, resume: str | Path | None = None, until_step: int | None = None, time_limit: float | None = None) -> None:
        t = self.train_config
        ckpt_dir = self.run_dir / "checkpoints"
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.remove_partial_writes(ckpt_dir)
        self.accelerator.wait_for_everyone()

        # 1. where to start: a fresh run or a checkpoint
        messages, warnings = [], []
        found = self._find_checkpoint(resume, ckpt_dir, warnings.append, messages.append)
        rng_state = None
        if found is not None:
            path, state = found
            rng_state = self._load_state(state, path, messages)
        else:
            if t.init_from is not None:
                self._init_weights(t.init_from, messages)
            self._seed_processes(offset=0)

        # 2. the run folder: resolved config, logs
        if self.is_main:
            with atomic_path(self.run_dir / "config.yaml", overwrite=True) as tmp:
                tmp.write_text(dump_yaml(self.config))
        self.logger = RunLogger(self.run_dir, self.is_main, t.max_steps, self.step)
        for text in warnings:
            self.logger.warning(text)
        for text in messages:
            self.logger.message(text)
        if found is not None and self.is_main:
            self._set_aside_newer(ckpt_dir, self.step)
        if _single_process_from_cpu_launch(self.num_processes):
            self.logger.warning(
                "`accelerate launch --cpu --num_processes N` starts one process (Accelerate runs several CPU processes"
                " only through mpirun); for N CPU processes use `accelerate launch --multi_gpu --num_processes N`"
            )
        device = self.accelerator.device
        self.logger.message(
            f"training {self.config.family} in {self.run_dir}: step {self.step} -> {t.max_steps}, global batch {t.batch_size}"
            f" on {self.num_processes} process(es) ({device}, precision {t.mixed_precision})"
        )

        # 3. data from the saved position; its iterator is made before the RNG is restored (it draws no global RNG anyway)
        batches = self._batches()
        if rng_state is not None:
            self._restore_rng(rng_state)

        # 4. the loop; stop conditions are checked between steps, so every stop has a finished step to save
        deadline = time.monotonic() + 60 * time_limit if time_limit is not None else None
        stop_reason = None
        previous = self._install_signal_handlers()
        try:
            log_start, log_step = time.perf_counter(), self.step
            sums: dict[str, torch.Tensor] = {}
            counts: dict[str, int] = {}  # a phase may skip steps, so each value has its own count
            while self.step < t.max_steps:
                stop_reason = self._stop_reason(until_step, deadline, time_limit)
                if stop_reason:
                    break
                logs = self._train_step(next(batches))
                for key, value in logs.items():
                    sums[key] = sums[key] + value if key in sums else value
                    counts[key] = counts.get(key, 0) + 1
                self.step += 1
                self.logger.advance(self.step)
                if self.step % t.log_every == 0 or self.step == t.max_steps:
                    elapsed = time.perf_counter() - log_start
                    self._log({k: v / counts[k] for k, v in sums.items()}, self.step - log_step, elapsed)
                    sums, counts, log_start, log_step = {}, {}, time.perf_counter(), self.step
                # checkpoint first: a preview that fails must not cost the steps since the last one
                if self.step % t.checkpoint_every == 0:
                    self._save(ckpt_dir)
                if t.sample_every and self.step % t.sample_every == 0 and self.objective.can_sample:
                    self._sample()
            if self.saved_step != self.step:
                self._save(ckpt_dir)
        finally:
            self._restore_signal_handlers(previous)

        # 5. the end: export the model, or say how to continue
        self.logger.stop_progress()
        if stop_reason:
            self.logger.message(f"stopped at step {self.step} ({stop_reason}); checkpoint saved, continue with --resume auto")
        else:
            if t.sample_every and self.objective.can_sample and self.step % t.sample_every:
                self._sample()
            model_dir = self._export()
            self.logger.message(f"finished {t.max_steps} steps; model exported to {model_dir}")
        self.accelerator.wait_for_everyone()

    def _train_step(self, batches_of_step: list[Any]) -> dict[str, torch.Tensor]:
        """One optimizer step per phase over the step's micro-batches; returns detached losses and grad norms."""
        t = self.train_config
        step = self.step
        accumulation = len(batches_of_step)
        multi = len(self.optimizers) > 1
        logs: dict[str, torch.Tensor] = {}
        for phase in self.objective.phases(step):
            if phase not in self.optimizers:
                raise KeyError(f"{type(self.objective).__name__}.phases() gave {phase!r}; the optimizers are {list(self.optimizers)}")
            optimizer = self.optimizers[phase]
            # Accelerate's optimizer wrapper only matters with a grad scaler (it skips steps that overflow);
            # otherwise it forwards to the inner optimizer after an importlib lookup that costs ~0.2 ms a step
            inner = optimizer if self.accelerator.scaler is not None else optimizer.optimizer
            inner.zero_grad(set_to_none=True)
            for i, batch in enumerate(batches_of_step):
                # gradients are all-reduced once, on the last micro-batch
                with self._no_sync() if i < accumulation - 1 else contextlib.nullcontext():
                    with self.accelerator.autocast():
                        losses = self.objective.training_step(batch, step, phase)
                    if "loss" not in losses:
                        raise KeyError(f"{type(self.objective).__name__}.training_step must return a 'loss' entry, got {list(losses)}")
                    self.accelerator.backward(losses["loss"] / accumulation if accumulation > 1 else losses["loss"])
                for key, value in losses.items():
                    name = f"{phase}/{key}" if multi else key
                    value = value.detach().float() / accumulation if accumulation > 1 else value.detach().float()
                    logs[name] = logs[name] + value if name in logs else value
            log_step = (step + 1) % t.log_every == 0 or step + 1 == t.max_steps
            norm = self._clip(phase, need_norm=log_step)
            if log_step:  # the norm of the logged step, not an average
                logs[f"{phase}/grad_norm" if multi else "grad_norm"] = norm
            inner.step()
            inner.zero_grad(set_to_none=True)
        for scheduler in self.schedulers.values():
            scheduler.step()
        if self.ema is not None:
            self.ema.update(step)
        return logs

    def _clip(self, phase: str, need_norm: bool) -> torch.Tensor | None:
        max_norm = self.train_config.max_grad_norm
        if max_norm is None and not need_norm:
            return None
        params = self.phase_params[phase]
        if self.fsdp:
            return self.accelerator.clip_grad_norm_(params, max_norm or math.inf).detach()
        self.accelerator.unscale_gradients(optimizer=self.optimizers[phase])
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads)
        if max_norm is not None:
            torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
        return norm.detach()

    def _no_sync(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        for module in self.prepared.values():
            stack.enter_context(self.accelerator.no_sync(module))
        return stack

    def _batches(self):
        """Endless iterator of the micro-batches of each step, moved to the device."""
        t = self.train_config
        sampler = GlobalBatchSampler(
            **self.sampler_args,
            num_processes=self.num_processes,
            process_index=self.accelerator.process_index,
            seed=t.seed,
            start=self.position,
        )
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=sampler,
            num_workers=t.num_workers,
            pin_memory=self.accelerator.device.type == "cuda",
            generator=torch.Generator().manual_seed(t.seed),  # workers' seeds, without touching the global RNG
        )
        device = self.accelerator.device
        iterator = iter(loader)
        while True:
            micro = [_to_device(next(iterator), device) for _ in range(t.gradient_accumulation_steps)]
            self.position = self.position.advance(t.batch_size, len(self.dataset))
            yield micro

    # ------------------------------------------------------------------ stopping

    def _stop_reason(self, until_step: int | None, deadline: float | None, time_limit: float | None) -> str | None:
        if until_step is not None and self.step >= until_step:
            return f"--until-step {until_step}"
        local = None
        if self._stop_signal:
            local = self._stop_signal
        elif deadline is not None and time.monotonic() >= deadline:
            local = f"--time-limit {time_limit:g} min"
        if self.num_processes == 1:
            return local
        # processes must agree, or one would wait forever in the next all-reduce
        if local:
            self.accelerator.set_trigger()
        return (local or "stopped by another process") if self.accelerator.check_trigger() else None

    def _install_signal_handlers(self) -> dict:
        previous = {}

        def handler(signum, frame):
            name = signal.Signals(signum).name
            if self._stop_signal and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now, without a checkpoint
            self._stop_signal = name
            if self.logger is not None:
                self.logger.message(f"{name} received: finishing step {self.step + 1}, then saving a checkpoint")

        with contextlib.suppress(ValueError):  # only the main thread may set handlers
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, handler)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    # ------------------------------------------------------------------ logging, previews, export

    def _log(self, means: dict[str, torch.Tensor], steps: int, elapsed: float) -> None:
        keys = sorted(means)
        values = torch.stack([means[k] for k in keys]) if keys else torch.zeros(0)
        if self.num_processes > 1 and keys:
            values = self.accelerator.reduce(values.to(self.accelerator.device), reduction="mean")
        scalars = dict(zip(keys, values.tolist()))
        for name, scheduler in self.schedulers.items():
            scalars["lr" if len(self.schedulers) == 1 else f"{name}/lr"] = scheduler.get_last_lr()[0]
        steps_per_s = steps / elapsed if elapsed > 0 else math.nan
        scalars["samples_per_s"] = steps_per_s * self.train_config.batch_size
        self.logger.scalars(self.step, scalars, steps_per_s)

    @contextlib.contextmanager
    def _inference_view(self):
        """Objective sees raw modules (EMA copies where EMA is on) in eval mode; RNG and modes restored after."""
        view = {**self.raw, **(self.ema.copies if self.ema is not None else {})}
        modes = {name: module.training for name, module in view.items()}
        devices = [self.accelerator.device] if self.accelerator.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            try:
                self.objective.modules = view
                for module in view.values():
                    module.eval()
                yield
            finally:
                for name, module in view.items():
                    module.train(modes[name])
                self.objective.modules = self.training_view

    def _sample(self) -> None:
        if not self.is_main and not self.fsdp:  # FSDP modules' forward is collective: every process samples
            return
        generator = torch.Generator().manual_seed(self.train_config.seed)
        rng = ckpt.capture_rng()  # previews must not move the training's random streams (exact resume)
        try:
            with self._inference_view():
                clips = self.objective.sample(self.train_config.num_samples, generator)
        except Exception as error:  # noqa: BLE001 - a preview is a picture, not a reason to end a run
            if self.fsdp:
                raise  # sampling is collective there: one process cannot skip it alone
            self.logger.message(f"warning: preview at step {self.step} failed ({type(error).__name__}: {error}); training goes on")
            return
        finally:
            ckpt.restore_rng(rng)
        self.logger.video(self.step, clips)

    def _export(self) -> Path:
        """Write run/model/ (a model folder, docs/model_format.md), replacing an older export whole."""
        target = self.run_dir / "model"
        self.accelerator.wait_for_everyone()
        if self.fsdp:
            # sharded weights: gather them (all processes), load them into a fresh unsharded objective on the main one
            states = {name: self._module_state(name) for name in self.trainable}
            if not self.is_main:
                return target
            objective = get_family(self.config.family).objective(self.config)
            for name, state in states.items():
                objective.modules[name].load_state_dict(state)
            view = contextlib.nullcontext()
        elif not self.is_main:
            return target
        else:
            objective, view = self.objective, self._inference_view()
        with view:
            write_model_folder(objective, target, {
                "family": self.config.family,
                "step": self.step,
                "weights": "ema" if self.ema is not None else "raw",
                "ema_decay": self.train_config.ema_decay,
            })
        return target

    # ------------------------------------------------------------------ checkpoints

    def _save(self, ckpt_dir: Path) -> None:
        rng = [ckpt.capture_rng()]
        if self.num_processes > 1:
            rng = gather_object(rng)  # one entry per process, in process order
        state = {
            "step": self.step,
            "modules": {n: self._module_state(n) for n in self.trainable},
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "optimizers": {n: self._optimizer_state(n) for n in self.optimizers},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scaler": self.accelerator.scaler.state_dict() if self.accelerator.scaler is not None else None,
            "rng": rng,
            "data": {"epoch": self.position.epoch, "offset": self.position.offset},
            "num_processes": self.num_processes,
            "config": self.config.to_dict(),
        }
        if self.is_main:
            ckpt.save_checkpoint(ckpt.checkpoint_path(ckpt_dir, self.step), state)
            ckpt.prune_checkpoints(ckpt_dir, self.train_config.keep_checkpoints)
        self.saved_step = self.step
        self.accelerator.wait_for_everyone()

    # Under FSDP2 every process holds a shard; checkpoints hold full (gathered) state dicts, and every
    # process loads the full dict and keeps its shard. Not exercised by the tests (they run on a CPU).

    def _module_state(self, name: str) -> dict[str, torch.Tensor]:
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import get_model_state_dict

            return get_model_state_dict(self.prepared[name], options=_full_state_options())
        return self.raw[name].state_dict()

    def _load_module_state(self, name: str, state: dict[str, torch.Tensor], strict: bool = True) -> list[str]:
        """Load a full state dict into module ``name``. Not ``strict``, tensors the state lacks or holds in
        another shape keep their current values, and their names are returned; keys the module has no
        place for still fail (the state is some other model)."""
        fresh: list[str] = []
        if not strict:
            own = self.raw[name].state_dict()
            unexpected = sorted(set(state) - set(own))
            if unexpected:
                raise RuntimeError(f"Error(s) in loading state_dict:\n\tUnexpected key(s): {', '.join(unexpected[:6])}")
            fresh = sorted(k for k, v in own.items() if k not in state or state[k].shape != v.shape)
            state = {k: v for k, v in state.items() if k not in fresh} | {k: own[k] for k in fresh}
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import set_model_state_dict

            set_model_state_dict(self.prepared[name], state, options=_full_state_options())
        else:
            self.raw[name].load_state_dict(state)
        return fresh

    def _optimizer_state(self, name: str) -> dict:
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

            return get_optimizer_state_dict(self._fsdp_module_of(name), self.optimizers[name].optimizer, options=_full_state_options())
        return self.optimizers[name].state_dict()

    def _load_optimizer_state(self, name: str, state: dict) -> None:
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

            set_optimizer_state_dict(self._fsdp_module_of(name), self.optimizers[name].optimizer, state, options=_full_state_options())
        else:
            self.optimizers[name].load_state_dict(state)

    def _fsdp_module_of(self, optimizer_name: str) -> nn.Module:
        params = {id(p) for p in self.phase_params[optimizer_name]}
        modules = [self.prepared[n] for n in self.trainable if any(id(p) in params for p in self.raw[n].parameters())]
        if len(modules) != 1:
            raise ValueError(f"with train.fsdp each optimizer must train exactly one module; {optimizer_name!r} trains {len(modules)}")
        return modules[0]

    def _find_checkpoint(self, resume: str | Path | None, ckpt_dir: Path, warn, note) -> tuple[Path, dict] | None:
        existing = ckpt.list_checkpoints(ckpt_dir)
        if resume is None:
            if existing:
                raise FileExistsError(
                    f"{self.run_dir} already holds checkpoints (newest {existing[-1][1].name}); pass --resume auto to"
                    " continue that run, or --out for a new run folder"
                )
            return None
        if str(resume) == "auto":
            if not existing:
                note(f"no checkpoint in {ckpt_dir} yet; starting from step 0")
                return None
            found = ckpt.load_latest(ckpt_dir, warn)
            if found is None:
                raise ValueError(f"every checkpoint in {ckpt_dir} is corrupt; nothing to resume from (start a new run with another --out)")
            return found
        path = Path(resume)
        if not path.exists():
            raise FileNotFoundError(f"--resume {path}: no such checkpoint file or run folder")
        return self._checkpoint_at(path, warn)

    @staticmethod
    def _checkpoint_at(path: Path, warn) -> tuple[Path, dict]:
        """A checkpoint file, or the newest usable checkpoint of a run folder (or of a checkpoints folder)."""
        if path.is_dir():
            directory = path / "checkpoints" if (path / "checkpoints").is_dir() else path
            found = ckpt.load_latest(directory, warn)
            if found is None:
                raise FileNotFoundError(f"no usable checkpoint in {directory}")
            return found
        try:
            return path, ckpt.load_checkpoint(path)
        except ckpt.CorruptCheckpoint as error:
            raise ValueError(f"checkpoint {path} {error}") from None

    def _load_state(self, state: dict, path: Path, messages: list[str]) -> dict | None:
        """Restore everything but the RNG from a checkpoint; return this process's RNG state (or None)."""
        t = self.train_config
        old, new = flatten(state["config"]), flatten(self.config.to_dict())
        for name in self.trainable:
            if name not in state["modules"]:
                raise KeyError(f"checkpoint {path} has no weights for module {name!r} (it has {sorted(state['modules'])})")
            try:
                self._load_module_state(name, state["modules"][name])
            except RuntimeError as error:  # torch's message lists every tensor that does not fit: one line instead
                shape = [f"{k} {old.get(k, '(absent)')} -> {new.get(k, '(absent)')}" for k in sorted(set(old) | set(new))
                         if k.startswith("model.") and old.get(k) != new.get(k)]
                why = f"the model config changed since it was saved ({'; '.join(shape)})" if shape else str(error).splitlines()[0]
                raise ValueError(f"checkpoint {path}: its {name} weights do not fit this run's model: {why}; resume with the "
                                 f"config it was trained with ({self.run_dir / 'config.yaml'}) or give --out a new run folder") from None
        if self.ema is not None:
            if state["ema"]:
                self.ema.load_state_dict(state["ema"])
            else:
                messages.append("the checkpoint has no EMA weights; EMA starts from the current weights")
                self.ema.reset()
        for name in self.optimizers:
            self._load_optimizer_state(name, state["optimizers"][name])
            self.schedulers[name].load_state_dict(state["schedulers"][name])
        self._apply_configured_hyperparameters()
        if self.accelerator.scaler is not None and state["scaler"] is not None:
            self.accelerator.scaler.load_state_dict(state["scaler"])
        self.step = state["step"]
        self.saved_step = self.step
        self.position = DataPosition(**state["data"])

        changes = []
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                changes.append(f"{key} {old.get(key, '(absent)')} -> {new.get(key, '(absent)')}")
        if state["num_processes"] != self.num_processes:
            changes.append(f"processes {state['num_processes']} -> {self.num_processes}")
        messages.append(f"resuming from {path} at step {self.step}")
        if changes:
            messages.append("changed since that checkpoint: " + "; ".join(changes))
        if self.step > t.max_steps:
            raise ValueError(f"the checkpoint is at step {self.step}, beyond train.max_steps={t.max_steps}")
        if len(state["rng"]) != self.num_processes:
            messages.append(f"RNG states were saved by {len(state['rng'])} process(es); reseeding each process from (seed, step)")
            self._seed_processes(offset=self.step)
            return None
        return state["rng"][self.accelerator.process_index]

    def _init_weights(self, source: str, messages: list[str]) -> None:
        """Fine-tuning: load weights into a fresh run (train.init_from); the optimizer and schedule start fresh."""
        path = Path(source)
        if path.is_file() or (path / "checkpoints").is_dir():
            try:
                path, state = self._checkpoint_at(path, messages.append)
            except (FileNotFoundError, ValueError) as error:
                raise type(error)(f"train.init_from: {error}") from None
            # the EMA weights where there are some (they are the better model), the raw ones otherwise
            weights = {**state["modules"], **state.get("ema", {})}
            missing = [n for n in self.raw if n not in weights]
            if missing:
                raise ValueError(f"train.init_from: {path} has no weights for {', '.join(missing)} (it has {', '.join(sorted(weights))})")
        else:
            from safetensors.torch import load_file

            from kinema.hub import open_model

            try:
                folder = open_model(source)
            except (FileNotFoundError, ValueError) as error:
                raise type(error)(f"train.init_from: {error}") from None
            path, weights = folder.path, {}
            # each component goes to this run's module of the same class
            for component in folder.index.components:
                cls = folder.component_class(component)
                names = [n for n, m in self.raw.items() if type(m).__name__ == cls and n not in weights]
                if names:
                    weights[names[0]] = load_file(str(folder.component(component) / "model.safetensors"))
            if not weights:
                held = ", ".join(folder.component_class(c) or "model of unknown class" for c in folder.index.components)
                kinds = ", ".join(f"{n} ({type(m).__name__})" for n, m in self.raw.items())
                raise ValueError(f"train.init_from: {folder.path} holds {held or 'no network'}; this run trains {kinds}")
            # what the export wrote for fine-tuning (a GAN's discriminator, float16; loading casts it)
            for name in self.raw:
                extra = folder.fine_tuning_file(name)
                if name not in weights and extra is not None and extra.is_file():
                    weights[name] = load_file(str(extra))
        for name, state_dict in weights.items():
            if name not in self.raw:
                continue
            try:
                fresh_keys = self._load_module_state(name, state_dict, strict=not self.config.train.init_partial)
            except RuntimeError as error:  # size mismatch, missing or unexpected keys
                first = str(error).strip().splitlines()
                raise ValueError(
                    f"train.init_from: the weights in {path} do not fit this config's {name}: {' '.join(first[1:3]) or first[0]}"
                ) from None
            if fresh_keys:
                messages.append(f"train.init_partial: {name} starts {len(fresh_keys)} tensors fresh: {', '.join(fresh_keys[:6])}" + (" ..." if len(fresh_keys) > 6 else ""))
        if self.ema is not None:
            self.ema.reset()
        loaded = sorted(n for n in weights if n in self.raw)
        fresh = sorted(set(self.raw) - set(loaded))
        messages.append(
            f"fine-tuning from {path}: loaded {', '.join(loaded)}" + (f"; {', '.join(fresh)} start(s) from scratch" if fresh else "")
            + "; optimizer and LR schedule start fresh"
        )

    def _apply_configured_hyperparameters(self) -> None:
        """After loading optimizer state, use this config's lr / betas / weight decay (the same values when unchanged)."""
        for name, optimizer in self.optimizers.items():
            scheduler = self.schedulers[name]
            for group, hparams in zip(optimizer.param_groups, self.group_hparams[name]):
                group.update({k: v for k, v in hparams.items() if k not in ("lr", "initial_lr")})
                group["initial_lr"] = hparams["lr"]
            scheduler.base_lrs = [h["lr"] for h in self.group_hparams[name]]
            for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
                group["lr"] = base * factor(scheduler.last_epoch)
            scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]

    def _restore_rng(self, rng_state: dict) -> None:
        ckpt.restore_rng(rng_state)

    def _seed_processes(self, offset: int) -> None:
        """Each process its own stream for dropout, noise, ..., distinct from the one that drew the initial weights."""
        rank = self.accelerator.process_index
        set_seed((self.train_config.seed + 1_000_003 * (1 + rank) + offset) % 2**32)

    def _set_aside_newer(self, ckpt_dir: Path, step: int) -> None:
        """Checkpoints newer than the one resumed from (corrupt, or from an abandoned future) would collide later."""
        for newer_step, path in ckpt.list_checkpoints(ckpt_dir):
            if newer_step > step:
                aside = path.with_name(path.name + ".set-aside")
                path.replace(aside)
                self.logger.message(f"moved {path.name} aside to {aside.name}: the run continues from step {step}")

    # ------------------------------------------------------------------ setup checks, teardown

    @staticmethod
    def _check_hardware(t: Any) -> None:
        has_gpu = torch.cuda.is_available() and not t.cpu
        if t.mixed_precision == "fp16" and not has_gpu:
            raise ConfigError("train.mixed_precision 'fp16' needs a GPU (autocast with a grad scaler); use 'bf16' on a CPU")
        if t.fsdp and not has_gpu:
            raise ConfigError("train.fsdp needs GPUs launched with accelerate launch; on a CPU leave it false")

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()
        if self.num_processes == 1:
            # lets one Python process run several trainings with different settings (tests, notebooks)
            from accelerate.state import AcceleratorState, GradientState

            AcceleratorState._reset_state(reset_partial_state=True)
            GradientState._reset_state()


def _single_process_from_cpu_launch(num_processes: int) -> bool:
    """Accelerate's simple launcher sets MASTER_ADDR only when asked for several processes, then starts one."""
    env = os.environ
    mpi = any(k in env for k in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"))
    return num_processes == 1 and env.get("ACCELERATE_USE_CPU") == "True" and "MASTER_ADDR" in env and "WORLD_SIZE" not in env and not mpi


def _full_state_options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch
