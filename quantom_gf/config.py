"""Presets: TOML files in envs/ and strategies/, found by name or path, with ``extends``."""

from __future__ import annotations

import copy
import inspect
import os
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError

KINDS = ("envs", "strategies")


def _preset_dirs(kind: str) -> list[Path]:
    # A wheel ships envs/ and strategies/ as quantom_gf/presets/<kind> (pyproject maps them);
    # a source checkout or editable install has them beside the package.
    here = Path(__file__).resolve().parent
    return [d for d in (here / "presets" / kind, here.parent / kind) if d.is_dir()]


def available(kind: str) -> list[str]:
    """Names of the presets of one kind ("envs" or "strategies")."""
    names = set()
    for d in _preset_dirs(kind):
        names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


def find_preset(kind: str, name: str) -> Path:
    """Path of a preset given by name or by path; ConfigError listing the choices otherwise."""
    if os.sep in name or name.endswith(".toml"):
        path = Path(name)
        if path.is_file():
            return path
        raise ConfigError(f"{kind[:-1]} preset file not found: {name}")
    for d in _preset_dirs(kind):
        path = d / f"{name}.toml"
        if path.is_file():
            return path
    what = "env" if kind == "envs" else "strategy"
    raise ConfigError(f"unknown {what} '{name}'; choose one of: {', '.join(available(kind))}")


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            # A new stage name replaces the stage's settings instead of mixing two stages.
            if "name" in v and v.get("name") != out[k].get("name"):
                out[k] = copy.deepcopy(v)
            else:
                out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_preset(kind: str, name: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The preset as a dict, with its ``extends`` chain merged in (child wins)."""
    path = find_preset(kind, name)
    if str(path) in _seen:
        raise ConfigError(f"{path}: 'extends' forms a cycle")
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    parent = cfg.pop("extends", None)
    if parent is not None:
        cfg = _merge(load_preset(kind, parent, _seen + (str(path),)), cfg)
    if not _seen:
        cfg["name"] = path.stem
        cfg["source"] = str(path)
    return cfg


def check_keys(section: dict, allowed: set[str] | list[str], where: str) -> None:
    """ConfigError naming the first key of ``section`` that is not in ``allowed``."""
    for key in section:
        if key not in allowed:
            raise ConfigError(f"unknown key '{key}' in {where}; allowed: {', '.join(sorted(allowed))}")


def build(registry: dict[str, type], section: dict | None, where: str, default: str | None = None) -> tuple[Any, dict]:
    """Instantiate ``registry[section['name']]`` with the section's other keys as arguments.

    Returns the object and its resolved settings (every constructor argument, defaults included).
    """
    section = dict(section or {})
    name = section.pop("name", default)
    if name is None:
        raise ConfigError(f"{where}: missing 'name'; choose one of: {', '.join(registry)}")
    if name not in registry:
        raise ConfigError(f"{where}: unknown name '{name}'; choose one of: {', '.join(registry)}")
    cls = registry[name]
    params = {k: p for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}
    check_keys(section, params, f"[{where}] ({name})")
    try:
        obj = cls(**section)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{where}] ({name}): {exc}") from None
    resolved = {"name": name}
    for k, p in params.items():
        if k in section or p.default is not p.empty:
            resolved[k] = section.get(k, p.default)
    return obj, resolved
