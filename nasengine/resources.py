"""Where the shipped YAML files are: ``search_spaces/`` (space files) and ``studies/`` (study configs).

In a source checkout they are the top-level folders users see, copy and edit; a wheel carries a copy
inside the package (``nasengine/_data/``, put there by ``setup.py``'s build step)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(kind: str) -> Path:
    """The folder of the shipped ``kind`` files (``"search_spaces"`` or ``"studies"``)."""
    checkout = _PACKAGE.parent / kind
    if (_PACKAGE.parent / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return _PACKAGE / "_data" / kind
