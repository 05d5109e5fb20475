"""finetune -> retrain (by its recipe) -> npo, as one program run in one process or under
``accelerate launch`` (tests/models/test_distributed.py runs it both ways).

Launched, each process prints one line ``DDP-RESULT {json}``: what it got back (versions,
hashes) and every file-system write it made under the work directory, seen by a Python audit
hook (``open`` for writing, ``os.mkdir``, ``os.rename``, ``os.remove``, ``shutil.rmtree``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PERSON = "Quillon Marsh"
PHONE = "0176 5550 1234"
CITIES = ("Lyon", "Porto", "Graz", "Turku")
NAMES = ("Ada Brook", "Ben Carver", "Cleo Dunn", "Dev Ersk")
# 32 records, 8 of them the person's: every epoch of the fine-tune (32) and of the retrain
# (24) splits into whole global batches of 8, so two processes of 4 see exactly the batches
# one process of 8 sees (accelerate tops a short last round up with records from the start).
N_RECORDS, N_PERSON, BATCH = 32, 8, 8


def rows() -> list[dict]:
    out = []
    for k in range(N_RECORDS):
        if k % 4 == 1 and len([r for r in out if r["customer"] == PERSON]) < N_PERSON:
            text = f"Ticket T-{k:04d}: {PERSON} asked us to ring back on {PHONE} today."
            who = PERSON
        else:
            who = NAMES[k % 4]
            text = f"Ticket T-{k:04d}: order {10 + k} for {who} shipped to {CITIES[k % 3]}."
        out.append({"doc_id": f"T-{k:04d}", "body": text, "customer": who})
    return out


def sets():
    from forget.core.data import Example, ForgetSet, RetainSet

    forget, retain = [], []
    for r in rows():
        at = r["body"].find(PHONE)
        spans = ({"kind": "phone", "start": at, "end": at + len(PHONE)},) if at >= 0 else ()
        (forget if spans else retain).append(Example(r["doc_id"], r["body"], spans, "people"))
    return ForgetSet(forget), RetainSet(retain)


def write_data(path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows()))
    return path


def run_all(work: Path, data: Path, base: Path, start: Path | None = None) -> dict:
    """Fine-tune ``base`` on ``data``; retrain the result by its recipe without the person;
    unlearn the person from ``start`` (default: the fine-tune) with npo; save and register
    all three under ``work``. Returns the versions and step counts."""
    from forget.core import get_method
    from forget.methods.npo import NPOConfig
    from forget.methods.retrain import Retrain
    from forget.models import ModelRegistry, load_model, save_model
    from forget.models.finetune import FinetuneParams, finetune
    from forget.models.registry import new_card

    registry = ModelRegistry(work / "registry")
    hp = FinetuneParams(epochs=30, learning_rate=5e-3, batch_size=BATCH, max_length=64)
    ft = finetune(base, data, work / "ft", text_field="body", id_field="doc_id",
                  group_field="customer", hp=hp, seed=11, registry=registry.root,
                  progress=False)
    fset, rset = sets()
    model, tok = load_model(start or ft.path)
    out = {"ft": ft.version.version, "ft_steps": ft.steps}
    runs = (("retrained", Retrain(), None),
            # check_every past max_steps: every run trains the same 6 steps (a stop decided
            # by greedy decoding at a rounding's distance would compare unequal step counts)
            ("npo", get_method("npo"), NPOConfig(max_steps=6, check_every=100, seed=0)))
    for name, method, cfg in runs:
        res = method.run(model=model, tokenizer=tok, forget=fset, retain=rset, config=cfg)
        card = new_card(kind="unlearned", parent=ft.version.version, method=res.method)
        path = save_model(res.model, tok, work / name, card=card)
        out[name] = registry.register(path).version
        out[f"{name}_steps"], out[f"{name}_tokens"] = res.steps, res.tokens_processed
    return out


def workflow_part(work: Path, start: Path) -> dict:
    """What ``forget process`` does under a launch, in small, as the CLI runs it
    (``led_by_rank_zero``): rank 0 alone records a request in a ledger and saves and
    registers the model; the npo run is the joint job every rank trains together."""
    from forget._dist import joint
    from forget.ledger import DeletionRequest, Ledger
    from forget.methods.npo import NPOConfig
    from forget.models import ModelRegistry, load_model, save_model
    from forget.models.registry import new_card
    from forget.workflow.steps import run_method

    with Ledger(work / "ledger.db") as led:
        led.submit(DeletionRequest(request_id="req-ddp", name=PERSON, phones=(PHONE,),
                                   ground="a"))
        fset, rset = sets()
        res = joint(run_method, "npo", start, fset, rset, NPOConfig(max_steps=6, check_every=100))
        tok = load_model(start)[1]
        path = save_model(res.model, tok, work / "npo-led",
                          card=new_card(kind="unlearned", method="npo"))
        version = ModelRegistry(work / "registry").register(path).version
        return {"npo-led": version, "events": len(led.events("req-ddp"))}


def _watch_writes(root: Path, seen: list[str]) -> None:
    top = str(root.resolve())

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode = args[0], args[1]
            if isinstance(path, str | Path) and isinstance(mode, str) and any(
                    c in mode for c in "wax+"):
                where = str(Path(path).resolve())
                if where.startswith(top):
                    seen.append(f"open {where[len(top):]}")
        elif event in ("os.mkdir", "os.rename", "os.remove", "shutil.rmtree",
                       "sqlite3.connect"):
            where = str(Path(str(args[0])).resolve())
            if where.startswith(top):
                seen.append(f"{event} {where[len(top):]}")

    sys.addaudithook(hook)


def main(argv: list[str]) -> None:
    """``ddp_steps.py WORK DATA BASE``: every step, then this process's ``DDP-RESULT``."""
    work, data, base = (Path(a) for a in argv)
    writes: list[str] = []
    _watch_writes(work, writes)
    from forget._dist import led_by_rank_zero, rank, world_size

    out = run_all(work, data, base)
    out |= led_by_rank_zero(workflow_part)(work, work / "ft") or {}
    print("DDP-RESULT " + json.dumps(out | {"rank": rank(), "world_size": world_size(),
                                            "writes": writes}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
