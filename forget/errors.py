"""The suite's error hierarchy.

Every error the suite raises on bad input or a bad environment is a ``ForgetError``. Each
subclass also inherits the builtin it resembles, so ``except ValueError`` in user code still
works. Messages name the bad value (never personal data) and say how to fix it.
"""

from __future__ import annotations


class ForgetError(Exception):
    """Root of every error raised by the ``forget`` package."""

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return str(self.args[0]) if self.args else self.__class__.__name__


class InvalidInputError(ForgetError, ValueError):
    """A value given by the user is malformed or out of range."""


class DataNotFoundError(ForgetError, FileNotFoundError):
    """A data directory or one of its files is missing."""


class MalformedDataError(ForgetError, ValueError):
    """A data file exists but cannot be parsed or fails validation."""


class ModelNotFoundError(ForgetError, FileNotFoundError):
    """A model directory is missing or holds no loadable model."""


class UnknownNameError(ForgetError, KeyError):
    """A name looked up in a registry is not registered."""


class UnknownMethodError(UnknownNameError):
    """An unlearning method name is not registered."""


class DuplicateNameError(ForgetError, ValueError):
    """A name is registered twice in the same registry."""


class UnknownSubjectError(ForgetError, KeyError):
    """A subject id is not present in the data."""


class RegistryError(ForgetError, RuntimeError):
    """The model registry is unreadable or inconsistent."""


class MissingExtraError(ForgetError, ImportError):
    """An optional dependency (an extra such as ``diffusion``) is not installed."""


class NothingToEditError(ForgetError, ValueError):
    """A model-editing method found no fact of the requested kinds in the forget set."""


class UnsupportedFormatError(ForgetError, ValueError):
    """A data file or directory is in a format the corpus loader does not read."""


class EmptyDataError(MalformedDataError):
    """A data file holds no records."""


class MissingColumnError(MalformedDataError):
    """A field named by ``--text-field`` / ``--id-field`` / ``--group-field`` is not in the data."""


class EncodingError(MalformedDataError):
    """A text data file is not valid UTF-8."""


class UnknownRecordError(ForgetError, KeyError):
    """A record id is not present in the corpus."""


class UnsupportedCorpusError(ForgetError, ValueError):
    """A command or function needs the generator's layout (ground truth) and got another corpus."""


class StaleIndexError(ForgetError, ValueError):
    """A corpus index was built from other data than the corpus it is used with."""


class CorpusIndexError(ForgetError, ValueError):
    """A directory is not a corpus index this version can read, or its key is missing."""


class RetrainUnavailableError(InvalidInputError):
    """Exact retraining cannot run: the model has no recorded training recipe (and is not one
    of the suite's own sizes), or its recipe cannot be re-run."""


class BaseModelChangedError(RetrainUnavailableError):
    """The base model a recorded fine-tuning recipe starts from is gone or has other weights."""


class RewindUnavailableError(InvalidInputError):
    """The ``rewind`` method cannot run: the model's line kept no epoch checkpoints, or it was
    changed since by a method whose work rewinding would throw away."""


class UnsupportedArchitectureError(InvalidInputError):
    """A method (or the suite) cannot work on a model of this architecture (``model_type``)."""


class UnsupportedUnderLaunchError(ForgetError, RuntimeError):
    """A step cannot run under a multi-process launch (``accelerate launch``, ``torchrun``)."""
