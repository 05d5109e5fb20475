"""Writes notebooks/01_deletion_request_walkthrough.ipynb (kept as code so diffs stay readable)."""

from pathlib import Path

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("# A deletion request, from receipt to certificate\n\n"
       "This notebook is written for a legal reviewer or data-protection officer. It follows "
       "one erasure request (GDPR Art. 17) against a language model through every step the "
       "suite takes, and shows the evidence for each. The person is fictitious: the data set "
       "and the small model are built by the suite itself.\n\n"
       "Nothing here shows the person's identifiers: the ledger never stores them in clear, "
       "and after completion they cannot be recovered at all."),
    code("import json, os, tempfile\nfrom pathlib import Path\n\n"
         "from forget._env import configure_offline\nconfigure_offline()\n"
         "from forget.corpus import GenerateConfig, generate, load_corpus\n"
         "from forget.models.build import train_model\n\n"
         "work = Path(tempfile.mkdtemp(prefix='walkthrough-'))\n"
         "data = Path(os.environ.get('FORGET_NB_DATA', work / 'data'))\n"
         "model = Path(os.environ.get('FORGET_NB_MODEL', work / 'model'))\n"
         "if not (data / 'subjects.jsonl').exists():\n"
         "    generate(data, GenerateConfig(subjects=12, seed=7))\n"
         "if not (model / 'config.json').exists():\n"
         "    train_model(data, model, size='tiny', registry=work / 'registry', progress=False)\n"
         "corpus = load_corpus(data)\nprint('training data:', len(corpus.people), 'records about',"
         " len(corpus.subjects), 'fictitious people')"),
    md("## 1. What was asked\n\nA person asks the organisation to erase their data. The "
       "request enters the **ledger**, an append-only record in which every change is chained "
       "to the previous one by a cryptographic hash, so no entry can be altered or removed "
       "without detection. The person's identifiers are stored only as keyed hashes (for "
       "lookup) and encrypted under a key that belongs to this request alone."),
    code("from forget.ledger import DeletionRequest, Ledger\n\n"
         "person = corpus.subject(corpus.subject_ids('train')[0])['identifiers']\n"
         "ledger = Ledger(work / 'ledger.db')\n"
         "record = ledger.submit(DeletionRequest(request_id='walkthrough-1', name=person['name'],\n"
         "    emails=(person['email'],), phones=(person['phone'],), ground='a', channel='web form'))\n"
         "del person  # from here on, only the ledger holds the identifiers (encrypted)\n"
         "print('state:', record.state.value, '| legal ground: Art.', record.ground,\n"
         "      '| identifiers held:', record.identifier_counts, '| due:', record.due_at.date())"),
    md("The deadline is one calendar month from receipt (Art. 12(3)); the clock is paused "
       "until the requester's identity is verified. Here we record that verification."),
    code("print(ledger.verify_identity('walkthrough-1', method='email_link').state.value)"),
    md("## 2. What was done\n\nThe workflow now (a) finds every training record that mentions "
       "the person, (b) removes their influence from the model, (c) audits the result with "
       "attacks that would reveal the data if it were still there, (d) adds the person to an "
       "output filter, and (e) issues a signed certificate. Each step is written to the "
       "ledger before it starts and when it ends."),
    code("from audits import AuditConfig\nfrom forget.workflow import process_request\n\n"
         "# The thresholds are the defaults, fixed before the run; fewer bootstrap and sampling\n"
         "# rounds keep this walkthrough quick on a laptop.\n"
         "import os\n"
         "# FORGET_NB_QUICK=1 (the tests' setting): one MIA attack, no neighbours, no character\n"
         "# ranking, no robustness attacks (each is tested on its own), and one attempt per\n"
         "# method before retraining; unset, all run.\n"
         "quick = os.environ.get('FORGET_NB_QUICK') == '1'\n"
         "QUICK = dict(mia_verdict_attacks=('loss',), relearn_other_steps=0, char_rank_kinds=(),\n"
         "             neighbour_count=0, relearn_steps=0, quantize=False, paraphrase=False)\n"
         "config = AuditConfig(bootstrap=300, samples=4, relearn_steps=5)\n"
         "if quick:\n"
         "    import dataclasses\n"
         "    config = dataclasses.replace(config, **QUICK)\n"
         "outcome = process_request(ledger, 'walkthrough-1', model=model, data=data, "
         "out=work / 'out',\n    registry=work / 'registry', use_presidio=False, "
         "audit_config=config, max_attempts=1 if quick else 2,\n"
         "    progress=lambda step, msg: print(f'{step:>9}: {msg}'))\n"
         "print('\\nresult:', outcome.status)"),
    code("for e in ledger.events('walkthrough-1'):\n"
         "    print(f'{e.seq:>4}  {e.kind:<20} {json.dumps(e.data, default=str)[:90]}')"),
    md("Every line above is a ledger event. Events carry record identifiers, hashes and "
       "figures, never the person's name, e-mail or phone number."),
    md("## 3. What the evidence shows\n\nThe audit compares the person's records with "
       "*twins*: the same sentences with every identifier replaced by an invented one. A "
       "model that still holds the person's data treats the real records differently from "
       "the twins. The thresholds were fixed before the audit ran. As a **control**, the same "
       "audit runs on the original model: it must detect the person there, otherwise the "
       "test would have had no power."),
    code("report = json.loads(Path(outcome.report).with_suffix('.json').read_text())\n"
         "print('verdict:', report['verdict'])\nprint()\nprint(report['answer'])"),
    code("for c in report['checks']:\n"
         "    print(f\"{c['name']:<24} {'pass' if c['passed'] else 'FAIL' if c['passed'] is not "
         "None else 'n/a':<5} value={c.get('value')} threshold={c.get('threshold')}\")\n"
         "print('\\ncontrol (original model):', report['controls']['original']['status'])"),
    md("The full report, with plots, is a single HTML page next to the JSON. The attempts "
       "show which method was used; when a fast method fails the audit, the workflow tries "
       "harder and finally retrains the model without the person's records."),
    code("for a in outcome.attempts:\n    print(a)\nprint('report:', outcome.report)"),
    md("## 4. The certificate\n\nThe certificate is signed with the ledger's key. It names "
       "the request (not the person), the model before and after (by the hash of its "
       "weights), the method, the audit's verdict and the hash of its report, and the "
       "position of the audit in the ledger's hash chain. Anyone holding the ledger can check "
       "all of it."),
    code("from forget import certificate\n\ncert = certificate.Certificate.read(outcome.certificate)\n"
         "check = certificate.verify(cert, ledger=ledger)\nprint(check.message)\n"
         "print('model before:', cert.model_before['sha256'][:16], '| after:', "
         "cert.model_after['sha256'][:16])\nprint('ledger intact:', ledger.verify().ok)"),
    md("After completion the request's encryption key was destroyed (*crypto-shredding*): "
       "the ledger still proves what was done, but the identifiers can no longer be read."),
    code("from forget.ledger import ShreddedError\n\ntry:\n    ledger.identifiers('walkthrough-1')\n"
         "except ShreddedError as e:\n    print('identifiers unreadable:', e)"),
    md("## 5. What the method cannot promise\n\n"
       "- **Retraining** without the person's records is exact: the result is the model that "
       "would exist had the data never been collected. It is also the most expensive.\n"
       "- **Gradient-based unlearning** (npo and relatives) is *empirical*: its only evidence "
       "is the audit. Our audits show that stopping the model from *saying* an identifier is "
       "not enough; membership inference and a few steps of relearning often still find it, "
       "which is why the workflow falls back to retraining when the audit fails.\n"
       "- **An audit can show the presence of data, not prove its absence.** A pass means "
       "these attacks, with these thresholds, could not tell the person's records from "
       "invented ones; stronger attacks may exist. The report lists each measure's limits.\n"
       "- **The output filter** is a second line of defence: it blocks the identifiers if a "
       "model ever produces them, but it does not remove anything from the model."),
    code("print(cert.guarantee)\nprint()\nfor name, text in list(report['limits'].items())[:4]:\n"
         "    print(f'- {name}: {text}')"),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3",
                                                                 "display_name": "Python 3",
                                                                 "language": "python"}})
nbf.write(nb, Path(__file__).with_name("01_deletion_request_walkthrough.ipynb"))
