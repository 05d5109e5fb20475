"""Two CPU processes under ``accelerate launch`` (gloo) train what one process trains, and only
rank 0 writes (issue 22, part 1).

One launch of the shipped ``configs/ddp.yaml`` with ``--num_processes 2`` runs
``ddp_steps.main``: fine-tune (recipe batch 8: 4 records a process), retrain by the recipe
without a person's 8 records, npo on those records for 6 steps. The same program then runs in
this process. The batch sizes are global, the sampler's permutation is seeded the same in both
runs and the record counts split into whole global batches, so both runs take the same
optimiser steps on the same records; what differs is the order of floating-point sums (two
per-process means averaged by an all-reduce instead of one mean, each process padding its own
half-batch), so the weights agree to rounding, not bitwise.

Tolerance (``REL_TOL`` = 1e-3): the distance between the two results (L2 over every weight)
relative to how far training moved the weights. Measured on 2 cores: 5.3e-5 for the 120-step
fine-tune, 6.0e-5 for the 90-step retraining, 1.7e-4 for 6 npo steps (Adam divides each
coordinate by its own gradient scale, so rounding differences on coordinates with nearly no
gradient become steps of up to the learning rate). A real mismatch lands above it: the npo
retain term taken as each process's own token mean measured 4.2e-3; dropout left on (each
process draws its own masks) moved single weights by 0.34.

The launch then runs the workflow side as ``forget process`` runs under a launch
(``led_by_rank_zero``): rank 0 alone records a request in a ledger and saves, rank 1 only
joins the npo run. Every process reports its file-system writes under the work directory
(a Python audit hook: opens for writing, mkdir, rename, remove, SQLite connections): rank 1's
list must be empty.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.models import ddp_steps
from tests.models.tiny_bases import tiny_gpt2

ROOT = Path(__file__).resolve().parents[2]
REL_TOL = 1e-3


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny GPT-2-architecture base with a BPE tokenizer trained on the records; dropout
    off: each process draws its own dropout masks for its half-batch, so with dropout two
    processes equal one only in distribution (the suite's own models have none)."""
    return tiny_gpt2([r["body"] for r in ddp_steps.rows()],
                     tmp_path_factory.mktemp("ddp-base") / "gpt2-tiny", n_positions=64,
                     dropout=0.0)


@pytest.fixture(scope="module")
def runs(base, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("ddp")
    data = ddp_steps.write_data(root / "tickets.jsonl")
    launched = root / "launched"
    launched.mkdir()
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "configs" / "ddp.yaml"), "--num_processes", "2", "--main_process_port",
           "0", "--num_cpu_threads_per_process", "1", "--quiet",
           str(Path(ddp_steps.__file__)), str(launched), str(data), str(base)]
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = {}
    for line in proc.stdout.splitlines():
        if line.startswith("DDP-RESULT "):
            got = json.loads(line[len("DDP-RESULT "):])
            ranks[got["rank"]] = got
    single = root / "single"
    single.mkdir()
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # as each launched process
    try:  # npo starts from the launched fine-tune, so it compares npo alone
        one = ddp_steps.run_all(single, data, base, start=launched / "ft")
    finally:
        torch.set_num_threads(n)
    return {"launched": launched, "single": single, "ranks": ranks, "one": one}


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v.double() for k, v in load_file(model_dir / "model.safetensors").items()}


def _distance(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return sum(float(((a[k] - b[k]) ** 2).sum()) for k in a) ** 0.5


@pytest.mark.parametrize("name", ["ft", "retrained", "npo"])
def test_two_processes_train_what_one_process_trains(runs, base, name):
    launched, one = _weights(runs["launched"] / name), _weights(runs["single"] / name)
    start = _weights(base if name != "npo" else runs["launched"] / "ft")
    moved = _distance(one, start)  # how far training took the weights
    gap = _distance(launched, one) / moved
    assert gap < REL_TOL, f"{name}: |w_2 - w_1| / |w_1 - w_0| = {gap:.2e}"
    ranks, ref = runs["ranks"], runs["one"]
    assert sorted(ranks) == [0, 1] and ranks[0]["world_size"] == 2
    assert ranks[0][f"{name}_steps"] == ranks[1][f"{name}_steps"] == ref[f"{name}_steps"] > 0
    if name != "ft":  # tokens: each process counted its share; the sum is the whole
        assert ranks[0][f"{name}_tokens"] == ranks[1][f"{name}_tokens"] == ref[f"{name}_tokens"]


def test_only_rank_zero_writes_models_and_registry(runs):
    ranks, launched = runs["ranks"], runs["launched"]
    assert ranks[1]["writes"] == []
    assert any("model.safetensors" in w or "config.json" in w for w in ranks[0]["writes"])
    # every rank got rank 0's versions back
    for key in ("ft", "retrained", "npo"):
        assert ranks[0][key] == ranks[1][key]
    assert sorted(p.name for p in launched.iterdir()) == [
        "ft", "ledger.db", "npo", "npo-led", "registry", "retrained"]
    lines = (launched / "registry" / "models.jsonl").read_text().splitlines()
    assert [json.loads(x)["version"] for x in lines] == [ranks[0][k] for k in
                                                        ("ft", "retrained", "npo", "npo-led")]


def test_the_workflow_side_is_rank_zeros_and_training_is_joint(runs):
    """``led_by_rank_zero`` (``forget process``/``worker`` under a launch): rank 0 alone
    opens the ledger; rank 1 only joins the npo run, which trains what the SPMD npo trained."""
    from forget.ledger import Ledger

    ranks, launched = runs["ranks"], runs["launched"]
    assert "npo-led" not in ranks[1] and ranks[0]["events"] >= 1
    assert any("sqlite3.connect" in w for w in ranks[0]["writes"])  # the hook sees SQLite
    assert not any("sqlite3" in w for w in ranks[1]["writes"])
    with Ledger(launched / "ledger.db", create=False) as led:
        assert [r.request_id for r in led.list()] == ["req-ddp"]
        assert len(led.events("req-ddp")) == ranks[0]["events"]
        assert led.verify().ok
    assert _distance(_weights(launched / "npo-led"), _weights(launched / "npo")) == 0.0


@pytest.mark.parametrize(("world", "batch", "share"), [(1, 8, 8), (2, 8, 4), (4, 8, 2),
                                                        (3, 8, None), (16, 8, None)])
def test_batch_sizes_are_global_and_must_split(monkeypatch, world, batch, share):
    from forget._dist import per_device_batch
    from forget.errors import InvalidInputError

    monkeypatch.setenv("WORLD_SIZE", str(world))
    if share is not None:
        assert per_device_batch(batch) == share
    else:
        with pytest.raises(InvalidInputError, match=f"batch size {batch} does not split over "
                                                    f"{world} processes"):
            per_device_batch(batch)


@pytest.mark.parametrize("var", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
def test_a_sharded_parameter_launch_is_refused_before_training(monkeypatch, var):
    from forget._dist import per_device_batch
    from forget.errors import UnsupportedUnderLaunchError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv(var, "true")  # what accelerate launch sets for fsdp.yaml / zero3
    with pytest.raises(UnsupportedUnderLaunchError, match="configs/ddp.yaml"):
        per_device_batch(8)
    monkeypatch.setenv(var, "false")
    assert per_device_batch(8) == 4


def test_retain_partners_depend_on_item_and_epoch_not_on_read_order():
    from forget.core.trainer import PairedDataset

    forget, retain = [{"f": i} for i in range(16)], [{"r": j} for j in range(50)]
    a, b = PairedDataset(forget, retain, seed=3), PairedDataset(forget, retain, seed=3)
    order = list(range(16))
    first = {i: a[i]["retain"]["r"] for i in order}
    second = {i: b[i]["retain"]["r"] for i in reversed(order)}  # another process's order
    assert first == second
    b.epoch = 1  # a new epoch draws new partners
    assert {i: b[i]["retain"]["r"] for i in order} != first


def test_strong_is_refused_under_a_launch_before_anything_runs(monkeypatch):
    from forget._dist import led_by_rank_zero
    from forget.errors import UnsupportedUnderLaunchError

    ran = []
    command = led_by_rank_zero(lambda **kw: ran.append(kw))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(UnsupportedUnderLaunchError, match="--strong"):
        command(strong=True)
    assert ran == []
