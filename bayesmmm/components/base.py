"""Registries and the base class that binds a pure PyTensor function to priors.

A transform is a small class around a pure function. The function's positional
parameters after the first (data) argument are the transform's random parameters;
its keyword-only parameters are fixed settings (``l_max`` for adstocks). The class
only declares default priors for the random parameters; this is checked when the
class is defined, so a typo fails at import time, not halfway through a fit.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from bayesmmm.components.priors import Prior

__all__ = ["Registry", "Transform", "UnknownNameError", "function_signature", "numpy_mode", "registries"]


def numpy_mode():
    """PyTensor mode that evaluates graphs with NumPy: compiles in milliseconds.

    Used for post-processing and simulation, where the arrays are whole batches and
    the per-call overhead does not matter. Fusion is off because fused Composite ops
    fall back to a Python loop per element in this linker.
    """
    from pytensor.compile.mode import Mode

    return Mode(linker="py", optimizer="fast_run").excluding("fusion", "inplace")


T = TypeVar("T", bound=type)


class UnknownNameError(KeyError, ValueError):
    """Raised when a registry lookup fails; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


def function_signature(function: Callable[..., Any]) -> tuple[list[str], dict[str, Any]]:
    """Split a transform function's signature into random parameters and settings.

    Returns
    -------
    params : list of str
        Positional parameters after the first (data) argument.
    settings : dict
        Keyword-only parameters and their defaults.
    """
    sig = inspect.signature(function)
    positional = [p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not positional:
        raise TypeError(f"{function.__name__} must take the data tensor as its first argument")
    settings = {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in sig.parameters.values()
        if p.kind == p.KEYWORD_ONLY
    }
    return positional[1:], settings


class Registry(Generic[T]):
    """A name → class registry with decorator registration.

    Examples
    --------
    >>> THINGS = Registry("thing", base=object)
    >>> @THINGS.register("mine")
    ... class Mine: ...
    >>> THINGS.get("mine") is Mine
    True
    """

    def __init__(self, kind: str, base: type) -> None:
        self.kind = kind
        self.base = base
        self._items: dict[str, type] = {}
        _REGISTRIES[kind] = self

    def register(self, name: str, *, overwrite: bool = False) -> Callable[[T], T]:
        """Class decorator registering ``cls`` under ``name``."""
        if not name or not name.replace("_", "").isalnum():
            raise ValueError(f"{self.kind} name {name!r} must be a non-empty identifier-like string")

        def decorator(cls: T) -> T:
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise TypeError(f"@{self.kind.upper()}S.register({name!r}) needs a subclass of {self.base.__name__}")
            if name in self._items and self._items[name] is not cls and not overwrite:
                existing = self._items[name]
                same = (existing.__module__, existing.__qualname__) == (cls.__module__, cls.__qualname__)
                if not same:
                    raise ValueError(
                        f"{self.kind} {name!r} is already registered by {existing.__qualname__}; "
                        "pick another name or pass overwrite=True"
                    )
            cls.name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            return cls

        return decorator

    def get(self, name: str) -> T:
        """Return the class registered as ``name``; the error lists valid names.

        A name not registered yet is looked for in the installed packages' entry points
        (group ``bayesmmm.transforms``) before giving up.
        """
        if name not in self._items:
            _load_entry_points()
        try:
            return self._items[name]  # type: ignore[return-value]
        except KeyError:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Valid {self.kind} names: {', '.join(self.names())}. "
                "Register your own with @" + f"{self.kind.upper()}S.register(name)."
            ) from None

    def names(self) -> list[str]:
        """Sorted registered names (installed entry points included)."""
        _load_entry_points()
        return sorted(self._items)

    def items(self, *, load_entry_points: bool = True) -> dict[str, type]:
        """Name → class (a copy)."""
        if load_entry_points:
            _load_entry_points()
        return dict(self._items)

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            _load_entry_points()
        return name in self._items

    def __iter__(self):
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


#: every registry by kind (``adstock``, ``saturation``, ...), in creation order
_REGISTRIES: dict[str, Registry] = {}


def registries() -> dict[str, Registry]:
    """Every component registry by kind."""
    return dict(_REGISTRIES)


#: called before a registry answers a name it does not have, or lists its names: loads the
#: installed packages' entry points (set by :mod:`bayesmmm.components` to
#: :func:`bayesmmm.components.plugins.load_entry_points`)
_before_lookup: list[Callable[[], Any]] = []


def _load_entry_points() -> None:
    for hook in _before_lookup:
        hook()


class Transform:
    """Binds a pure PyTensor ``function`` to default priors and settings.

    Subclasses set ``function`` (a staticmethod) and ``default_priors``; the
    parameter names of ``function`` after its data argument must equal the keys of
    ``default_priors``. Instances carry the priors actually used (defaults updated
    with user overrides) and the settings (keyword-only arguments of ``function``).
    """

    name: ClassVar[str] = ""
    prefix: ClassVar[str] = "transform"
    function: ClassVar[Callable[..., Any]]
    default_priors: ClassVar[Mapping[str, Prior]] = {}
    param_names: ClassVar[tuple[str, ...]] = ()
    setting_defaults: ClassVar[Mapping[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        function = cls.__dict__.get("function")
        if function is None:  # an abstract intermediate class (Adstock, Saturation)
            return
        function = function.__func__ if isinstance(function, staticmethod) else function
        if not isinstance(cls.__dict__.get("function"), staticmethod):
            cls.function = staticmethod(function)  # type: ignore[assignment]
        params, settings = function_signature(function)
        priors = {k: v if isinstance(v, Prior) else Prior.model_validate(v) for k, v in cls.default_priors.items()}
        if set(params) != set(priors):
            missing = sorted(set(params) - set(priors))
            extra = sorted(set(priors) - set(params))
            raise TypeError(
                f"{cls.__name__}: the parameters of {function.__name__}() must match default_priors; "
                f"parameters without a prior: {missing or 'none'}; priors without a parameter: {extra or 'none'}"
            )
        cls.default_priors = priors
        cls.param_names = tuple(params)
        cls.setting_defaults = settings

    def __init__(self, priors: Mapping[str, Prior | dict] | None = None, **settings: Any) -> None:
        priors = dict(priors or {})
        unknown = sorted(set(priors) - set(self.param_names))
        if unknown:
            raise ValueError(
                f"{self.prefix} {self.name!r} has no parameter(s) {unknown}; "
                f"its parameters are {list(self.param_names)}"
            )
        self.priors: dict[str, Prior] = {
            k: (priors[k] if isinstance(priors.get(k), Prior) else Prior.model_validate(priors[k]))
            if k in priors
            else self.default_priors[k]
            for k in self.param_names
        }
        unknown = sorted(set(settings) - set(self.setting_defaults))
        if unknown:
            raise ValueError(
                f"{self.prefix} {self.name!r} has no setting(s) {unknown}; "
                f"its settings are {sorted(self.setting_defaults) or 'none'}"
            )
        self.settings: dict[str, Any] = {**self.setting_defaults, **settings}

    def variable_name(self, param: str) -> str:
        """Name of the model variable holding ``param`` (e.g. ``adstock_alpha``)."""
        return f"{self.prefix}_{param}"

    @property
    def variable_names(self) -> dict[str, str]:
        """Map from parameter name to model variable name."""
        return {p: self.variable_name(p) for p in self.param_names}

    def create_priors(self, dims: tuple[str, ...]) -> dict[str, Any]:
        """Create one random variable per parameter in the current model; returns param → RV."""
        return {p: self.priors[p].create(self.variable_name(p), dims=dims) for p in self.param_names}

    def evaluate(self, x: Any, **params: Any):
        """Apply to NumPy inputs and return a NumPy array (for simulation and checks)."""
        import pytensor

        out = self.apply(x, **params)  # type: ignore[attr-defined]
        return pytensor.function([], out, mode=numpy_mode())()

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"{type(self).__name__}({settings})"
