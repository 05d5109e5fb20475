"""Running under ``accelerate launch`` / ``torchrun``: who writes, and how batches split.

Every training path of the suite but ``dp_retrain`` goes through the HF ``Trainer`` (or a
subclass: the ``UnlearnTrainer``, trl's ``DPOTrainer``), so under a multi-process launch the
same code runs in every process (SPMD) and the Trainer does data parallelism by itself
(``dp_retrain``'s own Opacus loop then runs whole, identically seeded, in every process). What the Trainer does
not know about is the suite's own output: model directories, the model registry, JSON
summaries. Those are written by rank 0 alone (:func:`on_main`), and the other ranks receive
rank 0's result (or its exception) by a broadcast, which is also the point where they wait for
it: every rank goes on with the same values, and nothing is ever written twice.

Batch sizes in the suite's configs and recipes are *global* (records per optimiser step), so a
recipe means the same training whatever the number of processes: each process takes
``batch_size / world_size`` records (:func:`per_device_batch`). With the Trainer's seeded
sampler every process draws the same permutation and takes every ``world_size``-th chunk of
it, so one optimiser step sees the same records as the single-process step.

The workflow commands (``forget process``, ``forget worker``) are not SPMD: rank 0 runs them
alone and the other ranks only join each training run (:func:`led_by_rank_zero`, below).

Outside a launch (``WORLD_SIZE`` unset or 1) every function here is a no-op: rank 0 of 1.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from forget.errors import InvalidInputError

T = TypeVar("T")


_solo = False  # rank 0 running the workflow alone while the others wait (``leading``)


def world_size() -> int:
    """Processes in the launch (``torch.distributed`` when initialised, else ``WORLD_SIZE``,
    which torchrun and ``accelerate launch`` set before the group exists); 1 while rank 0
    runs alone under :func:`leading` (its writes then need no one's agreement)."""
    import torch.distributed as dist

    if _solo:
        return 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's global rank (0 outside a launch)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


# What ``accelerate launch`` sets in each process for a sharded-parameter config.
SHARDED_LAUNCH = {"ACCELERATE_USE_FSDP": "FSDP", "ACCELERATE_USE_DEEPSPEED": "DeepSpeed"}


def check_unsharded_launch() -> None:
    """Refuse a launch that shards parameters (FSDP, DeepSpeed ZeRO): rank 0 saves the model
    alone and nothing gathers the shards first, so the saved model would not be the trained
    one. Refused before training, not discovered after it."""
    from forget.errors import UnsupportedUnderLaunchError

    for var, name in SHARDED_LAUNCH.items():
        if os.environ.get(var, "").lower() in ("1", "true", "yes"):
            raise UnsupportedUnderLaunchError(
                f"a {name} launch shards the parameters and the suite does not gather them "
                "before rank 0 saves yet; launch with configs/ddp.yaml (see configs/README.md)")


def per_device_batch(batch_size: int) -> int:
    """The per-process share of a global ``batch_size`` (``InvalidInputError`` when it does
    not divide: the processes would otherwise train on a different batch than the recipe).
    Every training path asks for it before it trains: a sharded-parameter launch is refused
    here (:func:`check_unsharded_launch`)."""
    check_unsharded_launch()
    n = world_size()
    if batch_size % n:
        raise InvalidInputError(
            f"batch size {batch_size} does not split over {n} processes; launch a number of "
            f"processes that divides it (or choose a batch size that is a multiple of {n})")
    return batch_size // n


def _group() -> Any:
    """``torch.distributed`` with its process group up (accelerate's ``PartialState`` starts
    it the way the Trainer would: gloo on CPU, nccl on CUDA)."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available())
    return dist


def on_main(fn: Callable[[], T]) -> T:
    """``fn()`` run by rank 0 alone; every rank returns its result, or raises its exception.

    Every rank must call this at the same point (as SPMD code does). The result travels by
    ``broadcast_object_list`` (pickled): keep it small (paths, cards, versions), never a model.
    """
    if world_size() == 1:
        return fn()
    dist = _group()
    box: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            box[0] = ("ok", fn())
        except BaseException as e:  # noqa: BLE001 (re-raised on every rank below)
            box[0] = ("error", e)
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise value
    return value


def same_on_every_rank(value: T) -> T:
    """Rank 0's ``value`` on every rank (a decision all ranks must take together)."""
    if world_size() == 1:
        return value
    box = [value]
    _group().broadcast_object_list(box, src=0)
    return box[0]


def sum_over_ranks(value: int) -> int:
    """The sum of an integer count over every rank (tokens each process trained on)."""
    if world_size() == 1:
        return value
    import torch

    dist = _group()
    t = torch.tensor([value], dtype=torch.long)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return int(t.item())


def token_share(count: Any) -> Any:
    """``count * world_size / (count summed over ranks)``: the factor that turns this process's
    token mean into its share of the token mean over the whole launch's batch (DDP averages the
    processes' gradients, so the shares' average is the global token mean). ``count`` is a
    0-d tensor of this process's selected tokens; 1.0 outside a launch."""
    n = world_size()
    if n == 1:
        return 1.0
    dist = _group()
    total = count.detach().float().reshape(1).clone()
    if dist.get_backend() == "nccl":
        total = total.cuda()
    dist.all_reduce(total)
    return count.float() * n / total.to(count.device).clamp_min(1)[0]


# -- the workflow under a launch: rank 0 leads, the others join each training run ------------
# ``forget process`` and ``forget worker`` talk to the ledger, audit, certify and write
# reports: one process does that (rank 0). The other ranks ``follow``: they wait for rank 0 to
# hand them a training job (a module-level function and its arguments, sent by broadcast), run
# it with rank 0 as SPMD code (the Trainer's DDP), and wait again, until rank 0 says it is done.
@contextlib.contextmanager
def leading() -> Iterator[None]:
    """Rank 0 runs the block alone (``world_size()`` is 1 in it) except for :func:`joint`
    jobs; at its end, whatever happened, the followers are released."""
    global _solo
    if world_size() == 1:
        yield
        return
    _group()
    _solo = True
    try:
        yield
    finally:
        _solo = False
        same_on_every_rank(None)  # the followers' loop ends


def is_leading() -> bool:
    """Whether rank 0 is running alone inside :func:`leading` (training must be a joint job)."""
    return _solo


def check_can_train(what: str, *, solo: bool = False) -> None:
    """Refuse, before it starts, a training run that rank 0 would begin alone inside
    :func:`leading` (the Trainer's DDP would wait for ranks that wait for rank 0); ``solo``:
    refuse as if inside it (a command about to lead)."""
    if _solo or solo:
        from forget.errors import UnsupportedUnderLaunchError

        raise UnsupportedUnderLaunchError(
            f"{what} would train on rank 0 alone under a multi-process launch; run this "
            "request without accelerate launch (only the unlearning step is distributed)")


def led_by_rank_zero(command: Callable[..., T]) -> Callable[..., T | None]:
    """A CLI command that rank 0 runs (ledger, audits, reports) while the other ranks of a
    launch only join its training runs (:func:`joint`); as it was outside a launch."""
    import functools

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> T | None:
        if world_size() == 1:
            return command(*args, **kwargs)
        if kwargs.get("strong"):  # its shadow models would train on rank 0 alone
            check_can_train("--strong (shadow models)", solo=True)
        if not is_main_process():
            follow()
            return None
        with leading():
            return command(*args, **kwargs)

    return run


def joint(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` run by every rank together (inside :func:`leading`: the
    followers get the call by broadcast; elsewhere: as called). ``fn`` must be a module-level
    function and its arguments picklable; only rank 0's result is returned."""
    global _solo
    if not _solo:
        return fn(*args, **kwargs)
    _solo = False
    try:
        same_on_every_rank((fn.__module__, fn.__qualname__, args, kwargs))
        return fn(*args, **kwargs)
    finally:
        _solo = True


def follow() -> None:
    """The other ranks' side of :func:`leading`: run each job rank 0 hands out, until it
    releases them."""
    import importlib

    while True:
        job = same_on_every_rank(None)
        if job is None:
            return
        module, name, args, kwargs = job
        getattr(importlib.import_module(module), name)(*args, **kwargs)
