"""The unlearning methods. Importing this package registers every one of them in ``METHODS``.

One module per method (its config dataclass, its class, one ``METHODS.register`` call);
adding a method means adding a module here and its import below, nothing else.
"""

from forget.methods import (  # noqa: F401  (imported for their registration)
    code_eraser,
    dp_retrain,
    grad_diff,
    gradient_ascent,
    idk_dpo,
    lora_forget,
    noisy_gd,
    npo,
    retrain,
    rewind,
    rome,
    shard_retrain,
    simnpo,
    targeted_undo,
    text_encoder,
    undo,
)
