"""Where things stand on a shelf: rows and boards, shelf-unit sections, and which package faces where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.data.synth.config import OBJECT_HEIGHT
from core.data.synth.product import Sprite


@dataclass
class _Row:
    """One shelf board and the products standing on it (mutable while the layout is planned)."""

    baseline: float  # y where products stand (top of the board)
    top: float  # y of the board above (products must stay below)
    height: float  # height of the tallest products in this row
    board: float  # board thickness
    eligible: bool = False  # may hold annotated products


@dataclass
class _Item:
    """One package placed on a row."""

    sprite: Sprite
    class_id: int  # -1 for distractors
    x: float
    row: int
    height: float


@dataclass(frozen=True, eq=False)
class ShelfLayout:
    """The plan of one shelf image, in canvas pixels (the image plus a margin the camera warp crops away)."""

    rows: tuple[_Row, ...]
    unit_top: float  # y of the shelf unit's top when it is in view, else 0
    segments: tuple[tuple[float, float], ...]  # x ranges of the sections between uprights
    unit_span: tuple[float, float]  # x range of the shelf unit
    uprights: tuple[float, ...]  # left x of each upright
    upright_width: float
    items: tuple[_Item, ...]  # every package placed, annotated or not
    tags: tuple[tuple[int, float, float], ...]  # price tags: (row, x, run width)


def _layout(rng: np.random.Generator, classes: Sequence[tuple[int, Sprite]], distractors: Sequence[Sprite],
            W: int, H: int, mx: int, my: int, Wc: int, Hc: int, instances: tuple[int, int],
            rows_range: tuple[int, int]) -> ShelfLayout:
    """Plan rows, shelf segments and which package stands where (annotated runs fit inside the view)."""
    R = int(rng.integers(rows_range[0], rows_range[1] + 1))
    P = H * rng.uniform(0.88, 1.08) / R
    t = max(3.0, P * rng.uniform(0.07, 0.11))
    first = my + rng.uniform(0.5, 1.0) * P
    rows: list[_Row] = []
    lo, hi = OBJECT_HEIGHT[0] * H, OBJECT_HEIGHT[1] * H
    for k in range(-2, R + 3):
        base = first + k * P
        top = base - P + t
        if base + t < 0 or top > Hc:
            continue
        height = float(np.clip(P * rng.uniform(0.68, 0.86), lo, min(hi, P - t - 2)))
        vis = (min(base, my + H) - max(base - height, my)) / height
        rows.append(_Row(baseline=base, top=top, height=height, board=t,
                         eligible=vis >= 0.92 or (vis >= 0.55 and rng.random() < 0.2)))
    unit_top = 0.0
    if rng.random() < 0.3:  # the top of the shelf unit is in view: nothing above its first row
        tops = [i for i, r in enumerate(rows) if my + 0.08 * H <= r.top <= my + 0.45 * H]
        if tops:
            rows = rows[tops[0]:]
            unit_top = rows[0].top
    if not any(r.eligible for r in rows):  # tiny images: take the most visible row
        best = max(rows, key=lambda r: min(r.baseline, my + H) - max(r.baseline - r.height, my))
        best.eligible = True
    # shelf unit extent and uprights splitting it into sections
    ux0, ux1 = 0.0, float(Wc)
    end_side = rng.random()
    if end_side < 0.12:
        ux0 = mx + rng.uniform(0.05, 0.25) * W
    elif end_side < 0.24:
        ux1 = mx + W - rng.uniform(0.05, 0.25) * W
    uw = max(4.0, W * rng.uniform(0.015, 0.03))
    uprights = []
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        ux = rng.uniform(ux0 + 0.25 * W, ux1 - 0.25 * W) if ux1 - ux0 > 0.6 * W else None
        if ux is not None and all(abs(ux - u) > 0.3 * W for u in uprights):
            uprights.append(ux)
    uprights.sort()
    edges = [ux0] + [e for u in uprights for e in (u, u + uw)] + [ux1]
    segments = [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]

    def size(sprite: Sprite, row: _Row) -> tuple[float, float]:
        # shelves are spaced for what stands on them, so heights within a row differ less than sizes do
        h = float(np.clip(row.height * sprite.rel_height ** 0.6, lo, row.height))
        return h, h * sprite.aspect

    # annotated runs: every given class at least once (in order), then more facings up to the target
    target = int(rng.integers(instances[0], instances[1] + 1))
    runs: list[list] = []
    left = target
    for i in range(10 * target):
        if left <= 0 or not classes:
            break
        c = classes[i] if i < len(classes) else classes[int(rng.integers(len(classes)))]
        n = min(left, int(rng.choice([1, 1, 2, 2, 3, 3, 4])))
        runs.append([c, n])
        left -= n
    slots = [(ri, si) for ri, r in enumerate(rows) if r.eligible for si in range(len(segments))]
    cap, view = {}, {}
    for ri, si in slots:
        a, b = segments[si]
        # sometimes annotated products may stand partly outside the view (cut by the border)
        ext = rows[ri].height * 0.5 if rng.random() < 0.3 else 0.0
        view[(ri, si)] = (max(a, mx - ext), min(b, mx + W + ext))
        cap[(ri, si)] = (view[(ri, si)][1] - view[(ri, si)][0]) * 0.9
    assigned: dict[tuple[int, int], list] = {s: [] for s in slots}
    for c, n in runs:
        while n > 0:
            fits = []
            for s in slots:
                h, w = size(c[1], rows[s[0]])
                if n * w * 1.04 <= cap[s]:
                    fits.append((s, n * w * 1.04))
            if fits:
                weights = np.array([cap[s] for s, _ in fits])
                s, need = fits[int(rng.choice(len(fits), p=weights / weights.sum()))]
                cap[s] -= need
                assigned[s].append((c, n))
                break
            n -= 1
    items: list[_Item] = []
    tags: list[tuple[int, float, float]] = []  # (row, x, run width)
    for ri, row in enumerate(rows):
        for si, (a, b) in enumerate(segments):
            mine = list(assigned.get((ri, si), []))
            order = rng.permutation(len(mine))
            mine = [mine[i] for i in order]
            vx0, vx1 = view.get((ri, si), (max(a, mx), min(b, mx + W)))
            x = a + rng.uniform(0.0, 0.02) * W
            at_edge_right = b >= Wc - 1
            need = sum(n * size(c[1], row)[1] * 1.04 for c, n in mine)
            for _ in range(200):
                if mine:
                    free = vx1 - max(x, vx0) - need
                    d = distractors[int(rng.integers(len(distractors)))] if distractors else None
                    dw = size(d, row)[1] if d is not None else 0.0
                    if d is not None and (x < vx0 - 0.2 * dw or (free > dw * 1.05 and rng.random() < min(0.85, free / (free + need + 1e-6)))):
                        n = int(rng.choice([1, 1, 2, 2, 3]))
                        if x >= vx0 - 0.2 * dw:
                            n = max(1, min(n, int(free // (dw * 1.05))))
                        sprite, cid = d, -1
                    else:
                        (cid, sprite), n = mine.pop(0)
                        need -= n * size(sprite, row)[1] * 1.04
                else:
                    if x >= b - 2 or not distractors:
                        break
                    d = distractors[int(rng.integers(len(distractors)))]
                    dw = size(d, row)[1]
                    n = int(rng.choice([1, 1, 2, 2, 3, 4]))
                    if not at_edge_right:
                        n = min(n, int((b - x) // (dw * 1.03)))
                        if n <= 0:
                            if b - x > 0.25 * W:  # try a narrower package once
                                continue
                            break
                    sprite, cid = d, -1
                h, w = size(sprite, row)
                run_x = x
                for _k in range(n):
                    items.append(_Item(sprite=sprite, class_id=cid, x=x, row=ri, height=h))
                    x += w * (1 + rng.uniform(0.0, 0.04))
                if rng.random() < 0.8:
                    tags.append((ri, run_x + rng.uniform(0, 0.3) * w, w))
                x += w * rng.uniform(0.02, 0.1) + (rng.uniform(0.3, 1.0) * w if rng.random() < 0.04 else 0.0)
    return ShelfLayout(rows=tuple(rows), unit_top=unit_top, segments=tuple(segments), unit_span=(ux0, ux1),
                       uprights=tuple(uprights), upright_width=uw, items=tuple(items), tags=tuple(tags))
