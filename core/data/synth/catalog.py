"""The benchmark's products: which class is in which split and family, and their sprites, rendered
lazily and once per `generate` call."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Sequence

from core.data.synth.art import Assets
from core.data.synth.config import (DISTRACTOR_POOL, SynthConfig, _rng, _T_CLASS, _T_DISTRACTOR, _T_FAMILY, _T_PLAN,
                                    _T_SCENE)
from core.data.synth.design import ProductDesign, make_brand, make_design
from core.data.synth.product import Sprite, render_product
from core.data.synth.shelf import ShelfScene, render_shelf


@dataclass(frozen=True)
class _Plan:
    """Which class is in which split and which family; cheap, computed up front from the seed."""

    train_ids: tuple[int, ...]
    val_ids: tuple[int, ...]
    family_of: tuple[int, ...]
    member_of: tuple[int, ...]  # position of a class within its family
    coverage_train: tuple[int, ...]  # permutation: scene i always shows class coverage[i % n]
    coverage_val: tuple[int, ...]


def _plan(config: SynthConfig) -> _Plan:
    rng = _rng(config.seed, _T_PLAN)
    n = config.num_train_classes + config.num_val_classes
    family_of: list[int] = []
    member_of: list[int] = []
    fam = 0
    while len(family_of) < n:
        size = int(rng.choice([1, 1, 1, 2, 2, 3, 4]))
        family_of += [fam] * size
        member_of += list(range(size))
        fam += 1
    train = tuple(range(config.num_train_classes))
    val = tuple(range(config.num_train_classes, n))
    return _Plan(train_ids=train, val_ids=val, family_of=tuple(family_of[:n]), member_of=tuple(member_of[:n]),
                 coverage_train=tuple(int(i) for i in rng.permutation(train)),
                 coverage_val=tuple(int(i) for i in rng.permutation(val)))


class _Library:
    """Lazily rendered class and distractor sprites for one generate() call (thread-safe, deterministic)."""

    def __init__(self, config: SynthConfig, plan: _Plan, assets: Assets) -> None:
        self.config, self.plan, self.assets = config, plan, assets
        self._cache: dict[tuple[str, int], Sprite] = {}
        self._lock = threading.Lock()

    def design(self, cid: int) -> ProductDesign:
        s = self.config.seed
        brand = make_brand((s, _T_FAMILY, self.plan.family_of[cid]))
        return make_design((s, _T_CLASS, cid), brand, self.plan.member_of[cid])

    def _get(self, key: tuple[str, int], make: Callable[[], Sprite]) -> Sprite:
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            hit = make()  # rendering twice in a race gives the same sprite
            with self._lock:
                hit = self._cache.setdefault(key, hit)
        return hit

    def sprite(self, cid: int) -> Sprite:
        return self._get(("c", cid), lambda: render_product(self.design(cid), self.assets))

    def distractor(self, j: int) -> Sprite:
        s = self.config.seed

        def make() -> Sprite:
            brand = make_brand((s, _T_DISTRACTOR, j, 0))
            return render_product(make_design((s, _T_DISTRACTOR, j, 1), brand), self.assets)
        return self._get(("d", j), make)


def _scene(lib: _Library, imageid: int, split_ids: Sequence[int], coverage: Sequence[int], index: int,
           size: tuple[int, int], *, instances=(3, 10), rows=(2, 4), n_classes: int | None = None) -> ShelfScene:
    rng = _rng(lib.config.seed, _T_SCENE, imageid)
    first = coverage[index % len(coverage)]
    k = n_classes or int(rng.choice([1, 2, 2, 3, 3, 4]))
    k = max(1, min(k, len(split_ids)))
    others = [c for c in split_ids if c != first]
    chosen = [first] + [int(c) for c in rng.choice(others, size=min(k - 1, len(others)), replace=False)]
    nd = int(rng.integers(3, 9))
    dis = [lib.distractor(int(j)) for j in rng.choice(DISTRACTOR_POOL, size=nd, replace=False)]
    return render_shelf(rng, [(c, lib.sprite(c)) for c in chosen], dis, size, lib.assets,
                        instances=instances, rows=rows)
