"""Guarded generation: what a user receives from a transformers model is filtered.

* :class:`GuardedGenerator` calls the model's real ``generate``, decodes the new tokens and
  returns only guarded text (never the raw token ids, which would decode to the unfiltered
  answer).
* :func:`guard_streamer` wraps a ``TextStreamer`` / ``TextIteratorStreamer`` so that the text
  it prints or queues passes through a :class:`~guardrails.stream.StreamFilter` first.
* :class:`IdentifierBlocker` (off by default) is a logits processor that stops the model
  from producing the token sequences of protected identifiers in the first place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from transformers import LogitsProcessorList, NoBadWordsLogitsProcessor

from guardrails.errors import UnsupportedStreamerError
from guardrails.guard import Guard, GuardResult
from guardrails.index import Identifiers
from guardrails.stream import StreamFilter

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase
    from transformers.generation.streamers import BaseStreamer


def guard_streamer(streamer: BaseStreamer, guard: Guard, *, pii_holdback: int = 64
                   ) -> BaseStreamer:
    """Make ``streamer`` show only filtered text; returns the same object.

    Works with any streamer that reports text through ``on_finalized_text(text, stream_end)``
    (``TextStreamer``, ``TextIteratorStreamer``, ``AsyncTextIteratorStreamer``). The filter
    holds text back (see :mod:`guardrails.stream`) and flushes at ``stream_end``.
    """
    inner = getattr(streamer, "on_finalized_text", None)
    if inner is None:
        raise UnsupportedStreamerError(
            f"{type(streamer).__name__} has no on_finalized_text, so its text cannot be "
            "filtered; use a TextStreamer or TextIteratorStreamer"
        )
    filt = StreamFilter(guard, pii_holdback=pii_holdback)

    def on_finalized_text(text: str, stream_end: bool = False) -> None:
        out = filt.push(text)
        if stream_end:
            out += filt.flush()
            nonlocal_reset()
        if out or stream_end:
            inner(out, stream_end=stream_end)

    def nonlocal_reset() -> None:  # a streamer may be reused for the next generate call
        nonlocal filt
        filt = StreamFilter(guard, pii_holdback=pii_holdback)

    streamer.on_finalized_text = on_finalized_text  # type: ignore[method-assign]
    streamer.guard_filter = lambda: filt  # type: ignore[attr-defined]  # for inspection
    return streamer


class IdentifierBlocker(NoBadWordsLogitsProcessor):
    """Forbids the token sequences of protected identifiers during decoding (opt-in).

    Trade-off: this needs the identifiers in **plaintext** when it is built: token ids are
    the text under another name, so the processor holds personal data in memory for as long
    as it lives. Never pickle or log it, build it from the ledger's encrypted copy right before
    generation, and drop it afterwards. It only forbids the surface forms it was built with
    (as written, upper case, "Last, First", "F. Last", with and without a leading space),
    not obfuscations; the output filter stays the line of defence, this only makes leaks
    rarer and answers more fluent than a redaction would. That is why it is off by default.
    """

    @classmethod
    def from_identifiers(cls, tokenizer: PreTrainedTokenizerBase,
                         identifiers: Identifiers | Mapping[str, str | Sequence[str]]
                         ) -> IdentifierBlocker:
        """Build from plaintext identifiers (see the class docstring for the trade-off)."""
        if not isinstance(identifiers, Identifiers):
            identifiers = Identifiers.from_mapping(identifiers)
        forms: set[str] = set()
        for kind, value in identifiers.by_kind():
            value = " ".join(value.split())
            forms |= {value, value.upper(), value.lower()}
            if kind == "name" and len(value.split()) >= 2:
                first, *_, last = value.split()
                forms |= {f"{last}, {first}", f"{first[0]}. {last}", f"{first} {last}"}
        seqs = set()
        for form in forms:
            for text in (form, " " + form):
                ids = tokenizer(text, add_special_tokens=False)["input_ids"]
                if ids:
                    seqs.add(tuple(ids))
        return cls([list(s) for s in sorted(seqs)], eos_token_id=tokenizer.eos_token_id)


@dataclass(frozen=True)
class GuardedGeneration:
    """Filtered completions (prompt excluded), one per sequence, with the guard's results."""

    texts: list[str]
    results: list[GuardResult]


class GuardedGenerator:
    """Wraps a causal LM's ``generate`` so that callers only ever see filtered text."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                 guard: Guard, *, blocker: IdentifierBlocker | None = None,
                 pii_holdback: int = 64) -> None:
        """Args:
            model: any model with ``generate``.
            tokenizer: its tokenizer (decodes the new tokens).
            guard: the guard applied to every completion and every streamed piece.
            blocker: optional :class:`IdentifierBlocker` (off by default; see its docstring).
            pii_holdback: streaming hold-back for non-index findings.
        """
        self.model, self.tokenizer, self.guard = model, tokenizer, guard
        self.blocker = blocker
        self.pii_holdback = pii_holdback

    def generate(self, input_ids: torch.Tensor, *, attention_mask: torch.Tensor | None = None,
                 generation_config: GenerationConfig | None = None,
                 logits_processor: LogitsProcessorList | None = None,
                 streamer: BaseStreamer | None = None) -> GuardedGeneration:
        """Run ``model.generate`` and return the guarded completions.

        A ``streamer`` given here is wrapped with :func:`guard_streamer` first, so what it
        shows is filtered too.
        """
        processors = LogitsProcessorList(logits_processor or [])
        if self.blocker is not None:
            processors.append(self.blocker)
        kwargs: dict[str, Any] = {"input_ids": input_ids, "logits_processor": processors}
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask
        if generation_config is not None:
            kwargs["generation_config"] = generation_config
        if streamer is not None:
            kwargs["streamer"] = guard_streamer(streamer, self.guard,
                                                pii_holdback=self.pii_holdback)
        out = self.model.generate(**kwargs)
        sequences = out.sequences if hasattr(out, "sequences") else out
        raw = self.tokenizer.batch_decode(sequences[:, input_ids.shape[1]:],
                                          skip_special_tokens=True)
        results = [self.guard.check(t) for t in raw]
        return GuardedGeneration([r.text for r in results], results)
