"""Errors shared across modules, kept apart so importing them never pulls in TensorFlow.

The UI shows the message of each as it is (one sentence), so they are worded for a user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights cannot be had here (package not installed, download failed)."""


class ImageLoadError(ValueError):
    """An input that is not a readable, reasonably sized image; the message names it."""


class UnknownNameError(ValueError):
    """A name that is none of the valid choices: model, layer, metric, dataset, recipe, ...

    One wording everywhere ("Unknown model 'x'; choose one of: a, b"), so a user, the command
    line and the API read the same sentence. A ValueError, so callers that catch bad values
    keep working.
    """

    def __init__(self, kind: str, name: object, choices: Iterable[str], where: str = "") -> None:
        self.kind, self.name, self.choices = kind, name, tuple(choices)
        super().__init__(
            f"Unknown {kind} {name!r}{where}; choose one of: {', '.join(self.choices)}"
        )


def choose(kind: str, name: str, choices: Mapping[str, T], where: str = "") -> T:
    """``choices[name]``, or UnknownNameError listing the valid names."""
    try:
        return choices[name]
    except (KeyError, TypeError):
        raise UnknownNameError(kind, name, choices, where) from None
