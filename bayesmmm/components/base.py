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

__all__ = [
    "Registry",
    "Transform",
    "UnknownNameError",
    "check_settings",
    "function_signature",
    "numpy_mode",
    "registries",
]


def numpy_mode(fast_compile: bool = False):
    """PyTensor mode that evaluates graphs with NumPy: no C or numba compilation.

    Used for post-processing and simulation, where the arrays are whole batches and
    the per-call overhead does not matter. Fusion is off because fused Composite ops
    fall back to a Python loop per element in this linker. ``fast_compile`` runs fewer
    graph rewrites (a function called once: drawing from the priors, ~2x faster to build).
    """
    from pytensor.compile.mode import Mode

    if fast_compile:
        return Mode(linker="py", optimizer="fast_compile")
    return Mode(linker="py", optimizer="fast_run").excluding("fusion", "inplace")


T = TypeVar("T", bound=type)


class UnknownNameError(KeyError, ValueError):
    """Raised when a registry lookup fails; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


def check_settings(options: Mapping[str, Any], model: Any, *, key: str, owner: str) -> dict[str, Any]:
    """Validate a component's YAML settings against its pydantic ``model`` (None: it takes none).

    Parameters
    ----------
    options : the settings as given (e.g. ``model.trend_options``).
    model : the component's ``options_model`` (a pydantic model class) or None.
    key : the YAML key the settings come from, for the message (``"trend_options"``).
    owner : the component, for the message (``"trend 'spline'"``).

    Returns
    -------
    The settings with their defaults filled in (keywords for the component's constructor).

    Raises
    ------
    ValueError
        One line naming the component, the bad key or value, and the valid settings.
    """
    from pydantic import ValidationError

    valid = list(model.model_fields) if model is not None else []
    unknown = [k for k in options if k not in valid]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        takes = f"valid settings: {', '.join(valid)}" if valid else "it takes no settings"
        raise ValueError(f"{key}: {owner} has no setting {unknown[0]!r}{hint} ({takes})")
    if model is None:
        return {}
    try:
        return model.model_validate(dict(options)).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ValueError(
            f"{key}.{loc} of {owner}: {err['msg'].removeprefix('Value error, ')} (got {err.get('input')!r})"
        ) from None


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

    #: appended to every variable name of this instance: ``_organic`` for the organic media's own transform
    suffix: str = ""

    def variable_name(self, param: str) -> str:
        """Name of the model variable holding ``param`` (e.g. ``adstock_alpha``; ``adstock_alpha_organic`` for
        an instance with :attr:`suffix` ``_organic``)."""
        return f"{self.prefix}_{param}{self.suffix}"

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

    def sample_prior(self, n: int, seed: int | None = 0) -> dict[str, Any]:
        """Draw ``n`` values of every parameter from this instance's priors.

        Parameters
        ----------
        n : int
            Number of draws.
        seed : int or None, default 0
            Random seed (``None``: fresh entropy).

        Returns
        -------
        dict of str to numpy.ndarray
            Parameter name → array of shape ``(n, *batch)``, where ``batch`` is the shape
            of the prior's own parameters (``()`` for scalars, ``(channel,)`` for a prior
            with one value per channel).

        Examples
        --------
        >>> from bayesmmm import ADSTOCKS
        >>> ADSTOCKS.get("geometric")().sample_prior(500)["alpha"].shape
        (500,)
        """
        import numpy as np
        import pymc as pm

        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        rvs = []
        for p in self.param_names:
            prior = self.priors[p]
            batch = np.broadcast_shapes(*(np.shape(v) for v in prior.params.values()))
            rvs.append(prior.distribution(size=(int(n), *batch)))
        values = pm.draw(rvs, random_seed=seed, mode=numpy_mode()) if rvs else []
        return {p: np.asarray(v, dtype="float64") for p, v in zip(self.param_names, values, strict=True)}

    def sample_curve(self, n: int = 200, x: Any = None, seed: int | None = 0) -> tuple[Any, Any]:
        """The transform's curve at ``n`` prior draws, to see what the priors imply.

        For a saturation the curve is its response over ``x`` (in units of the channel's
        mean spend; default 0 to 4). For an adstock (a transform with ``weights``) it is
        the lag weights over lags ``0 .. l_max-1``, normalized if the adstock is.

        Parameters
        ----------
        n : int, default 200
            Number of prior draws.
        x : array-like, optional
            Inputs of a saturation's curve. An adstock's curve is over its lags: set
            ``l_max`` on the instance instead.
        seed : int or None, default 0
            Random seed of the prior draws.

        Returns
        -------
        grid : numpy.ndarray, shape (m,)
            ``x``, or the lags.
        curves : numpy.ndarray, shape (n, *batch, m)
            One curve per draw (``batch`` as in :meth:`sample_prior`).
        """
        import numpy as np
        import pytensor

        draws = self.sample_prior(n, seed=seed)
        shape, flat = flatten_draws(draws, n)
        columns = int(np.prod(shape))
        weights = getattr(self, "weights", None)
        if callable(weights):
            if x is not None:
                raise ValueError(f"{self.prefix} {self.name!r}: the curve is over lags 0..l_max-1; set l_max, not x")
            grid = np.arange(self.l_max, dtype="float64")  # type: ignore[attr-defined]
            values = np.asarray(pytensor.function([], weights(**flat), mode=numpy_mode())())
            values = np.broadcast_to(values.reshape(len(grid), -1), (len(grid), columns))
        else:
            grid = np.linspace(0.0, 4.0, 81) if x is None else np.asarray(x, dtype="float64").reshape(-1)
            values = np.asarray(self.evaluate(grid[:, None] * np.ones((1, columns)), **flat))
        return grid, np.moveaxis(values.reshape(len(grid), *shape), 0, -1)

    def plot_curve(self, ax: Any = None, n: int = 200, x: Any = None, seed: int | None = 0, n_lines: int = 5):
        """Plot the prior's curve: median, 50% and 90% bands, and a few single draws.

        A saturation's response over ``x`` or an adstock's weights over lags (see
        :meth:`sample_curve`). With a prior of one value per channel, one band per channel.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on; a new figure if omitted.
        n, x, seed
            As in :meth:`sample_curve`.
        n_lines : int, default 5
            Number of single prior draws drawn as thin lines.

        Returns
        -------
        matplotlib.axes.Axes
        """
        import numpy as np

        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6, 4))
        grid, curves = self.sample_curve(n=n, x=x, seed=seed)
        curves = curves.reshape(curves.shape[0], -1, curves.shape[-1])  # (draw, batch, point)
        for b in range(curves.shape[1]):
            c = curves[:, b]
            label = f"[{b}] " if curves.shape[1] > 1 else ""
            (median,) = ax.plot(grid, np.median(c, axis=0), lw=2, label=f"{label}median")
            colour = median.get_color()
            ax.fill_between(grid, *np.quantile(c, [0.05, 0.95], axis=0), color=colour, alpha=0.15, label=f"{label}90%")
            ax.fill_between(grid, *np.quantile(c, [0.25, 0.75], axis=0), color=colour, alpha=0.3, label=f"{label}50%")
            for row in c[: max(int(n_lines), 0)]:
                ax.plot(grid, row, color=colour, lw=0.6, alpha=0.6)
        is_adstock = callable(getattr(self, "weights", None))
        ax.set_xlabel("lag (periods)" if is_adstock else "x (multiples of mean spend)")
        ax.set_ylabel("weight" if is_adstock else "response (share of beta)")
        ax.set_title(f"{self.prefix} {self.name!r}: {len(curves)} prior draws")
        ax.legend(loc="best", fontsize="small")
        return ax


def flatten_draws(draws: Mapping[str, Any], n: int) -> tuple[tuple[int, ...], dict[str, Any]]:
    """Broadcast :meth:`Transform.sample_prior` draws to one shape and flatten them.

    Each array has shape ``(n, *batch_p)``; the ``batch_p`` broadcast together (aligned on
    the right, like the priors' parameters) to ``batch``.

    Returns
    -------
    shape : tuple of int
        ``(n, *batch)``.
    flat : dict of str to numpy.ndarray
        Parameter → 1-D array of ``n * prod(batch)`` values, draw-major.
    """
    import numpy as np

    n = int(n)
    batch = np.broadcast_shapes(*(np.shape(v)[1:] for v in draws.values())) if draws else ()
    flat = {}
    for p, v in draws.items():
        v = np.asarray(v)
        v = v.reshape(n, *(1,) * (len(batch) - (v.ndim - 1)), *v.shape[1:])
        flat[p] = np.broadcast_to(v, (n, *batch)).reshape(-1)
    return (n, *batch), flat
