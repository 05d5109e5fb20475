"""Guarded generation through a real (tiny, random) LlamaForCausalLM and real generate()."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers  # noqa: E402
from transformers import (  # noqa: E402
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedTokenizerFast,
    TextIteratorStreamer,
)

from guardrails import (  # noqa: E402
    Guard,
    GuardedGenerator,
    IdentifierBlocker,
    UnsupportedStreamerError,
    guard_streamer,
)

PLACEHOLDER = "<FORGOTTEN_SUBJECT>"


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer built offline."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({chr(i): i - 29 for i in range(32, 127)})
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tk.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="</s>")


@pytest.fixture(scope="module")
def model(tokenizer) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=256)
    return LlamaForCausalLM(cfg).eval()


class Script(LogitsProcessor):
    """Pushes the model towards a fixed continuation (``bias`` added to the scripted token)."""

    def __init__(self, ids: list[int], prompt_len: int, bias: float = 1e4) -> None:
        self.ids, self.prompt_len, self.bias = ids, prompt_len, bias

    def __call__(self, input_ids, scores):
        k = input_ids.shape[1] - self.prompt_len
        if k < len(self.ids):
            scores[:, self.ids[k]] += self.bias
        return scores


def _setup(tokenizer, answer: str):
    prompt = tokenizer("Q:", return_tensors="pt").input_ids
    ids = tokenizer(answer, add_special_tokens=False).input_ids
    config = GenerationConfig(max_new_tokens=len(ids), do_sample=False, pad_token_id=2,
                              eos_token_id=2)
    return prompt, ids, config


def test_generate_and_streamer_are_filtered(model, tokenizer, index_guard, people) -> None:
    name = people[0].name
    answer = f" It was {' '.join(name.upper())}, of course."
    prompt, ids, config = _setup(tokenizer, answer)
    script = LogitsProcessorList([Script(ids, prompt.shape[1])])
    raw = model.generate(prompt, generation_config=config, logits_processor=script)
    assert tokenizer.decode(raw[0, prompt.shape[1]:]) == answer  # the model does say it

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
    gen = GuardedGenerator(model, tokenizer, index_guard, pii_holdback=0)
    result = gen.generate(prompt, generation_config=config, logits_processor=script,
                          streamer=streamer)
    assert result.texts == [" It was " + PLACEHOLDER + ", of course."]
    streamed = list(streamer)
    assert "".join(streamed) == result.texts[0]
    assert all(name.split()[0][0] + " " not in piece for piece in streamed)


def test_identifier_blocker_stops_the_tokens(model, tokenizer, people) -> None:
    name = people[1].name
    prompt, ids, config = _setup(tokenizer, " " + name)
    script = Script(ids, prompt.shape[1], bias=50.0)
    blocker = IdentifierBlocker.from_identifiers(tokenizer, {"name": name})
    gen = GuardedGenerator(model, tokenizer, Guard(use_presidio=False), blocker=blocker)
    text = gen.generate(prompt, generation_config=config,
                        logits_processor=LogitsProcessorList([script])).texts[0]
    assert name not in text and name.upper() not in text
    unblocked = GuardedGenerator(model, tokenizer, Guard(use_presidio=False)).generate(
        prompt, generation_config=config, logits_processor=LogitsProcessorList([script]))
    assert unblocked.texts[0] == " " + name  # without the blocker (and no index) it is said


def test_guard_streamer_refuses_token_streamers(index_guard) -> None:
    from transformers.generation.streamers import BaseStreamer

    with pytest.raises(UnsupportedStreamerError):
        guard_streamer(BaseStreamer(), index_guard)
