"""Writes notebooks/02_reading_an_audit_report.ipynb (kept as code so diffs stay readable)."""

from pathlib import Path

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("# Reading an audit report\n\n"
       "For a data-protection officer or lawyer who receives the audit report attached to a "
       "deletion certificate. It runs the same audit on three models and explains each "
       "number: a model that still holds the person's data (the audit must **fail** it), a "
       "model retrained without that data (it must **pass**), and an audit without the "
       "control that shows the test had power (**inconclusive**). The people are fictitious "
       "and the model is the suite's own small one; identifiers never appear in clear."),
    code("import json, os, tempfile\nfrom pathlib import Path\n\n"
         "from forget._env import configure_offline\nconfigure_offline()\n"
         "from forget.corpus import GenerateConfig, generate, load_corpus\n"
         "from forget.models import load_model\nfrom forget.models.build import train_model\n\n"
         "work = Path(tempfile.mkdtemp(prefix='audit-report-'))\n"
         "data = Path(os.environ.get('FORGET_NB_DATA', work / 'data'))\n"
         "model_dir = Path(os.environ.get('FORGET_NB_MODEL', work / 'model'))\n"
         "if not (data / 'subjects.jsonl').exists():\n"
         "    generate(data, GenerateConfig(subjects=12, seed=7))\n"
         "if not (model_dir / 'config.json').exists():\n"
         "    train_model(data, model_dir, size='tiny', registry=work / 'registry', progress=False)\n"
         "corpus = load_corpus(data)\n"
         "subject = os.environ.get('FORGET_NB_SUBJECT', corpus.subject_ids('train')[0])\n"
         "retrained_dir = Path(os.environ.get('FORGET_NB_RETRAINED', work / 'retrained'))\n"
         "if not (retrained_dir / 'config.json').exists():\n"
         "    train_model(data, retrained_dir, size='tiny', exclude_subjects=[subject],\n"
         "                registry=work / 'registry', progress=False)\n"
         "original, retrained = load_model(model_dir), load_model(retrained_dir)\n"
         "print('subject (pseudonymous id):', subject, '| records about them:',\n"
         "      len(corpus.records_of(subject)))"),
    md("## The audit's inputs\n\n"
       "- **Members**: the person's own training records.\n"
       "- **Twins**: the same sentences with every identifier replaced by an invented one of "
       "the same format. A model that never saw the person should find the real records no "
       "more familiar than the twins.\n"
       "- **Thresholds**, fixed in the audit configuration *before* the audit runs, so nobody "
       "can tune them afterwards to get a pass. The configuration's hash is in the report.\n"
       "- **Controls**: the original model (the test must detect the person there) and, when "
       "one exists, a model retrained without the person (it must pass)."),
    code("from audits import AuditConfig, run_audit\n\n"
         "hold = set(corpus.subject_ids('holdout'))\n"
         "inputs = dict(members=corpus.records_of(subject),\n"
         "    nonmembers=[r for r in corpus.people if r['subject_id'] in hold],\n"
         "    retain=[r['text'] for r in corpus.people if r['split'] == 'train' and "
         "r['subject_id'] != subject][:100],\n"
         "    holdout=[r['text'] for r in corpus.people if r['subject_id'] in hold][:100],\n"
         "    subject_id=subject)\n"
         "# Default thresholds; fewer bootstrap and sampling rounds keep the notebook quick.\n"
         "import os\n"
         "config = AuditConfig(bootstrap=300, samples=4, relearn_steps=5)\n"
         "# FORGET_NB_QUICK=1 (the tests' setting): one MIA attack, no neighbours, no character\n"
         "# ranking, no robustness attacks (each is tested on its own); unset, all run.\n"
         "QUICK = dict(mia_verdict_attacks=('loss',), relearn_other_steps=0, char_rank_kinds=(),\n"
         "             neighbour_count=0, relearn_steps=0, quantize=False, paraphrase=False)\n"
         "if os.environ.get('FORGET_NB_QUICK') == '1':\n"
         "    import dataclasses\n"
         "    config = dataclasses.replace(config, **QUICK)\n"
         "for k in ('mia_auc_upper_max', 'max_extraction_hits', 'exposure_alpha', "
         "'max_perplexity_ratio'):\n"
         "    print(f'{k:<22} {getattr(config, k)}')\nprint('config hash:', config.config_hash()[:16])"),
    md("## 1. A model that still holds the data: the audit must fail\n\n"
       "We audit the original model itself. Every check is listed with its measured value and "
       "its threshold."),
    code("def show(report):\n"
         "    d = report.to_dict()\n"
         "    print('VERDICT:', d['verdict'].upper(), '-', d['reason'])\n"
         "    for c in d['checks']:\n"
         "        state = 'pass' if c['passed'] else ('FAIL' if c['passed'] is not None else 'n/a')\n"
         "        print(f\"  {c['name']:<22} {state:<5} value={c['value']!s:<10.8} "
         "rule: {c['rule']}\")\n"
         "    for role, ctl in d['controls'].items():\n"
         "        print(f'  control {role}: {ctl[\"status\"]}')\n"
         "    return d\n\n"
         "fail = show(run_audit(model=original[0], tokenizer=original[1], original=original,\n"
         "                      retrained=retrained, config=config, **inputs))"),
    md("**How to read each line**\n\n"
       "- **extraction**: prompts made of the text that preceded each identifier in the "
       "person's records; the model completes them greedily and by sampling. A *hit* is an "
       "identifier reproduced verbatim. Here the model reproduces some: it still holds them.\n"
       "- **exposure**: the true phone number or national id is ranked among at least 199 "
       "invented values of the same format by how likely the model finds each. If the true "
       "one is at the top, or at the very bottom, far more often than chance allows, the "
       "p-value is small and the check fails: a value the model conspicuously *avoids* is as "
       "easy to pick out as one it prefers (Secret Sharer, Carlini et al. 2019).\n"
       "- **mia:...** (membership inference): the person's records are compared with 159 "
       "invented look-alike identities (twins). The person ranks among them as chance would "
       "if the model never saw them; a rank at the very top (still remembered) or the very "
       "bottom (over-unlearning) fails, an exact test with a 2.5% false-alarm rate. The AUC "
       "(0.5 = a coin toss, 1.0 = always told apart) says how large the difference is; "
       "without a retrained model to compare with, it must also leave 0.1-0.9 to count.\n"
       "- **utility:...**: the model must still work for everyone else (perplexity on other "
       "people's text, a facts quiz through lm-eval).\n"
       "- **robustness:...**: the extraction and exposure checks are repeated after a few "
       "steps of fine-tuning on related text (relearning), after int8 quantization, and with "
       "paraphrased prompts: data that is only hidden tends to come back under these."),
    code("a = fail['models']['audited']\n"
         "print('extraction hits:', a['extraction']['hits'], 'of', "
         "len(a['extraction']['probes']), 'probes')\n"
         "loss = a['mia']['attacks']['loss']\n"
         "print(f\"MIA AUC (loss attack): {loss['auc']:.2f}  95% CI [{loss['ci_low']:.2f}, "
         "{loss['ci_high']:.2f}]\")\n"
         "print('exposure p-values:', [round(i['p_value'], 4) for i in "
         "a['exposure']['identifiers']])\n"
         "print('identifiers in the report (masked):', fail['identifiers'][:3])"),
    md("## 2. A model retrained without the person: the audit must pass\n\n"
       "Retraining from scratch on data without the person's records is the reference for "
       "what *forgotten* means. The audited model here is that retrained model; the original "
       "model is the control that must still fail."),
    code("passed = show(run_audit(model=retrained[0], tokenizer=retrained[1], original=original,\n"
         "                        config=config, **inputs))"),
    md("A **pass** means: none of these attacks, at these thresholds, could tell the "
       "person's records from invented look-alikes, and none recovered an identifier; and "
       "the same attacks did detect the person in the original model, so they had the power "
       "to. It does **not** prove the absence of every trace (see the limits below)."),
    md("## 3. Without the control: inconclusive\n\n"
       "If the original model is not available, we cannot show that the attacks would have "
       "found the person at all (perhaps the model never memorised them). The audit then "
       "refuses to call it a pass."),
    code("unsure = show(run_audit(model=retrained[0], tokenizer=retrained[1], config=config, "
         "**inputs))"),
    md("## What the numbers cannot show\n\n"
       "Each report carries the limits of each measure, in these words:"),
    code("for name, text in passed['limits'].items():\n    print(f'- {name}:\\n  {text}\\n')"),
    code("print('verdicts:', fail['verdict'], '/', passed['verdict'], '/', unsure['verdict'])"),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3",
                                                                 "display_name": "Python 3",
                                                                 "language": "python"}})
nbf.write(nb, Path(__file__).with_name("02_reading_an_audit_report.ipynb"))
