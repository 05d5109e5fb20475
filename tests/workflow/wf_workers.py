"""Worker process bodies for the many-workers test (importable by forked children)."""

from __future__ import annotations

import os
import time
from typing import Any

# Thresholds fixed before the run, light enough for 24 requests on 2 cores: no sampling, no
# robustness attacks, 19 exposure alternatives; MIA is measured (it must be evaluated) but
# with one twin per record it has no power, so its threshold is 1.0 and extraction and
# exposure decide.
LIGHT_AUDIT = {"bootstrap": 50, "samples": 0, "relearn_steps": 0, "quantize": False,
               "paraphrase": False, "exposure_alternatives": 19, "twins_per_record": 1,
               "mia_auc_upper_max": 1.0}
METHOD = "gradient_ascent"
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
