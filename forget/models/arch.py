"""Architecture-specific parts of a Hugging Face causal LM, resolved from ``model.config``.

The methods need a few named parts of a model: the decoder layers, the MLP output matrix a
ROME edit changes, the LoRA target modules, the final norm, and some quirks (GPT-2's
``Conv1D`` stores its weight transposed; Opacus needs batch-shaped ``position_ids`` for
learned position embeddings). They differ by architecture:

| model_type | layers | MLP output | FFN LoRA targets | conv1d | learned positions |
|---|---|---|---|---|---|
| gpt2 | transformer.h | mlp.c_proj | mlp.c_fc, mlp.c_proj | yes | yes (wpe) |
| gpt_neox | gpt_neox.layers | mlp.dense_4h_to_h | dense_h_to_4h, dense_4h_to_h | no | no (rotary) |
| llama, qwen2 | model.layers | mlp.down_proj | gate_proj, up_proj, down_proj | no | no (rotary) |
| opt | model.decoder.layers | fc2 | fc1, fc2 | no | yes |

Any other ``model_type`` is inspected: if its layers sit at one of the paths above and each
holds one of the MLP output names above whose output width is the hidden size, that layout
is used (Mistral, Gemma, Bloom and most Llama-like models; ``position_ids`` are then always
passed per sample to Opacus, which is right for any right-padded batch); otherwise
:class:`~forget.errors.UnsupportedArchitectureError` names the architecture and the method.
Token embedding and output head come from the generic ``get_input_embeddings`` /
``get_output_embeddings``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from forget.errors import InvalidInputError, UnsupportedArchitectureError


@dataclass(frozen=True)
class ArchSpec:
    """Where one architecture keeps the parts the methods need (paths are dotted attributes).

    Attributes:
        model_type: ``config.model_type``.
        layers: the decoder-layer ``ModuleList``, from the ``*ForCausalLM`` model.
        mlp_out: the MLP output matrix (input: the MLP's hidden ``m``, output: ``d``), from
            one decoder layer.
        ffn_targets: LoRA target names of the feed-forward block (peft suffix matching).
        all_targets: LoRA target names of attention and feed-forward.
        final_norm: the norm before the output head, from the ``*ForCausalLM`` model.
        conv1d: the linear maps are GPT-2 ``Conv1D`` (weight ``(in, out)``; LoRA needs
            ``fan_in_fan_out=True``).
        learned_positions: a learned position embedding fed with ``position_ids`` of shape
            ``(1, T)`` unless given; Opacus needs them per sample ``(B, T)``.
        dp_frozen: modules Opacus cannot compute per-sample gradients for, frozen (left at
            their initial values) during DP-SGD. OPT's learned position embedding is called
            with ``(attention_mask, past_length: int)``, which Opacus's hooks cannot capture.
            Frozen parameters see no data, so the DP bound is unchanged.
        flat_mlp: modules of a decoder layer whose input the layer flattens to ``(B*T, m)``
            (OPT's ``final_layer_norm``, ``fc1``, ``fc2``); Opacus would take each token for
            a sample, so during DP-SGD they run on ``(B, T, m)`` (:func:`unflatten_for_dp`).
    """

    model_type: str
    layers: str
    mlp_out: str
    ffn_targets: tuple[str, ...]
    all_targets: tuple[str, ...]
    final_norm: str
    conv1d: bool = False
    learned_positions: bool = False
    dp_frozen: tuple[str, ...] = ()
    flat_mlp: tuple[str, ...] = ()


_LLAMA_FFN = ("gate_proj", "up_proj", "down_proj")
_LLAMA_ALL = ("q_proj", "k_proj", "v_proj", "o_proj", *_LLAMA_FFN)

SPECS: dict[str, ArchSpec] = {
    "gpt2": ArchSpec("gpt2", "transformer.h", "mlp.c_proj", ("mlp.c_fc", "mlp.c_proj"),
                     ("c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"), "transformer.ln_f",
                     conv1d=True, learned_positions=True),
    "gpt_neox": ArchSpec("gpt_neox", "gpt_neox.layers", "mlp.dense_4h_to_h",
                         ("dense_h_to_4h", "dense_4h_to_h"),
                         ("query_key_value", "attention.dense", "dense_h_to_4h", "dense_4h_to_h"),
                         "gpt_neox.final_layer_norm"),
    "llama": ArchSpec("llama", "model.layers", "mlp.down_proj", _LLAMA_FFN, _LLAMA_ALL,
                      "model.norm"),
    "qwen2": ArchSpec("qwen2", "model.layers", "mlp.down_proj", _LLAMA_FFN, _LLAMA_ALL,
                      "model.norm"),
    "opt": ArchSpec("opt", "model.decoder.layers", "fc2", ("fc1", "fc2"),
                    ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"),
                    "model.decoder.final_layer_norm", learned_positions=True,
                    dp_frozen=("model.decoder.embed_positions",),
                    flat_mlp=("final_layer_norm", "fc1", "fc2")),
}
SUPPORTED = tuple(SPECS)


def _get(root: Any, path: str) -> Any:
    for part in path.split("."):
        root = getattr(root, part, None)
        if root is None:
            return None
    return root


def model_type(model: Any) -> str:
    return str(getattr(getattr(model, "config", None), "model_type", None) or
               type(model).__name__)


def _unsupported(model: Any, method: str, why: str) -> UnsupportedArchitectureError:
    return UnsupportedArchitectureError(
        f"{method} cannot work on a {model_type(model)!r} model: {why}; supported "
        f"architectures: {', '.join(SUPPORTED)} and Llama-like layouts "
        "(model.layers[i].mlp.down_proj); choose another method or convert the model")


def _base(model: Any) -> Any:
    """The transformers model under a peft wrapper (``PeftModel`` -> ``LoraModel`` -> model)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _inferred(model: Any) -> ArchSpec | None:
    """A known layout found in an unknown architecture, checked by shape, or None: decoder
    layers at one of the known paths, each holding one of the known MLP output matrices
    whose output width is the hidden size."""
    hidden = getattr(model.config, "hidden_size", None)
    for where in SPECS.values():
        layers = _get(model, where.layers)
        if not isinstance(layers, torch.nn.ModuleList) or len(layers) == 0:
            continue
        for known in SPECS.values():
            out = _get(layers[0], known.mlp_out)
            if out is None or hidden is None or out_features(out) != hidden:
                continue
            names = [n.split(".")[-1] for n, _ in layers[0].named_modules() if n]
            ffn = tuple(t for t in known.ffn_targets if t.split(".")[-1] in names)
            attn = tuple(t for t in known.all_targets if t.split(".")[-1] in names)
            norm = next((n for n in (w.final_norm for w in SPECS.values())
                         if _get(model, n) is not None), where.final_norm)
            return ArchSpec(model_type(model), where.layers, known.mlp_out, ffn or
                            (known.mlp_out,), attn or ffn or (known.mlp_out,), norm,
                            conv1d=is_conv1d(out), learned_positions=True)
    return None


def arch_of(model: Any, method: str = "this method") -> ArchSpec:
    """The parts layout of ``model`` (a ``*ForCausalLM``, possibly peft-wrapped).

    Raises:
        UnsupportedArchitectureError: neither a known ``model_type`` nor an inferable layout.
    """
    base = _base(model)
    spec = SPECS.get(model_type(base))
    if spec is not None and isinstance(_get(base, spec.layers), torch.nn.ModuleList):
        return spec
    found = _inferred(base) if hasattr(base, "config") else None
    if found is None:
        raise _unsupported(base, method, "its decoder layers and MLP output matrix could not "
                                         "be located")
    return found


def decoder_layers(model: Any, method: str = "this method") -> torch.nn.ModuleList:
    base = _base(model)
    return _get(base, arch_of(base, method).layers)


def mlp_out(model: Any, layer: int, method: str = "this method") -> torch.nn.Module:
    """The MLP output matrix of decoder layer ``layer`` (Llama ``mlp.down_proj``, GPT-2
    ``mlp.c_proj``, GPT-NeoX ``mlp.dense_4h_to_h``, OPT ``fc2``). Its output is the MLP's
    output (the residual branch), so hooks on it see what a hook on the MLP would."""
    layers = decoder_layers(model, method)
    if not 0 <= layer < len(layers):
        raise InvalidInputError(f"layer {layer} does not exist: the model has {len(layers)} "
                                f"layers (0..{len(layers) - 1})")
    return _get(layers[layer], arch_of(model, method).mlp_out)


def is_conv1d(module: torch.nn.Module) -> bool:
    """GPT-2's ``Conv1D``: ``y = x @ W + b`` with ``W`` of shape ``(in, out)``."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def out_features(module: torch.nn.Module) -> int:
    """Output width of a linear map (``nn.Linear`` or GPT-2 ``Conv1D``)."""
    width: Any = module.nf if is_conv1d(module) else module.out_features
    return int(width)


def weight_out_in(module: torch.nn.Module) -> torch.Tensor:
    """The weight as ``(out, in)`` (``nn.Linear``'s layout). For ``Conv1D`` this is a
    transposed view of its ``(in, out)`` parameter, so an in-place update of the returned
    tensor (``w += ΔW``) edits the module."""
    weight: torch.Tensor = module.weight  # type: ignore[assignment]
    return weight.T if is_conv1d(module) else weight


def lora_targets(model: Any, *, scope: str = "ffn", method: str = "this method"
                 ) -> tuple[list[str], bool]:
    """``(target_modules, fan_in_fan_out)`` for a peft ``LoraConfig``: the feed-forward block
    (``scope="ffn"``) or attention and feed-forward (``"all"``)."""
    spec = arch_of(model, method)
    names = spec.ffn_targets if scope == "ffn" else spec.all_targets
    return list(names), spec.conv1d


def final_norm(model: Any, method: str = "this method") -> torch.nn.Module:
    base = _base(model)
    norm = _get(base, arch_of(base, method).final_norm)
    if norm is None:
        raise _unsupported(base, method, "its final norm could not be located")
    return norm


def tied_embeddings(model: Any) -> bool:
    """Whether the output head shares its weight with the token embedding."""
    base = _base(model)
    emb, head = base.get_input_embeddings(), base.get_output_embeddings()
    return head is not None and emb is not None and head.weight is emb.weight


def per_sample_position_ids(model: Any, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Extra forward kwargs Opacus needs: ``position_ids`` of shape ``(B, T)`` where the model
    learns position embeddings (GPT-2, OPT; default ``(1, T)`` breaks per-sample gradients)."""
    base = _base(model)
    if not arch_of(base, "dp_retrain").learned_positions or \
            "position_ids" not in inspect.signature(base.forward).parameters:
        return {}  # no learned position embedding (rotary, ALiBi), or no such argument
    b, t = input_ids.shape
    return {"position_ids": torch.arange(t, device=input_ids.device).repeat(b, 1)}


def freeze_for_dp(model: Any) -> list[str]:
    """Freeze the modules Opacus cannot handle (``ArchSpec.dp_frozen``); their names."""
    base = _base(model)
    spec = arch_of(base, "dp_retrain")
    frozen = []
    for path in spec.dp_frozen:
        module = _get(base, path)
        if module is not None:
            for p in module.parameters():
                p.requires_grad_(False)
            frozen.append(path)
    return frozen


class _Unflatten(torch.nn.Module):
    """Runs ``inner`` on ``(B, T, m)`` where its layer passes ``(B*T, m)``; returns the
    layer's layout. ``batch[0]`` is the current batch size (set by a pre-hook)."""

    def __init__(self, inner: torch.nn.Module, batch: list[int]) -> None:
        super().__init__()
        self.inner, self.batch = inner, batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            return self.inner(x)
        y = self.inner(x.view(self.batch[0], -1, x.shape[-1]))
        return y.reshape(-1, y.shape[-1])


def unflatten_for_dp(model: Any) -> Callable[[], None]:
    """Make per-sample gradients see sequences in layers that flatten the batch (OPT): wrap
    each ``ArchSpec.flat_mlp`` module so it runs on ``(B, T, m)``. Returns the function that
    undoes it (call it after Opacus's hooks are removed); a no-op for other architectures."""
    base = _base(model)
    spec = arch_of(base, "dp_retrain")
    if not spec.flat_mlp:
        return lambda: None
    batch = [1]

    def remember(mod: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            batch[0] = int(ids.shape[0])

    hook = base.register_forward_pre_hook(remember, with_kwargs=True)
    wrapped = []
    for layer in _get(base, spec.layers):
        for name in spec.flat_mlp:
            inner = getattr(layer, name)
            setattr(layer, name, _Unflatten(inner, batch))
            wrapped.append((layer, name, inner))

    def undo() -> None:
        hook.remove()
        for layer, name, inner in wrapped:
            setattr(layer, name, inner)

    return undo


# -- tokenizer ---------------------------------------------------------------------------------
def pad_token_id(tokenizer: Any) -> int:
    """The pad id, or the eos id for a tokenizer without one (GPT-2, Pythia, OPT-style)."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    raise InvalidInputError("the tokenizer has neither a pad nor an eos token; set one "
                            "(tokenizer.add_special_tokens({'eos_token': ...})) and save it")


def ensure_pad_token(tokenizer: Any) -> Any:
    """Give a tokenizer without a pad token its eos token as pad (in place; the usual
    convention). Padding positions are masked, so which id pads does not change results."""
    if tokenizer.pad_token_id is None:
        pad_token_id(tokenizer)  # raises without eos
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def eos_token_id(tokenizer: Any) -> int:
    if tokenizer.eos_token_id is None:
        raise InvalidInputError("the tokenizer has no eos token, so sequence ends cannot be "
                                "learned; set one and save the tokenizer")
    return int(tokenizer.eos_token_id)


def start_token_id(tokenizer: Any) -> int:
    """The token generation can start from: bos, else eos (Qwen2's tokenizer has no bos)."""
    return int(tokenizer.bos_token_id if tokenizer.bos_token_id is not None
               else eos_token_id(tokenizer))
