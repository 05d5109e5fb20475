"""Worker process bodies for the many-workers test (importable by forked children)."""

from __future__ import annotations

import os
import time
from typing import Any

# Thresholds fixed before the run, light enough for 24 requests on 2 cores. This test is about
# workers and the ledger, not about how well a fast method forgets (the calibrated audit fails
# grad_diff on exposure for every subject here, as it does every fast method on the tiny model:
# see tests/audits and bench/): no sampling, no robustness attacks, no exposure ranking; MIA
# is measured with the twins it needs (it must be evaluated) but the upper end of its assumed
# band is 1.0, so verbatim extraction and the relapse check decide. One MIA attack (79 twin
# identities instead of 159: the attacks' power is tested in tests/audits).
# All 24 requests are on one model line, so each unlearns from the model the previous ones
# left; a fast method's utility loss then compounds (retain perplexity 2-35x the head's after a
# few requests on the memorising tiny model), which is a finding about fast methods, not
# about concurrency: this test's audit does not judge utility.
LIGHT_AUDIT = {"bootstrap": 50, "samples": 0, "relearn_steps": 0, "quantize": False,
               "paraphrase": False, "mia_auc_upper_max": 1.0, "max_perplexity_ratio": 1e6,
               "exposure_kinds": (), "required_checks": ("extraction", "mia"),
               "char_rank_kinds": (), "relearn_other_steps": 0, "neighbour_count": 0,
               "mia_verdict_attacks": ("loss",)}
METHOD = "grad_diff"
METHOD_CONFIG = {"max_steps": 20}


def _workflow(root: str, lease: float) -> dict[str, Any]:
    from audits import AuditConfig

    return {"method": METHOD, "method_config": METHOD_CONFIG, "max_attempts": 1,
            "allow_retrain": False, "use_presidio": False, "lease_seconds": lease,
            "audit_config": AuditConfig(**LIGHT_AUDIT), "registry": f"{root}/registry"}


def _all_done(led) -> bool:
    return all(r.state.value in ("completed", "rejected") or
               (r.state.value == "failed" and not r.retryable) for r in led.list())


def work(url: str, key_dir: str, worker_id: str, model: str, data: str, root: str,
         lease: float, deadline_s: float) -> None:
    """Claim and process until every request is finished (or the deadline passes)."""
    from forget.ledger import Ledger
    from forget.worker import RetryPolicy, run_worker

    end = time.monotonic() + deadline_s
    with Ledger(url, key_dir=key_dir, create=False) as led:
        while not _all_done(led) and time.monotonic() < end:
            run_worker(led, model=model, data=data, out=f"{root}/out", worker_id=worker_id,
                       once=True, retry=RetryPolicy(3, 1.0), **_workflow(root, lease))
            time.sleep(0.3)  # a killed worker's lease may still be live: poll again


def doomed(url: str, key_dir: str, model: str, data: str, root: str, lease: float,
           started: Any) -> None:
    """Claim requests like any worker, but hang once unlearning has started, until killed."""
    from forget.ledger import Ledger
    from forget.worker import run_worker

    def say(step: str, msg: str) -> None:
        if step == "unlearn":  # recorded "unlearn-N started"; the model is not saved yet
            started.put(os.getpid())
            time.sleep(600)

    with Ledger(url, key_dir=key_dir, create=False) as led:
        run_worker(led, model=model, data=data, out=f"{root}/out", worker_id="w-doomed",
                   once=True, say=say, **_workflow(root, lease))
