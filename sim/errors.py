"""Error types of the simulator.

Every problem with user input (a network file, a scenario, a CLI argument, a parameter out of
range) raises :class:`ModelError` or one of its subclasses. It is a :class:`ValueError`, so code
that already catches ``ValueError`` keeps working, and its message always names *where* the
problem is (file, node, lane or field) and *what* is wrong, so the CLI can print it in one line.
"""

from __future__ import annotations

__all__ = ["ModelError", "NetworkError", "ScenarioError", "format_location"]


def format_location(file: str | None = None, where: str | None = None, field: str | None = None) -> str:
    """Join the parts of an error location into ``file: where: field``, skipping empty parts."""
    return ": ".join(str(p) for p in (file, where, field) if p)


class ModelError(ValueError):
    """Invalid model input: the message names the file, the node, lane or field, and the problem.

    Parameters
    ----------
    message:
        What is wrong, e.g. ``"must be >= 0, got -5"``.
    file, where, field:
        Optional location parts; they are prefixed to the message.
    """

    def __init__(self, message: str, *, file: str | None = None, where: str | None = None,
                 field: str | None = None) -> None:
        self.file = file
        self.where = where
        self.field = field
        self.problem = message
        loc = format_location(file, where, field)
        super().__init__(f"{loc}: {message}" if loc else message)

    def with_file(self, file: str) -> "ModelError":
        """Return a copy of this error that also names *file* (used by the TOML loaders)."""
        if self.file:
            return self
        return type(self)(self.problem, file=file, where=self.where, field=self.field)


class NetworkError(ModelError):
    """A network definition is invalid (schema, references, shares, reachability)."""


class ScenarioError(ModelError):
    """A scenario definition is invalid (dates, event parameters, references to the network)."""
