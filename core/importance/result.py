"""Importance results: scores and channel orders per criterion and unit, with provenance and costs,
and `compute_importance`, the one job the CLI and the GUI run.

A result is saved as two files written atomically: `PREFIX.npz` (the arrays) and `PREFIX.json`
(everything else, including a checksum of the arrays, so a json never silently pairs with another
run's arrays or with damaged ones; also the npz's file SHA-256, which older versions check). JSON is
the commit point: the npz is written first.
"""

from __future__ import annotations

from core.errors import InputError

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np

from core.importance.calibration import CalibrationProvenance, CalibrationSet
from core.importance.criteria import CRITERIA, DATA_FREE, channel_order
from core.importance.gradient import GRADIENT_METHODS, GradientConfig
from core.importance.stats import Measurement, Meter, StatsConfig, collect_statistics, model_device
from core.io import SNIFF_BYTES, ZIP_MAGIC, atomic_write_bytes, atomic_write_text, looks_like, zip_end_missing
from core.jobs import CancelToken, Progress, no_progress
from core.model.digest import weights_digest
from core.model.os2d import OS2DModel
from core.prune.plan import ImportanceLike, PlanError
from core.prune.units import Unit, find_units

FORMAT_NAME = "os2d-studio-importance"
FORMAT_VERSION = 1
ALL_CRITERIA = tuple(CRITERIA) + tuple(GRADIENT_METHODS)
GRADIENT_FREE = tuple(CRITERIA)
GRADIENT_DESCRIPTIONS = {"taylor": "Taylor |a·∂L/∂a|: one backward pass for all units",
                         "lcp": "Layer-wise LCP reference: one backward pass per unit (the slowest)"}
STAGED = "_staged"  # a ranking `prune-stages` assembled from its stages ("lcp_staged"): read, never computed here
_SEP = "|"


def staged_criterion(criterion: str) -> str:
    """The name of the ranking `core.train.staged` saves from its stages' `criterion` scores."""
    return criterion + STAGED


def describe_criterion(name: str) -> str:
    """What a criterion name in an importance result means, in one line (tooltips, listings)."""
    if name in CRITERIA:
        return CRITERIA[name].description
    if name in GRADIENT_DESCRIPTIONS:
        return GRADIENT_DESCRIPTIONS[name]
    base = name[: -len(STAGED)] if name.endswith(STAGED) else ""
    if base in ALL_CRITERIA:
        return (f"{base} ranked stage by stage by prune-stages, each stage's units on the model the earlier "
                "stages left (a reference read from OUT.stages/, not computed here)")
    return ""


class ImportanceFileError(InputError):
    """An importance file that cannot be used; the message names the file and the problem."""


DAMAGED = "damaged: content does not match its checksum"
ARRAYS_CHECKSUM_KEY = "arrays_sha256"


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the arrays in sorted name order (name, dtype, shape, raw bytes): independent of how
    the npz zip is laid out, so only a change of content changes it."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\n{name}\0{a.dtype.str}\0{list(a.shape)}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _read_json(path: Path):
    """The json of a result, with errors in our words."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ImportanceFileError(path, f"cannot read JSON ({e.strerror or type(e).__name__})") from None
    except UnicodeDecodeError:
        kind = looks_like(path.read_bytes()[:SNIFF_BYTES])
        raise ImportanceFileError(path, f"cannot read JSON (it looks like {kind})" if kind
                                  else "cannot read JSON (not UTF-8 text)") from None
    if not text.strip():
        raise ImportanceFileError(path, "cannot read JSON (the file is empty)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        kind = looks_like(text[:SNIFF_BYTES].encode())
        where = f"invalid at line {e.lineno}, column {e.colno}"
        raise ImportanceFileError(path, f"cannot read JSON ({where}; it looks like {kind})" if kind and kind != "a JSON file"
                                  else f"cannot read JSON ({where})") from None
    except RecursionError:
        raise ImportanceFileError(path, "cannot read JSON (nested too deeply)") from None


def _read_npz(path: Path, data: bytes) -> tuple[dict[str, np.ndarray], str]:
    """(arrays, "") or ({}, what is wrong) for the bytes of an npz, in our words."""
    if not data:
        return {}, "the file is empty"
    if len(data) < len(ZIP_MAGIC) and ZIP_MAGIC.startswith(data):
        return {}, f"truncated or corrupt: {len(data):,} bytes, expected more"
    if not data.startswith(ZIP_MAGIC):
        kind = looks_like(data[:SNIFF_BYTES])
        return {}, f"it looks like {kind}" if kind else "not an npz archive"
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except Exception:  # BadZipFile, struct.error, ... on a damaged archive
        if zip_end_missing(path, len(data)):
            return {}, f"truncated or corrupt: {len(data):,} bytes, expected more"
        return {}, "corrupt: its table of contents is damaged"
    with zf:
        if zf.testzip() is not None:
            return {}, DAMAGED
        if not all(n.endswith(".npy") for n in zf.namelist()):
            return {}, "not an npz archive: it holds other files"
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}, ""
    except zipfile.BadZipFile as e:
        return {}, DAMAGED if "CRC" in str(e) else "corrupt: an entry of the archive is damaged"
    except Exception:  # numpy's format reader raises ValueError, EOFError, OSError, ... on damaged arrays
        return {}, "corrupt: an array in it cannot be read"


@dataclass(frozen=True, eq=False)
class ImportanceResult:
    units: tuple[str, ...]  # in model order
    channels: tuple[int, ...]
    scores: Mapping[str, Mapping[str, np.ndarray]]  # criterion → unit → [C] float64, higher = more important
    orders: Mapping[str, Mapping[str, np.ndarray]]  # criterion → unit → channel indices, most important first
    calibration: CalibrationProvenance
    model: Mapping[str, object] = field(default_factory=dict)  # sha256, path, config
    timings: Mapping[str, Measurement] = field(default_factory=dict)  # "statistics", "lcp", "taylor", criteria
    stats_config: StatsConfig = StatsConfig()
    gradient_config: GradientConfig = GradientConfig()
    device: str = "cpu"

    @property
    def criteria(self) -> tuple[str, ...]:
        return tuple(self.scores)

    def score(self, criterion: str, unit: str) -> np.ndarray:
        return self.scores[criterion][unit]

    def order(self, criterion: str, unit: str) -> np.ndarray:
        return self.orders[criterion][unit]

    # -- files --------------------------------------------------------------------------------------
    def to_json(self, npz_name: str = "", npz_sha256: str = "") -> dict:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "npz": npz_name,
            "npz_sha256": npz_sha256,
            "units": [{"name": n, "channels": c} for n, c in zip(self.units, self.channels)],
            "criteria": list(self.criteria),
            "calibration": self.calibration.to_json(),
            "model": dict(self.model),
            "timings": {k: v.to_json() for k, v in self.timings.items()},
            "stats_config": self.stats_config.to_json(),
            "gradient_config": self.gradient_config.to_json(),
            "device": self.device,
        }

    def save(self, path_prefix: str | os.PathLike) -> tuple[Path, Path]:
        """Write PREFIX.npz then PREFIX.json, each atomically; returns both paths."""
        npz_path, json_path = _paths(path_prefix)
        arrays = {}
        for crit in self.criteria:
            for unit in self.units:
                arrays[f"score{_SEP}{crit}{_SEP}{unit}"] = np.asarray(self.scores[crit][unit], dtype=np.float64)
                arrays[f"order{_SEP}{crit}{_SEP}{unit}"] = np.asarray(self.orders[crit][unit], dtype=np.int64)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = buf.getvalue()
        atomic_write_bytes(npz_path, data)
        meta = self.to_json(npz_path.name, hashlib.sha256(data).hexdigest())
        meta[ARRAYS_CHECKSUM_KEY] = arrays_digest(arrays)
        atomic_write_text(json_path, json.dumps(meta, indent=1, sort_keys=False) + "\n")
        return npz_path, json_path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ImportanceResult":
        """Read PREFIX.json and its npz (PATH may be the prefix or either file).

        The arrays are checked against the checksum the json records; files saved before it carry
        only the npz's file hash, which is checked instead."""
        npz_default, json_path = _paths(path)
        if json_path.is_dir():
            raise ImportanceFileError(json_path, "is a directory, expected an importance result (PREFIX.json)")
        if not json_path.is_file():
            raise ImportanceFileError(json_path, "importance result not found (expected PREFIX.json beside PREFIX.npz)")
        meta = _read_json(json_path)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise ImportanceFileError(json_path, f"not an os2d-studio importance result (format "
                                                 f"{meta.get('format') if isinstance(meta, dict) else None!r})")
        version = meta.get("version")
        if "version" not in meta:
            raise ImportanceFileError(json_path, "malformed result (missing field 'version')")
        if isinstance(version, bool) or not isinstance(version, int):
            raise ImportanceFileError(json_path, f"malformed result ('version' must be a whole number, got "
                                                 f"{str(version)[:40]!r})")
        if version > FORMAT_VERSION:
            raise ImportanceFileError(json_path, f"written by a newer os2d-studio (version {version}); please upgrade")

        def field(key: str, parse, what: str, default=KeyError):
            """meta[key] parsed, or a one-line error saying what the field should be."""
            if key not in meta and default is KeyError:
                raise ImportanceFileError(json_path, f"malformed result (missing field '{key}')")
            try:
                return parse(meta.get(key, default))
            except (KeyError, TypeError, ValueError, AttributeError):
                raise ImportanceFileError(json_path, f"malformed result ('{key}' must be {what})") from None

        def unit(u: dict) -> tuple[str, int]:
            name, channels = u["name"], u["channels"]
            if not isinstance(name, str) or isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
                raise ValueError
            return name, channels

        def names(v: list) -> list[str]:
            if not all(isinstance(c, str) for c in v):
                raise ValueError
            return list(v)

        def file_name(v) -> str:
            if v is None:
                return ""
            if not isinstance(v, str) or Path(v).name != v:
                raise ValueError
            return v

        units = field("units", lambda v: [unit(u) for u in v], "a list of {name, channels} with a positive whole "
                                                                "number of channels")
        criteria = field("criteria", names, "a list of names")
        calibration = field("calibration", CalibrationProvenance.from_json, "a calibration record")
        timings = field("timings", lambda v: {k: Measurement.from_json(m) for k, m in v.items()},
                        "a mapping of job name to a measurement", {})
        stats_config = field("stats_config", StatsConfig.from_json, "a statistics configuration", {})
        gradient_config = field("gradient_config", GradientConfig.from_json, "a gradient configuration", {})
        model_info = field("model", dict, "a mapping", {})
        npz_name = field("npz", file_name, "the file name of the arrays beside the json", "")
        npz_path = json_path.parent / npz_name if npz_name else npz_default
        if npz_path.is_dir():
            raise ImportanceFileError(npz_path, f"is a directory, expected the arrays file named by {json_path.name}")
        if not npz_path.is_file():
            raise ImportanceFileError(npz_path, f"arrays file missing (named by {json_path.name})")
        try:
            data = npz_path.read_bytes()
        except OSError as e:
            raise ImportanceFileError(npz_path, f"cannot read the file ({e.strerror or type(e).__name__})") from None
        recorded_file = meta.get("npz_sha256")
        file_changed = bool(recorded_file) and hashlib.sha256(data).hexdigest() != recorded_file
        arrays, problem = _read_npz(npz_path, data)
        if problem == DAMAGED:
            raise ImportanceFileError(npz_path, DAMAGED)
        if problem:
            raise ImportanceFileError(npz_path, f"does not match {json_path.name} ({problem})" if file_changed
                                      else f"not a readable npz ({problem})")
        recorded = meta.get(ARRAYS_CHECKSUM_KEY)
        if recorded is not None:
            if recorded != arrays_digest(arrays):
                raise ImportanceFileError(npz_path, DAMAGED)
        elif file_changed:
            raise ImportanceFileError(npz_path, f"does not match {json_path.name} (changed or from another save)")
        scores: dict[str, dict[str, np.ndarray]] = {}
        orders: dict[str, dict[str, np.ndarray]] = {}
        for crit in criteria:
            scores[crit], orders[crit] = {}, {}
            for name, c in units:
                for kind, dest in (("score", scores), ("order", orders)):
                    key = f"{kind}{_SEP}{crit}{_SEP}{name}"
                    if key not in arrays:
                        raise ImportanceFileError(npz_path, f"missing {kind}s of criterion '{crit}' for unit {name} "
                                                            f"(listed in {json_path.name})")
                    if arrays[key].shape != (c,):
                        raise ImportanceFileError(npz_path, f"{kind}s of '{crit}' for unit {name} have shape "
                                                            f"{arrays[key].shape}; {json_path.name} says ({c},)")
                    if kind == "order" and not np.array_equal(np.sort(arrays[key]), np.arange(c)):
                        raise ImportanceFileError(npz_path, f"orders of '{crit}' for unit {name} are not a "
                                                            f"permutation of its {c} channels")
                    dest[crit][name] = arrays[key]
        return cls(units=tuple(n for n, _ in units), channels=tuple(c for _, c in units),
                   scores=_frozen(scores), orders=_frozen(orders), calibration=calibration,
                   model=model_info, timings=timings, stats_config=stats_config,
                   gradient_config=gradient_config, device=str(meta.get("device", "cpu")))


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    base = p.with_suffix("") if p.suffix.lower() in (".npz", ".json") else p
    return base.with_name(base.name + ".npz"), base.with_name(base.name + ".json")


def _frozen(d: dict[str, dict[str, np.ndarray]]) -> Mapping[str, Mapping[str, np.ndarray]]:
    for per_unit in d.values():
        for a in per_unit.values():
            a.setflags(write=False)
    return MappingProxyType({k: MappingProxyType(v) for k, v in d.items()})


# -- the job ----------------------------------------------------------------------------------------

PASS = 20  # progress units of one image's forward pass (scoring a criterion from statistics: one unit)
DATA_FREE_PROVENANCE = CalibrationProvenance(dataset="", split="", image_ids=(), target_size=0.0, seed=0,
                                             selection="none (computed from the weights)")


def data_free(criteria: Sequence[str]) -> bool:
    """True when every criterion reads only the weights (`DATA_FREE`): no images needed."""
    return all(c in DATA_FREE for c in criteria)


def compute_importance(model: OS2DModel, calib: CalibrationSet | None, criteria: Sequence[str], *,
                       units: Sequence[Unit] | None = None, stats_config: StatsConfig = StatsConfig(),
                       gradient_config: GradientConfig = GradientConfig(), model_path: str = "",
                       progress: Progress = no_progress, cancel: CancelToken | None = None) -> ImportanceResult:
    """Score every unit's channels under each criterion on one calibration set.

    Gradient-free criteria share one statistics pass; "lcp" and "taylor" run the gradient references
    of `core.importance.gradient` with the statistics' context boxes (`stats_config.context_scale`).
    Each phase's wall time and peak memory go into `timings`. Data-free criteria take no calibration
    set (`calib` None).
    """
    gradient_config = replace(gradient_config, context_scale=stats_config.context_scale)
    criteria = list(dict.fromkeys(criteria))
    unknown = [c for c in criteria if c not in ALL_CRITERIA]
    if unknown or not criteria:
        raise ValueError(f"unknown criteria {', '.join(unknown) or '(none given)'}; "
                         f"expected some of {', '.join(ALL_CRITERIA)}")
    if calib is None and not data_free(criteria):
        needy = [c for c in criteria if not data_free([c])]
        raise ValueError(f"criteria {', '.join(needy)} need calibration images (a dataset)")
    units = list(units) if units is not None else find_units(model)
    device = model_device(model)
    n, u = (len(calib) if calib is not None else 0), len(units)
    need_stats = any(c in CRITERIA and CRITERIA[c].needs_statistics for c in criteria)
    # progress units: a forward pass over one image is PASS units, scoring one criterion from the
    # statistics one unit (it takes milliseconds), so the bar and its ETA follow where the time goes
    plan = ([("statistics", n)] if need_stats else []) + [(c, n * (u if c == "lcp" else 1))
                                                          for c in criteria if c in GRADIENT_METHODS]
    total = PASS * sum(steps for _, steps in plan) + len(criteria)
    offset = 0

    def sub(done: int, _total: int, message: str = "") -> None:
        progress(offset + PASS * done, total, message)

    scores: dict[str, dict[str, np.ndarray]] = {}
    timings: dict[str, Measurement] = {}
    stats = None
    if need_stats:
        stats = collect_statistics(model, calib, units, config=stats_config, progress=sub, cancel=cancel)
        timings["statistics"] = stats.measurement
        offset += PASS * n
    for crit in criteria:
        if cancel is not None:
            cancel.raise_if_cancelled()
        if crit in GRADIENT_METHODS:
            res = GRADIENT_METHODS[crit](model, calib, units, config=gradient_config, progress=sub, cancel=cancel)
            scores[crit] = dict(res.scores)
            timings[crit] = res.measurement
            offset += PASS * n * (u if crit == "lcp" else 1)
        else:
            with Meter(device) as meter:
                scores[crit] = {unit.name: CRITERIA[crit](model, unit, stats[unit.name] if stats else None)
                                for unit in units}
            timings[crit] = meter.result
        offset += 1
        progress(offset, total, f"{crit} done")
    orders = {c: {name: channel_order(s) for name, s in per_unit.items()} for c, per_unit in scores.items()}
    return ImportanceResult(
        units=tuple(x.name for x in units), channels=tuple(x.channels for x in units),
        scores=_frozen(scores), orders=_frozen(orders),
        calibration=calib.provenance if calib is not None else DATA_FREE_PROVENANCE,
        model={"sha256": weights_digest(model), "path": str(model_path), "config": model.config.to_json()},
        timings=timings, stats_config=stats_config, gradient_config=gradient_config, device=str(device))


def data_free_importance(model: OS2DModel, criteria: Sequence[str] = DATA_FREE, *,
                         units: Sequence[Unit] | None = None, model_path: str = "") -> ImportanceResult:
    """The rankings computed from the weights alone, so a plan can rank channels before any data is seen."""
    return compute_importance(model, None, criteria, units=units, model_path=model_path)


def importance_for_plan(criterion: str, importance: ImportanceLike | None, model: OS2DModel, *,
                        units: Sequence[Unit] | None = None) -> ImportanceLike:
    """What ranks channels by `criterion`: `importance` when it scores it, else the weights for a data-free
    criterion. The one rule the CLI and the app share; PlanError when an importance result is needed."""
    if importance is not None and criterion in importance.criteria:
        return importance
    if criterion in DATA_FREE:
        return data_free_importance(model, [criterion], units=units)
    raise PlanError(f"criterion '{criterion}' needs an importance result "
                    f"({' / '.join(DATA_FREE)} are computed from the weights)")
