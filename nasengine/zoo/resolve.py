"""The one resolver: a published name, a genotype's text, or a stored trial -> a genotype and its space.

Every command that takes "a genotype" (``train``, ``export``, ``params``, ``draw``, ``show --png``,
``search --init``) resolves it here, so a name, a text and a trial mean the same thing everywhere.
With ``validate=False`` (drawing) a genotype that fits no space is still read, as it is written.
A cell genotype's text always contains ``~``; a block genotype's never does (``core.blocks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nasengine.core.blocks import Blocks
from nasengine.core.genotype import Genotype
from nasengine.errors import NasError, did_you_mean
from nasengine.spaces.base import AnyGenotype
from nasengine.spaces.cell import load_space, parse_nasbench201, space_names
from nasengine.zoo.presets import PUBLISHED_SPACES
from nasengine.zoo.published import PUBLISHED

_FIT_ORDER = ("nasnet", "pnasnet", "darts", "nasbench201")  # tried first, in this order
_TRIAL_SCALING = {"width": "width", "depth": "depth", "resolution": "image_size"}  # trial attr -> setting


@dataclass(frozen=True)
class Resolved:
    genotype: AnyGenotype
    space: str | None  # the space it was read in or fits (None: read as written, in no space)
    label: str  # the published name, "genotype", or "study NAME trial N"
    published: str | None = None
    study: str | None = None  # a stored trial's study, its attrs and the FrozenTrial itself
    study_attrs: dict[str, Any] = field(default_factory=dict)
    trial: Any = None


def fitting_space(g_or_text: AnyGenotype | str) -> tuple[AnyGenotype, str]:
    """``(genotype, name of the first space whose rules it meets)``: the built-in cell spaces first,
    then the other spaces in ``search_spaces/``. NasError when none fits."""
    names = space_names()
    errors: dict[str, NasError] = {}
    for name in [n for n in _FIT_ORDER if n in names] + [n for n in names if n not in _FIT_ORDER]:
        space = load_space(name)
        try:
            return (space.parse(g_or_text) if isinstance(g_or_text, str) else space.validate(g_or_text)), name
        except NasError as e:
            errors[name] = e
    raise NasError(f"no search space fits genotype {str(g_or_text)[:60]!r}: {_why_none_fits(g_or_text, errors)}")


def _why_none_fits(g_or_text: AnyGenotype | str, errors: dict[str, NasError]) -> str:
    """The bad op and the spaces it is in none of; else the first space with all the genotype's ops and
    why that space refuses it."""
    try:
        ops = (_as_written(g_or_text) if isinstance(g_or_text, str) else g_or_text).ops()
    except NasError as e:
        return str(e)
    every = {op for name in errors for op in load_space(name).ops}
    bad = sorted(ops - every)
    if bad:
        return f"op {bad[0]!r} is in no search space{did_you_mean(bad[0], every)} ({', '.join(errors)})"
    name = next((n for n in errors if ops <= set(load_space(n).ops)), next(iter(errors)))
    return f"in space {name}: {errors[name]}; name its space with --space"


def _as_written(text: str) -> AnyGenotype:
    if "~" not in text:
        return Blocks.parse(text)
    return parse_nasbench201(text) if text.startswith("|") else Genotype.parse(text)


def _is_block_text(text: str) -> bool:
    try:
        Blocks.parse(text)
    except NasError:
        return False
    return True


def resolve_text(text: str, space: str | None = None, validate: bool = True) -> Resolved:
    """A published name or a genotype's text.

    A published genotype goes with the space its paper's network belongs with (or, where it breaks
    that space's rules, the first space it fits) unless ``space`` is named; a text is read in
    ``space``'s notation and checked there when one is named, else in the first space it fits."""
    text = text.strip()
    if text in PUBLISHED:
        g = PUBLISHED[text]
        if space is not None:
            return Resolved(load_space(space).validate(g) if validate else g, space, text, published=text)
        home = PUBLISHED_SPACES[text]  # its paper's network; a space it also fits, if it breaks that one's rules
        try:
            load_space(home).validate(g)
        except NasError:
            try:
                home = fitting_space(g)[1]
            except NasError:
                pass
        return Resolved(g, home, text, published=text)
    if not any(ch in text for ch in "~:|") and not _is_block_text(text):
        raise NasError(f"no published genotype {text!r}{did_you_mean(text, PUBLISHED)} (known: {', '.join(PUBLISHED)})")
    if space is not None:
        return Resolved(load_space(space).parse(text), space, "genotype")
    try:
        return Resolved(*fitting_space(text), "genotype")
    except NasError:
        if validate:
            raise
    return Resolved(_as_written(text), None, "genotype")


def trial_genotype(trial: Any, space: str | None, validate: bool = True) -> AnyGenotype:
    """A stored trial's genotype: its ``genotype`` user attr (read in ``space``), else its params."""
    loaded = None
    if space:
        try:
            loaded = load_space(space)
        except NasError:
            if validate:
                raise
    text = trial.user_attrs.get("genotype")
    if isinstance(text, str) and text.strip():
        if loaded is not None:
            try:
                return loaded.parse(text)
            except NasError:
                if validate:
                    raise
        elif validate:
            raise NasError(f"trial {trial.number} does not say which space it belongs to; pass --space")
        return _as_written(text.strip())  # e.g. a published cell outside the space: drawn all the same
    if loaded is not None and trial.params:
        return loaded.from_params(trial.params)
    raise NasError(f"trial {trial.number} records no genotype (no 'genotype' user attr)")


def study_space(study_attrs: dict[str, Any]) -> str | None:
    """The space a study searched: its configuration's (a name or a YAML path), else its ``space`` attr."""
    return (study_attrs.get("config") or {}).get("space") or study_attrs.get("space")


def trial_network(study_attrs: dict[str, Any], trial: Any) -> dict[str, Any] | None:
    """The network a stored trial was trained as: its study's network settings, with the trial's own
    ``width``, ``depth`` and ``resolution`` where it records them (each trial of a scaling study is the
    base network scaled); None when the study records no network."""
    network = study_attrs.get("network")
    if not isinstance(network, dict):
        return None
    attrs = trial.user_attrs
    return {**network, **{key: attrs[attr] for attr, key in _TRIAL_SCALING.items() if attr in attrs}}


def resolve_trial(storage: str, study_name: str | None, number: int | None = None, space: str | None = None,
                  validate: bool = True) -> Resolved:
    """Trial ``number`` of a stored study (its best COMPLETE trial when None)."""
    from nasengine.storage import open_study, pick_trial

    study = open_study(storage, study_name)
    trial = pick_trial(study, number)
    attrs = study.user_attrs
    space = space or study_space(attrs)
    if validate and not space:
        raise NasError(f"study {study.study_name!r} does not say which space it searched; pass --space")
    g = trial_genotype(trial, space, validate)
    return Resolved(g, space, f"study {study.study_name} trial {trial.number}", study=study.study_name,
                    study_attrs=attrs, trial=trial)
