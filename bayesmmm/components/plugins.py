"""Plugins: user code that registers components, and the record of it a saved model keeps.

A plugin is a Python file, an importable module, or an installed package that declares an
entry point in the group ``bayesmmm.transforms`` (its value a module, or a function called
once to register). Loading one imports it; the components it registers are then usable by
name. :func:`load_plugins` returns a :class:`PluginRecord` per plugin: what it is (file path
and SHA-256, module name, or entry point) and which names it registered. A fitted model saves
the records of the plugins its components come from (:func:`records_for`), and loading the
model checks them (:func:`ensure_plugins`): a missing or changed plugin is one line naming it
and the fix.

Entry points are loaded the first time a registry is asked for a name it does not know (or
for its list of names), so an installed package's components work everywhere with no
``plugins:`` line.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginError",
    "PluginRecord",
    "ensure_plugins",
    "load_entry_points",
    "load_plugins",
    "records_for",
]

ENTRY_POINT_GROUP = "bayesmmm.transforms"


class PluginError(ValueError):
    """A plugin cannot be found, imported, or is not the one a model was fitted with."""


@dataclass(frozen=True)
class PluginRecord:
    """What a plugin is and what it registered.

    ``kind`` is ``file`` (``spec`` an absolute path, ``sha256`` of its bytes), ``module``
    (``spec`` a module name), ``entry_point`` (``spec`` the entry point's name, ``module``
    its module) or ``script`` (classes defined in ``__main__``: a script or notebook, which
    cannot be re-imported; they must be registered before the model is loaded).
    ``registers`` maps a registry kind (``adstock``, ``saturation``, ...) to names.
    """

    kind: str
    spec: str
    module: str
    sha256: str | None = None
    registers: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PluginRecord:
        return cls(
            kind=str(data["kind"]),
            spec=str(data["spec"]),
            module=str(data.get("module") or data["spec"]),
            sha256=data.get("sha256"),
            registers={str(k): [str(n) for n in v] for k, v in (data.get("registers") or {}).items()},
        )

    def describe(self) -> str:
        names = ", ".join(f"{kind} {name!r}" for kind, items in self.registers.items() for name in items)
        what = {"file": "plugin file", "module": "plugin module", "entry_point": "entry point"}.get(self.kind, "code")
        return f"{what} {self.spec!r}" + (f" (registers {names})" if names else "")


#: module name -> record of every plugin loaded in this process
_LOADED: dict[str, PluginRecord] = {}
_ENTRY_POINTS_LOADED = False


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _registries() -> dict[str, Any]:
    from bayesmmm.components.base import registries

    return registries()


def _registered_by(module: str) -> dict[str, list[str]]:
    """Names registered by classes defined in ``module`` (or its submodules), per registry kind."""
    out: dict[str, list[str]] = {}
    for kind, registry in _registries().items():
        names = [
            name
            for name, cls in registry.items(load_entry_points=False).items()
            if cls.__module__ == module or cls.__module__.startswith(module + ".")
        ]
        if names:
            out[kind] = sorted(names)
    return out


def _file_module_name(path: Path, digest: str) -> str:
    return f"bayesmmm_plugin_{path.stem}_{digest[:12]}"


def _load_file(path: Path) -> PluginRecord:
    if not path.exists():
        raise PluginError(f"plugin file {str(path)!r} does not exist; fix the path under 'plugins:'")
    digest = file_sha256(path)
    name = _file_module_name(path, digest)
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"cannot import plugin file {str(path)!r}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise PluginError(f"plugin file {str(path)!r} failed to import ({type(exc).__name__}: {exc})") from exc
    record = PluginRecord("file", str(path), name, digest, _registered_by(name))
    _LOADED[name] = record
    return record


def _load_module(spec: str) -> PluginRecord:
    try:
        importlib.import_module(spec)
    except ImportError as exc:
        raise PluginError(
            f"cannot import plugin module {spec!r} ({exc}); install the package that provides it"
        ) from exc
    record = PluginRecord("module", spec, spec, None, _registered_by(spec))
    _LOADED[spec] = record
    return record


def load_plugins(specs: Iterable[str], base_dir: str | Path | None = None) -> list[PluginRecord]:
    """Import plugin files (``*.py`` or existing paths, relative to ``base_dir`` or the working
    folder) or modules, so their registrations take effect; return a record of each.

    Importing the same file twice (same content) is a no-op; an edited file is imported again
    under a new module name, so its new definitions win.
    """
    records = []
    for spec in specs:
        spec = str(spec)
        path = Path(spec).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if spec.endswith(".py") or path.exists():
            records.append(_load_file(path.resolve()))
        else:
            records.append(_load_module(spec))
    return records


def load_entry_points() -> list[PluginRecord]:
    """Load every installed entry point of the group ``bayesmmm.transforms`` (once per process)."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return [r for r in _LOADED.values() if r.kind == "entry_point"]
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    records = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = ep.load()
            if callable(target):
                target()
        except Exception as exc:
            raise PluginError(
                f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} failed to load "
                f"({type(exc).__name__}: {exc}); fix or uninstall the package that declares it"
            ) from exc
        module = ep.module
        record = PluginRecord("entry_point", ep.name, module, None, _registered_by(module))
        _LOADED[module] = record
        records.append(record)
    return records


def records_for(classes: Iterable[type]) -> list[PluginRecord]:
    """The plugin records that the given component classes come from (built-ins have none).

    A class defined in a module that was not loaded as a plugin (a script's ``__main__``, a
    notebook) gets a ``module`` record with the module's name: loading the model then needs
    that module importable, or the class registered first.
    """
    out: dict[str, PluginRecord] = {}
    for cls in classes:
        module = cls.__module__
        if module == "bayesmmm" or module.startswith("bayesmmm."):
            continue
        record = next(
            (r for m, r in _LOADED.items() if module == m or module.startswith(m + ".")),
            None,
        )
        if record is None and module in ("__main__", "__mp_main__"):  # a script's or notebook's own class
            record = PluginRecord("script", module, module, None, _registered_by(module))
        elif record is None:
            record = PluginRecord("module", module, module, None, _registered_by(module))
        out[record.module] = record
    return list(out.values())


def _satisfied(record: PluginRecord) -> bool:
    """Whether every name the record registered is registered now by the same code."""
    registries = _registries()
    for kind, names in record.registers.items():
        registry = registries.get(kind)
        if registry is None:
            return False
        for name in names:
            cls = registry.items(load_entry_points=False).get(name)
            if cls is None:
                return False
            if record.kind == "file":
                loaded = _LOADED.get(cls.__module__)
                if loaded is None or loaded.sha256 != record.sha256:
                    return False
    return True


def ensure_plugins(records: Iterable[PluginRecord | dict[str, Any]], *, import_code: bool = True) -> None:
    """Make sure the plugins a model was fitted with are loaded, unchanged.

    Parameters
    ----------
    records : the model's plugin records.
    import_code : import what is missing (files by their recorded path, modules by name).
        ``False`` (the service) only checks that the components are registered already,
        e.g. by ``serve --plugin FILE`` or an installed package.

    Raises
    ------
    PluginError
        one line naming the plugin and the fix.
    """
    for record in records:
        if isinstance(record, dict):
            record = PluginRecord.from_dict(record)
        if _satisfied(record):
            continue
        if record.kind == "script":
            raise PluginError(
                f"the model uses {record.describe()}, defined in a script or notebook rather than a plugin: run the "
                "code that registers it before loading the model, or move it into a plugin file and fit again"
            )
        if record.kind == "entry_point" or not import_code:
            load_entry_points()
            if _satisfied(record):
                continue
        if not import_code:
            hint = f"--plugin {record.spec}" if record.kind == "file" else f"--plugin {record.module}"
            raise PluginError(
                f"the model needs {record.describe()}, which is not loaded; the service imports plugin code only "
                f"when told to: start it with {hint} (or install the package that provides it)"
            )
        if record.kind == "file":
            path = Path(record.spec)
            if not path.exists():
                raise PluginError(
                    f"the model needs {record.describe()}, which is missing; restore the file at that path "
                    "(or load the model after importing the same code with bayesmmm.load_plugins)"
                )
            digest = file_sha256(path)
            if digest != record.sha256:
                raise PluginError(
                    f"{record.describe()} changed since the model was fitted (sha256 {digest[:12]}, "
                    f"model has {str(record.sha256)[:12]}); restore the file the model was fitted with, or fit again"
                )
            load_plugins([str(path)])
        elif record.kind == "module":
            try:
                load_plugins([record.module])
            except PluginError:
                raise PluginError(
                    f"the model needs {record.describe()}, which cannot be imported; install it or put it on "
                    "PYTHONPATH (a component defined in a script must be registered before loading the model)"
                ) from None
        else:
            raise PluginError(
                f"the model needs {record.describe()}, which is not installed; install the package that declares it"
            )
        if not _satisfied(record):
            raise PluginError(
                f"{record.describe()} was loaded but does not register the same names any more; fit again"
            )
