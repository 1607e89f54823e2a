"""Pretraining methods as plug-ins: one module per method, a registry of names.

>>> from pclkit.methods import get_method, method_names
>>> method_names()
('pcl', 'simclr')
>>> get_method("simclr").features
('F_s',)

Adding a method = one module here that subclasses :class:`Method` and is
decorated with :func:`register`, plus a preset. Nothing else names methods.
"""

from __future__ import annotations

from pclkit.methods.base import Method, Step

__all__ = [
    "DEFAULT_METHOD",
    "MAIN_COMPARISON",
    "Method",
    "Step",
    "ablation_rows",
    "get_method",
    "method_names",
    "register",
    "method_label",
    "label_to_name",
]

_REGISTRY: dict[str, type[Method]] = {}

#: the main job's comparison: the baseline first, the method of the paper last
MAIN_COMPARISON: tuple[str, ...] = ("simclr", "pcl")
#: the method of a config that names none
DEFAULT_METHOD = "pcl"


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if not cls.name or not cls.label:
        raise ValueError(f"{cls.__name__} must set the class attributes name and label")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a method named {cls.name!r} is already registered ({_REGISTRY[cls.name].__name__})")
    _REGISTRY[cls.name] = cls
    return cls


def method_names() -> tuple[str, ...]:
    """Registered method names, sorted."""
    return tuple(sorted(_REGISTRY))


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name``; an unknown name lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(method_names())}") from None


def ablation_rows() -> dict[str, dict]:
    """Every method's named ablation rows (config overrides), e.g. PCL's Table 5 rows."""
    rows: dict[str, dict] = {}
    for name in method_names():
        rows.update({row: dict(overrides) for row, overrides in _REGISTRY[name].ablations.items()})
    return rows


def method_label(name: str) -> str:
    """Display label of a method name (``simclr`` -> ``SimCLR``); unknown names pass through."""
    cls = _REGISTRY.get(name)
    return cls.label if cls is not None else name


def label_to_name(label: str) -> str | None:
    """Method name of a display label (``PCL`` -> ``pcl``), or None."""
    return next((cls.name for cls in _REGISTRY.values() if cls.label == label), None)


# the built-in methods register themselves on import
from pclkit.methods import pcfrl as _pcfrl  # noqa: E402,F401
from pclkit.methods import pcl as _pcl  # noqa: E402,F401
from pclkit.methods import pros as _pros  # noqa: E402,F401
from pclkit.methods import simclr as _simclr  # noqa: E402,F401
