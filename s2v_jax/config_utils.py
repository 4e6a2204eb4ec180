"""Loading ml_collections config files with `field.sub=value` overrides.

Errors name the file or the field, in one line, so the CLI can print them
without a traceback.

The schema: every field the code reads is declared, with its comment, in one
config file per model family (`SCHEMAS`: configs/default.py for the generator,
configs/deblur.py, configs/syncnet.py for the judges); the code reads fields as
attributes, never with a hidden default. A config file that lacks a field is
refused at load, naming it (`missing_fields`). A config stored with a checkpoint
or an export before a field existed gets the schema's value
(`with_schema_defaults`), which is the behaviour it was trained with.
"""

import ast
import importlib.util
import json
import os
from typing import Any, Dict, Iterable, Optional

import ml_collections

from s2v_jax.errors import ConfigError


def load_config(path: str, overrides: Optional[Iterable[str]] = None) -> ml_collections.ConfigDict:
    """Runs `get_config()` of the Python file at `path`, then applies overrides.

    `overrides` are strings like `"train.batch_size=8"`; values are parsed as
    Python literals where they can be (`8`, `1e-3`, `(1, 2)`, `True`), else kept
    as strings.
    """
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path!r} (give a path such as configs/default.py)")
    spec = importlib.util.spec_from_file_location(f"_s2v_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a user's file: report, don't crash deep inside importlib
        raise ConfigError(f"config file {path!r} could not be loaded: {type(e).__name__}: {e}") from e
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file {path!r} has no get_config() function")
    config = module.get_config()
    require_fields(config, f"config file {path!r}")
    for item in overrides or ():
        apply_override(config, item, source=path)
    return config


SCHEMAS = {"speech2vid": "default", "deblur": "deblur", "syncnet": "syncnet"}  # model.name -> configs/<file>.py


def _schema_name(config: ml_collections.ConfigDict) -> str:
    name = config.model.name if "model" in config and "name" in config.model else "speech2vid"
    if name not in SCHEMAS:
        raise ConfigError(f"model.name must be one of {sorted(SCHEMAS)}, not {name!r}")
    return SCHEMAS[name]


def schema_file(config: ml_collections.ConfigDict) -> str:
    return f"configs/{_schema_name(config)}.py"


def schema(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The declared config of `config`'s model family (its schema, with the declared values)."""
    import importlib

    return importlib.import_module(f"configs.{_schema_name(config)}").get_config()


def _missing(config, declared, prefix=""):
    out = []
    for k, v in declared.items():
        if k not in config:
            out.append(prefix + k)
        elif isinstance(v, ml_collections.ConfigDict) and isinstance(config[k], ml_collections.ConfigDict):
            out.extend(_missing(config[k], v, f"{prefix}{k}."))
    return out


def require_fields(config: ml_collections.ConfigDict, what: str = "the config") -> None:
    """A ConfigError naming the schema's fields `config` lacks (`what` names the config), if any."""
    missing = missing_fields(config)
    if missing:
        raise ConfigError(f"{what} lacks fields the code reads: {', '.join(missing[:8])}"
                          f"{' ...' if len(missing) > 8 else ''}; start it from {schema_file(config)}'s "
                          "get_config(), which declares every field")


def missing_fields(config: ml_collections.ConfigDict) -> list:
    """Dotted names of the schema's fields that `config` lacks."""
    return _missing(config, schema(config))


def stored_config(d: Dict[str, Any]) -> ml_collections.ConfigDict:
    """A config stored as JSON (a checkpoint's, an export's), completed from the schema."""
    return with_schema_defaults(config_from_json_dict(d))


def with_schema_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A stored config (a checkpoint's, an export's) with every field it lacks set to the schema's value."""
    def fill(node, declared):
        for k, v in declared.items():
            if k not in node:
                node[k] = v
            elif isinstance(v, ml_collections.ConfigDict) and isinstance(node[k], ml_collections.ConfigDict):
                fill(node[k], v)

    config = ml_collections.ConfigDict(config.to_dict())
    fill(config, schema(config))
    return config


def apply_override(config: ml_collections.ConfigDict, item: str, source: str = "config") -> None:
    """Sets one `a.b.c=value` override, refusing fields the config does not have."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form field=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if key.startswith("config."):
        key = key[len("config."):]
    node = config
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
            known = ", ".join(sorted(node.keys())) if isinstance(node, (ml_collections.ConfigDict, dict)) else ""
            raise ConfigError(f"unknown config field {key!r} in {source} (known at this level: {known})")
        if i < len(parts) - 1:
            node = node[part]
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    current = node[parts[-1]]
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    try:
        node[parts[-1]] = value
    except TypeError as e:
        raise ConfigError(f"config field {key!r}: cannot set {raw!r} ({e})") from e


def config_to_json_dict(config: ml_collections.ConfigDict) -> Dict[str, Any]:
    """The config as plain JSON types (tuples become lists)."""
    return json.loads(config.to_json_best_effort())


def config_from_json_dict(d: Dict[str, Any]) -> ml_collections.ConfigDict:
    """Inverse of `config_to_json_dict`; lists become tuples, as the configs write sequences."""
    def fix(v):
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return tuple(fix(x) for x in v)
        return v
    return ml_collections.ConfigDict(fix(d))
