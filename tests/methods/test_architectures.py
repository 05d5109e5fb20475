"""Every registered method and the audit on five real Hugging Face architectures (issue 19).

For each of GPT-2, GPT-NeoX (Pythia), Llama, Qwen2 and OPT, a tiny model is built from that
architecture's own transformers config (``forget.models.train.build_model(arch=...)``, size
``micro``) and trained in the test until it reproduces a subject's identifiers by greedy
decoding. The GPT-2 model is saved with a tokenizer that has no pad token, as GPT-2's own.
Then every registered text method runs on it with a small step budget, and the audit runs on
the result. Asserted per (architecture, method): the result is a model of the same class that
round-trips through ``save_pretrained``/``from_pretrained`` with the same logits; the
gradient family raised the loss on the subject's identifier tokens; the retraining methods no
longer give the subject's identifiers back; the loss on other people's records stays finite
and bounded; the audit evaluated its checks. A model with no known or inferable layout
(Mamba) gets ``UnsupportedArchitectureError`` naming it and the method.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

import forget.methods  # noqa: F401  (registers the methods)
from audits.extraction import greedy_hits
from forget.core import METHODS, get_method, subject_sets
from forget.core.criteria import perplexity
from forget.core.data import Example
from forget.errors import UnsupportedArchitectureError
from forget.models.train import ARCHS

# shard_retrain needs a model fine-tuned sharded (LoRA on every linear layer, resolved by peft
# for any architecture): tested on GPT-2 in tests/workflow/test_sharded.py, Llama in the demo.
# undo and targeted_undo are npo / gradient ascent, a noise blend and a distillation, all
# architecture-independent: tested on their own in tests/methods/test_frontier_methods.py
# (CI time). rewind rebuilds the run from the model's recipe or size (a GPT-2 fine-tune in
# tests/models/test_rewind.py, the suite's Llama sizes in bench/frontier.py).
METHOD_NAMES = [n for n in METHODS.names() if METHODS.get(n).modality == "text"
                and n not in ("shard_retrain", "undo", "targeted_undo", "rewind")]
GRADIENT = ("gradient_ascent", "grad_diff", "npo", "simnpo", "code_eraser", "lora_forget",
            "idk_dpo", "rome", "undo", "targeted_undo")
RETRAINED = ("retrain", "dp_retrain")
# A light audit: the statistics are tested elsewhere; here it must run and evaluate checks.
LIGHT_AUDIT = dict(twins_per_record=0, mia_alpha=0.25, bootstrap=20, samples=0, relearn_steps=0,
                   quantize=False, paraphrase=False, exposure_alternatives=19,
                   require_original_control=False)


def small_configs() -> dict[str, object]:
    from forget.methods.code_eraser import CodeEraserConfig
    from forget.methods.dp_retrain import DPRetrainConfig
    from forget.methods.grad_diff import GradDiffConfig
    from forget.methods.gradient_ascent import GradientAscentConfig
    from forget.methods.idk_dpo import IdkDPOConfig
    from forget.methods.lora_forget import LoraForgetConfig
    from forget.methods.npo import NPOConfig
    from forget.methods.retrain import RetrainConfig
    from forget.methods.rome import RomeConfig
    from forget.methods.simnpo import SimNPOConfig
    from forget.methods.targeted_undo import TargetedUndoConfig
    from forget.methods.undo import UndoConfig

    return {
        "gradient_ascent": GradientAscentConfig(max_steps=6, learning_rate=1e-3, check_every=3),
        "grad_diff": GradDiffConfig(max_steps=6, learning_rate=1e-3, check_every=3),
        "npo": NPOConfig(max_steps=6, learning_rate=1e-3, check_every=3),
        "simnpo": SimNPOConfig(max_steps=6, learning_rate=1e-3, check_every=3),
        "code_eraser": CodeEraserConfig(max_steps=6, learning_rate=1e-3, detect=False, check_every=3,
                                        context_bound=None),
        "lora_forget": LoraForgetConfig(max_steps=6, check_every=3),
        "idk_dpo": IdkDPOConfig(max_steps=3),
        "rome": RomeConfig(max_steps=6, prefixes=1, cov_keys=500, neighbours=8),
        "retrain": RetrainConfig(epochs=8),
        "dp_retrain": DPRetrainConfig(epochs=1, batch_size=32, target_delta=1e-3),
        "undo": UndoConfig(max_steps=6, learning_rate=1e-3, alpha=0.2, distil_steps=4),
        "targeted_undo": TargetedUndoConfig(max_steps=6, learning_rate=1e-3, check_every=3,
                                            distil_steps=4),
        "noisy_gd": None,  # its head is trained per architecture (world fixture)
    }


@pytest.fixture(scope="module")
def arch_corpus(tmp_path_factory):
    """A small generated corpus and the suite's tokenizer for it, shared by every architecture."""
    from forget.corpus import GenerateConfig, generate, load_corpus
    from forget.models.build import tokenizer_texts
    from forget.models.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("arch-corpus")
    generate(root, GenerateConfig(subjects=4, seed=3, min_records=3, max_records=4,
                                  code_files=4, canaries_per_repeat=1, holdout_canaries=1))
    corpus = load_corpus(root)
    return corpus, train_tokenizer(tokenizer_texts(corpus), vocab_size=512)


@pytest.fixture(scope="module", params=ARCHS)
def world(request, arch_corpus, tmp_path_factory):
    """One architecture: the trained model (saved with a card), its memorised subject, the
    subject's sets, the baselines, and a certified head over it for noisy_gd."""
    from forget.corpus.load import training_records
    from forget.methods.noisy_gd import build_head_model, corpus_head_records
    from forget.models import load_model, save_model
    from forget.models.registry import new_card
    from forget.models.train import get_size, train_lm

    arch = request.param
    corpus, tok = arch_corpus
    tok = copy.deepcopy(tok)
    if arch == "gpt2":
        tok.pad_token = None  # as GPT-2's tokenizer: the suite must fall back to eos
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    records = training_records(corpus)
    model = train_lm(records, tok, get_size("micro"), seed=0, progress=False, arch=arch)
    out = tmp_path_factory.mktemp(f"arch-{arch}")
    save_model(model, tok, out / "lm", card=new_card(
        kind="trained", size="micro", arch=arch, config={"arch": arch},
        training_record_ids=sorted({r.record_id for r in records})))
    model, tok = load_model(out / "lm")
    sid = next((s for s in corpus.subject_ids("train")
                if any(greedy_hits(model, tok, subject_sets(corpus, s)[0].prompts()))), None)
    assert sid is not None, f"the {arch} model memorised no subject"
    fset, rset = subject_sets(corpus, sid)
    others = [Example(r["record_id"], r["text"]) for r in corpus.people
              if r["split"] == "train" and r["subject_id"] != sid]
    head_dir = build_head_model(out / "lm", corpus_head_records(corpus)[:24], out / "head",
                                registry=out / "registry")
    yield {"arch": arch, "model": model, "tok": tok, "corpus": corpus, "sid": sid,
           "forget": fset, "retain": rset, "others": others, "dir": out, "head": head_dir,
           "span_ppl": perplexity(model, tok, fset.examples, mask_key="span_mask"),
           "ppl": perplexity(model, tok, others)}
    torch.set_num_threads(n)


def test_builds_the_real_architecture(world):
    from forget.models import arch as A
    from forget.models import read_card

    model, tok = world["model"], world["tok"]
    assert model.config.model_type == world["arch"]
    assert read_card(world["dir"] / "lm")["arch"] == world["arch"]
    spec = A.arch_of(model)
    assert len(A.decoder_layers(model)) == 2
    out = A.mlp_out(model, 0)
    assert A.weight_out_in(out).shape == (64, 192)  # (d, m) whatever the layout
    assert A.is_conv1d(out) == (world["arch"] == "gpt2") == spec.conv1d
    assert not A.tied_embeddings(model)
    assert tok.pad_token_id is not None  # GPT-2's missing pad falls back to eos on load
    if world["arch"] == "gpt2":
        assert tok.pad_token_id == tok.eos_token_id


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_method_and_audit_on_architecture(name, world, tmp_path):
    from audits import AuditConfig, run_audit
    from forget.models import load_model, save_model, state_dict_sha256

    model, tok, fset = world["model"], world["tok"], world["forget"]
    before = state_dict_sha256(model)
    config = small_configs()[name]
    run_model = model
    if name == "noisy_gd":
        from forget.methods.noisy_gd import NoisyGDConfig

        run_model, _ = load_model(world["head"])
        config = NoisyGDConfig(head_dir=str(world["head"]))
    result = get_method(name).run(model=run_model, tokenizer=tok, forget=fset,
                                  retain=world["retain"], config=config)
    new = result.model
    assert type(new) is type(model) and new.config.model_type == world["arch"]
    assert state_dict_sha256(model) == before  # the original is untouched

    save_model(new, tok, tmp_path / "out", extra=result.save_extra)
    back, back_tok = load_model(tmp_path / "out")
    assert type(back) is type(model)
    ids = back_tok(fset.texts()[:2], return_tensors="pt", padding=True)
    with torch.no_grad():
        a = new(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"]).logits
        b = back(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"]).logits
    assert torch.allclose(a, b, atol=1e-5)

    ppl = perplexity(new, tok, world["others"])
    assert math.isfinite(ppl) and ppl < len(tok)  # never worse than guessing uniformly
    if name == "rome":  # one MLP output matrix changed, nothing else
        from forget.models import arch as A

        changed = {k for k, v in new.state_dict().items()
                   if not torch.equal(v, model.state_dict()[k])}
        layer = result.history[-2]["layer"]
        out = A.mlp_out(model, layer)
        assert changed == {n for n, p in model.named_parameters() if p is out.weight}
    if name in GRADIENT:
        span = perplexity(new, tok, fset.examples, mask_key="span_mask")
        assert span > world["span_ppl"], f"{name}: identifier-token loss did not rise"
        assert ppl / world["ppl"] < 5, f"{name}: retain perplexity x{ppl / world['ppl']:.2f}"
    elif name in RETRAINED:
        assert sum(greedy_hits(new, tok, fset.prompts())) == 0
        if name == "retrain":  # trained on the retain set only, same size
            assert not set(result.trained_record_ids) & {e.record_id for e in fset.examples}
            assert result.config["resolved_size"] == "micro"
    else:  # noisy_gd deletes from the head; the LM is the same
        from forget.methods._certified_head import HeadState

        state = HeadState.load(tmp_path / "out")
        assert not {e.record_id for e in fset.examples} & set(state.record_ids)
        assert result.formal_guarantee["removed"] >= 1

    corpus, sid = world["corpus"], world["sid"]
    report = run_audit(model=new, tokenizer=tok, members=corpus.records_of(sid),
                       retain=[e.text for e in world["others"][:8]],
                       original=(model, tok), config=AuditConfig(**LIGHT_AUDIT),
                       subject_id=sid)
    evaluated = [c for c in report.checks if c.passed is not None]
    assert {c.name.split(":")[0] for c in evaluated} >= {"extraction", "mia"}
    assert report.verdict in ("pass", "fail", "inconclusive")


def _mamba(tok):
    from transformers import MambaConfig, MambaForCausalLM

    torch.manual_seed(0)
    return MambaForCausalLM(MambaConfig(vocab_size=len(tok), hidden_size=16, state_size=4,
                                        num_hidden_layers=1, expand=2, conv_kernel=2))


def test_retrain_of_an_unknown_architecture_without_a_recipe_is_refused(arch_corpus):
    """Without a recorded recipe, retraining would have to rebuild the model from scratch,
    which the suite cannot for a state-space model: the typed error says exact retraining is
    unavailable and how to get it (fine-tune with a recorded recipe)."""
    from forget.errors import RetrainUnavailableError

    corpus, tok = arch_corpus
    fset, rset = subject_sets(corpus, corpus.subject_ids("train")[0])
    with pytest.raises(RetrainUnavailableError) as err:
        get_method("retrain").run(model=_mamba(tok), tokenizer=tok, forget=fset, retain=rset,
                                  config=small_configs()["retrain"])
    assert "recipe" in str(err.value) and "forget model finetune" in str(err.value)


@pytest.mark.parametrize("name", ["rome", "lora_forget", "dp_retrain"])
def test_unsupported_architecture_is_named(name, arch_corpus):
    """A state-space model has no MLP to edit or adapt and cannot be rebuilt by the suite:
    the typed error names the architecture and the method, before anything runs."""
    corpus, tok = arch_corpus
    sid = corpus.subject_ids("train")[0]
    fset, rset = subject_sets(corpus, sid)
    with pytest.raises(UnsupportedArchitectureError) as err:
        get_method(name).run(model=_mamba(tok), tokenizer=tok, forget=fset, retain=rset,
                             config=small_configs()[name])
    assert "'mamba'" in str(err.value) and name in str(err.value)


def test_llama_like_layout_is_inferred(arch_corpus):
    """An architecture not in the table (Mistral) is resolved from its Llama-like layout."""
    from transformers import MistralConfig, MistralForCausalLM

    from forget.models import arch as A

    _, tok = arch_corpus
    m = MistralForCausalLM(MistralConfig(vocab_size=len(tok), hidden_size=32,
                                         intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    spec = A.arch_of(m, "rome")
    assert (spec.model_type, spec.layers, spec.mlp_out) == ("mistral", "model.layers",
                                                            "mlp.down_proj")
    assert A.lora_targets(m)[0] == ["gate_proj", "up_proj", "down_proj"]


def test_guard_filters_the_architecture(world):
    """The guard wraps this architecture's ``generate``: an identifier the model gives back
    verbatim (the control) never reaches the caller."""
    from transformers import GenerationConfig

    from audits.extraction import greedy_continuations
    from guardrails import ForgottenIndex, Guard, GuardedGenerator, IdentifierBlocker

    model, tok = world["model"], world["tok"]
    kinds = {"phone": "phone", "email": "email", "national_id": "id"}
    prompts = world["forget"].prompts(tuple(kinds))
    hits = [p for p, h in zip(prompts, greedy_hits(model, tok, prompts), strict=True) if h]
    assert hits, "the control: the model gives at least one phone/email/id back"
    p = hits[0]
    value = p.target.strip()
    assert value in greedy_continuations(model, tok, [p.prefix], 24)[0]
    index = ForgottenIndex(ForgottenIndex.generate_key())
    index.add({kinds[p.kind]: value})
    gen = GuardedGenerator(model, tok, Guard(index, use_presidio=False),
                           blocker=IdentifierBlocker.from_identifiers(tok, {kinds[p.kind]: value}))
    enc = tok(p.prefix, return_tensors="pt")
    cfg = GenerationConfig(max_new_tokens=24, do_sample=False, pad_token_id=tok.pad_token_id,
                           eos_token_id=tok.eos_token_id)
    text = gen.generate(enc["input_ids"], attention_mask=enc["attention_mask"],
                        generation_config=cfg).texts[0]
    assert value not in text


def test_pad_and_eos_resolution(arch_corpus):
    """No pad token: eos pads (in place, idempotent); neither: a typed error naming the fix."""
    from forget.errors import InvalidInputError
    from forget.models import arch as A

    tok = copy.deepcopy(arch_corpus[1])
    tok.pad_token = None
    assert A.pad_token_id(tok) == tok.eos_token_id and tok.pad_token_id is None
    assert A.ensure_pad_token(tok).pad_token_id == tok.eos_token_id
    tok.pad_token, tok.eos_token = None, None
    with pytest.raises(InvalidInputError, match="neither a pad nor an eos token"):
        A.ensure_pad_token(tok)
