"""The shared unlearning core: method interface, losses, trainer, forget/retain sets."""

from forget.core.data import Example, ForgetSet, RetainSet, code_sets, subject_sets
from forget.core.method import METHODS, Method, MethodConfig, UnlearnResult, get_method

__all__ = ["METHODS", "Example", "ForgetSet", "Method", "MethodConfig", "RetainSet",
           "UnlearnResult", "code_sets", "get_method", "subject_sets"]
