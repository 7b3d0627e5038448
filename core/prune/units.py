"""Prunable units of an OS2D model: groups of channels that must be removed together.

A unit is one set of channel indices shared by its *producers* (convolutions whose output channels
they are, with their batch norms) and consumed by its *consumers* (layers whose input channels they
are). Residual additions couple every block output of a stage, the downsample shortcut and, where the
first stage has no downsample (ResNet-18/34), the stem. The trunk's last stage output is consumed by
the correlation of both branches, which are one module, so pruning it keeps them consistent.

A unit's name is the module path of its first producer, e.g. `net_feature_maps.layer3.2.conv1`;
it is the same in JSON, CLI, plots and GUI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from core.model.os2d import OS2DModel

TRUNK = "net_feature_maps"
REGRESSOR = "os2d_head_creator.aligner.parameter_regressor"


@dataclass(frozen=True)
class Unit:
    name: str
    group: str  # "stem", "layer1".."layer3", "transform": the stage sliders act on groups
    kind: str  # "inner" (inside a block), "stage" (residual-coupled block outputs), "head"
    channels: int
    producers: tuple[str, ...]  # convs whose output channels these are
    norms: tuple[str, ...]  # batch norms on those channels
    consumers: tuple[str, ...]  # convs reading these channels as input
    feeds_correlation: bool = False  # the trunk output: read by the correlation of both branches
    index: int = 0  # position in the model's unit list

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def find_units(model: OS2DModel, *, include_head: bool = True) -> list[Unit]:
    """All prunable units, in forward order."""
    trunk = model.net_feature_maps
    units: list[Unit] = []
    # the residual-coupled set being collected: producers, norms, consumers, group
    open_ = {"prods": [f"{TRUNK}.conv1"], "norms": [f"{TRUNK}.bn1"], "cons": [], "group": "stem"}

    def close(feeds_correlation: bool = False) -> None:
        first = open_["prods"][0]
        units.append(Unit(first, open_["group"], "stage", model.get_submodule(first).out_channels,
                          tuple(open_["prods"]), tuple(open_["norms"]), tuple(open_["cons"]), feeds_correlation))

    for li in (1, 2, 3):
        lname = f"{TRUNK}.layer{li}"
        layer = getattr(trunk, f"layer{li}")
        has_down = layer[0].downsample is not None
        open_["cons"] += [f"{lname}.0.conv1"] + ([f"{lname}.0.downsample.0"] if has_down else [])
        if has_down:
            close()
            open_ = {"prods": [], "norms": [], "cons": [], "group": f"layer{li}"}
        else:  # identity shortcut: this stage's block outputs share the incoming channels
            open_["group"] = f"layer{li}"
        for bi, block in enumerate(layer):
            bname = f"{lname}.{bi}"
            convs = [n for n in ("conv1", "conv2", "conv3") if hasattr(block, n)]
            for a, b in zip(convs[:-1], convs[1:]):
                units.append(Unit(f"{bname}.{a}", f"layer{li}", "inner", getattr(block, a).out_channels,
                                  (f"{bname}.{a}",), (f"{bname}.bn{a[-1]}",), (f"{bname}.{b}",)))
            open_["prods"].append(f"{bname}.{convs[-1]}")
            open_["norms"].append(f"{bname}.bn{convs[-1][-1]}")
            if bi == 0 and has_down:
                open_["prods"].append(f"{bname}.downsample.0")
                open_["norms"].append(f"{bname}.downsample.1")
            if bi + 1 < len(layer):
                open_["cons"].append(f"{lname}.{bi + 1}.conv1")
    close(feeds_correlation=True)
    if include_head:
        r = REGRESSOR
        net = model.os2d_head_creator.aligner.parameter_regressor
        units.append(Unit(f"{r}.conv.0", "transform", "head", net.conv[0].out_channels, (f"{r}.conv.0",),
                          (f"{r}.conv.1",), (f"{r}.conv.3",)))
        units.append(Unit(f"{r}.conv.3", "transform", "head", net.conv[3].out_channels, (f"{r}.conv.3",),
                          (f"{r}.conv.4",), (f"{r}.linear",)))
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    units.sort(key=lambda u: order[u.producers[0]])
    return [Unit(**{**u.__dict__, "index": i}) for i, u in enumerate(units)]


def units_by_name(units: list[Unit]) -> dict[str, Unit]:
    return {u.name: u for u in units}
