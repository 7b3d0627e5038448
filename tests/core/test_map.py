"""mAP@0.5 as the official OS2D evaluation (os2d/data/voc_eval.py) computes it."""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from fractions import Fraction

import numpy as np
import pytest

from core.eval.map import (ImageDetections, ImageGroundTruth, MapResult, average_precision, bootstrap_maps,
                          evaluate_map, interval, iou_voc)

A, B, ONLY_DET, ONLY_DIFFICULT = 3, 7, 9, 11  # class ids need not be dense


def dets(rows) -> ImageDetections:
    """rows: (class_id, score, x1, y1, x2, y2)."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return ImageDetections(boxes=a[:, 2:], scores=a[:, 1], class_ids=a[:, 0].astype(np.int64))


def gts(rows) -> ImageGroundTruth:
    """rows: (class_id, difficult, x1, y1, x2, y2)."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return ImageGroundTruth(boxes=a[:, 2:], class_ids=a[:, 0].astype(np.int64), difficult=a[:, 1].astype(bool))


def test_map_by_hand():
    # Boxes are inclusive pixel boxes: [0, 0, 9, 9] is 10 x 10 pixels (VOC +1 convention).
    gt = [
        gts([(A, 0, 0, 0, 9, 9),        # gA1
             (A, 0, 20, 20, 29, 29),    # gA2: nobody finds it (a miss)
             (B, 0, 40, 0, 49, 9),      # gB1
             (B, 1, 0, 30, 9, 39),      # gB2: difficult
             (ONLY_DIFFICULT, 1, 50, 30, 59, 39)]),
        gts([(A, 0, 10, 10, 19, 19),    # gA3
             (B, 0, 30, 30, 39, 39)]),  # gB3
    ]
    det = [
        dets([(A, 0.9, 0, 0, 9, 9),        # a1 on gA1: TP
              (A, 0.8, 1, 0, 10, 9),       # a2 on gA1 again, IoU 90/110: duplicate -> FP
              (A, 0.4, 50, 30, 59, 39),    # a3 on nothing: FP
              (B, 0.95, 0, 30, 9, 39),     # b1 on difficult gB2: ignored
              (B, 0.85, 45, 0, 54, 9),     # b2 on gB1 with IoU 50/150 = 1/3 < 0.5: FP
              (B, 0.6, 40, 0, 49, 9),      # b3 on gB1: TP
              (ONLY_DET, 0.99, 0, 0, 9, 9)]),  # class without gt: ignored entirely
        dets([(A, 0.7, 10, 10, 19, 19),    # a4 on gA3: TP
              (B, 0.5, 30, 30, 39, 39)]),  # b4 on gB3: TP
    ]
    # Class A: 3 non-difficult gt. Ranked: .9 TP, .8 FP, .7 TP, .4 FP
    #   tp = 1, 1, 2, 2   fp = 0, 1, 1, 2
    #   precision = 1, 1/2, 2/3, 1/2     recall = 1/3, 1/3, 2/3, 2/3
    #   envelope (max precision at recall >= r): r=1/3 -> 1, r=2/3 -> 2/3, r=1 -> 0 (never reached)
    #   AP_A = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 0 = 5/9
    # Class B: 2 non-difficult gt (gB2 is difficult). Ranked: .95 ignored, .85 FP, .6 TP, .5 TP
    #   tp = 0, 0, 1, 2   fp = 0, 1, 1, 1   (the ignored detection adds to neither)
    #   precision = 0/0 -> 0, 0, 1/2, 2/3   recall = 0, 0, 1/2, 1
    #   envelope: r=1/2 -> 2/3, r=1 -> 2/3
    #   AP_B = 1/2 * 2/3 + 1/2 * 2/3 = 2/3
    # ONLY_DET (no gt) and ONLY_DIFFICULT (only a difficult gt) have AP NaN officially: not in the mean.
    # mAP = (5/9 + 2/3) / 2 = 11/18
    ap_a, ap_b = Fraction(5, 9), Fraction(2, 3)
    expected_map = (ap_a + ap_b) / 2
    assert expected_map == Fraction(11, 18)

    res = evaluate_map(det, gt)
    assert isinstance(res, MapResult)
    assert set(res.per_class_ap) == {A, B}
    assert res.per_class_ap[A] == pytest.approx(float(ap_a), abs=1e-12)
    assert res.per_class_ap[B] == pytest.approx(float(ap_b), abs=1e-12)
    assert res.map == pytest.approx(float(expected_map), abs=1e-12)
    assert res.num_gt == {A: 3, B: 2, ONLY_DET: 0, ONLY_DIFFICULT: 0}
    assert res.iou_threshold == 0.5

    # The same with gB2 not difficult: b1 becomes a TP and B has 3 gt. Ranked: TP, FP, TP, TP
    #   precision = 1, 1/2, 2/3, 3/4   recall = 1/3, 1/3, 2/3, 1
    #   AP_B = 1/3 * 1 + 1/3 * 3/4 + 1/3 * 3/4 = 5/6
    gt_not_difficult = [gts([(c, 0, *b) for c, b in zip(g.class_ids, g.boxes)]) for g in gt]
    assert evaluate_map(det, gt_not_difficult).per_class_ap[B] == pytest.approx(float(Fraction(5, 6)), abs=1e-12)

    js = res.to_json()
    assert json.loads(json.dumps(js)) == js
    assert js["per_class_ap"] == {"3": pytest.approx(5 / 9), "7": pytest.approx(2 / 3)}
    assert js["num_gt"] == {"3": 3, "7": 2, "9": 0, "11": 0}


def test_iou_uses_plus_one_pixel_convention_and_threshold_is_inclusive():
    # gt [0,0,9,9] is 10x10 = 100 px; det [0,0,9,4] is 10x5 = 50 px inside it: IoU exactly 0.5 with +1.
    # Without +1 it would be 36/81 = 0.44 and miss.
    assert iou_voc(np.array([[0, 0, 9, 4]]), np.array([[0, 0, 9, 9]]))[0, 0] == np.float32(0.5)
    res = evaluate_map([dets([(A, 1.0, 0, 0, 9, 4)])], [gts([(A, 0, 0, 0, 9, 9)])])
    assert res.per_class_ap[A] == 1.0  # IoU == threshold matches (official rejects only IoU < t)
    res = evaluate_map([dets([(A, 1.0, 0, 0, 9, 4)])], [gts([(A, 0, 0, 0, 9, 9)])], iou_threshold=0.51)
    assert res.per_class_ap[A] == 0.0 and res.iou_threshold == 0.51


def test_iou_matches_torchvision_with_plus_one():
    torch = pytest.importorskip("torch")
    box_iou = pytest.importorskip("torchvision.ops").box_iou
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 200, (50, 4)).astype(np.float32)
    b = rng.uniform(0, 200, (30, 4)).astype(np.float32)
    a[:, 2:] = a[:, :2] + rng.uniform(1, 80, (50, 2)).astype(np.float32)
    b[:, 2:] = b[:, :2] + rng.uniform(1, 80, (30, 2)).astype(np.float32)
    a1, b1 = a.copy(), b.copy()
    a1[:, 2:] += 1
    b1[:, 2:] += 1
    ref = box_iou(torch.from_numpy(a1), torch.from_numpy(b1)).numpy()
    np.testing.assert_array_equal(iou_voc(a, b), ref)


def test_average_precision():
    assert average_precision([], []) == 0.0
    assert average_precision([0.5, 1.0], [1.0, 1.0]) == 1.0
    assert average_precision([0.5, 0.5], [1.0, 0.5]) == 0.5
    # envelope: a later higher precision lifts earlier points
    assert average_precision([0.25, 0.5], [0.5, 1.0]) == pytest.approx(0.5)
    assert average_precision([0.0, 0.5], [np.nan, 1.0]) == 0.5


def test_class_with_gt_but_no_detections_counts_as_zero():
    res = evaluate_map([dets([(A, 0.9, 0, 0, 9, 9)])], [gts([(A, 0, 0, 0, 9, 9), (B, 0, 20, 20, 29, 29)])])
    assert res.per_class_ap == {A: 1.0, B: 0.0} and res.map == 0.5


def test_no_gt_gives_nan():
    res = evaluate_map([dets([(A, 0.9, 0, 0, 9, 9)]), dets([])], [gts([]), gts([(B, 1, 0, 0, 9, 9)])])
    assert math.isnan(res.map) and res.per_class_ap == {} and res.num_gt == {A: 0, B: 0}
    assert res.to_json()["map"] is None
    empty = evaluate_map([], [])
    assert math.isnan(empty.map)


def test_duplicates_are_judged_per_image_in_score_order():
    # the lower-scored exact box comes first in the input; the higher-scored shifted one still takes the gt
    res = evaluate_map([dets([(A, 0.5, 0, 0, 9, 9), (A, 0.9, 1, 1, 10, 10)])], [gts([(A, 0, 0, 0, 9, 9)])])
    assert res.per_class_ap[A] == 1.0  # TP at .9, FP at .5 -> precision 1 at recall 1


def test_input_validation():
    with pytest.raises(ValueError, match="2 detection lists but 1"):
        evaluate_map([dets([]), dets([])], [gts([])])
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        ImageDetections(boxes=np.zeros((3, 5)), scores=np.zeros(3), class_ids=np.zeros(3))
    with pytest.raises(ValueError, match="expected 3 values"):
        ImageGroundTruth(boxes=np.zeros((3, 4)), class_ids=np.zeros(3), difficult=np.zeros(2))


# -- agreement with a plain loop transcription of the official algorithm ---------------------------

def reference_map(det, gt, thr=0.5):
    """calc_detection_voc_prec_rec + calc_detection_voc_ap + nanmean, written as plain loops."""
    n_pos, score, match = defaultdict(int), defaultdict(list), defaultdict(list)
    for d, g in zip(det, gt):
        for label in np.unique(np.concatenate((d.class_ids, g.class_ids))):
            pm = d.class_ids == label
            order = d.scores[pm].argsort()[::-1]
            pb, ps = d.boxes[pm][order], d.scores[pm][order]
            gb, gdiff = g.boxes[g.class_ids == label], g.difficult[g.class_ids == label]
            n_pos[int(label)] += int((~gdiff).sum())
            score[int(label)].extend(ps)
            if len(pb) == 0:
                continue
            if len(gb) == 0:
                match[int(label)].extend([0] * len(pb))
                continue
            iou = iou_voc(pb, gb)
            gt_index = iou.argmax(axis=1)
            gt_index[iou.max(axis=1) < thr] = -1
            taken = np.zeros(len(gb), dtype=bool)
            for gi in gt_index:
                if gi < 0:
                    match[int(label)].append(0)
                elif gdiff[gi]:
                    match[int(label)].append(-1)
                else:
                    match[int(label)].append(0 if taken[gi] else 1)
                if gi >= 0:
                    taken[gi] = True
    aps = {}
    for label, n in n_pos.items():
        if n == 0:
            continue
        s = np.array(score[label], dtype=np.float32)
        m = np.array(match[label], dtype=np.int8)[s.argsort()[::-1]]
        tp, fp = np.cumsum(m == 1), np.cumsum(m == 0)
        with np.errstate(invalid="ignore"):
            prec = tp / (fp + tp)
        aps[label] = average_precision(tp / n, prec)
    return aps


def random_case(rng, n_images, n_classes, n_gt, n_det):
    det, gt = [], []
    for _ in range(n_images):
        g_xy = rng.uniform(0, 400, (n_gt, 2))
        g_wh = rng.uniform(10, 80, (n_gt, 2))
        g_boxes = np.hstack([g_xy, g_xy + g_wh])
        g_cls = rng.integers(0, n_classes, n_gt)
        gt.append(ImageGroundTruth(g_boxes, g_cls, rng.random(n_gt) < 0.15))
        # detections: jittered copies of gt (some with the wrong class) plus clutter
        k = rng.integers(0, n_gt, n_det // 2)
        near = g_boxes[k] + rng.normal(0, 6, (len(k), 4))
        near_cls = np.where(rng.random(len(k)) < 0.8, g_cls[k], rng.integers(0, n_classes, len(k)))
        c_xy = rng.uniform(0, 400, (n_det - len(k), 2))
        clutter = np.hstack([c_xy, c_xy + rng.uniform(10, 80, (n_det - len(k), 2))])
        boxes = np.vstack([near, clutter])
        cls = np.concatenate([near_cls, rng.integers(0, n_classes, len(clutter))])
        det.append(ImageDetections(boxes, rng.random(n_det), cls))
    return det, gt


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_loop_reference(seed):
    rng = np.random.default_rng(seed)
    det, gt = random_case(rng, n_images=6, n_classes=5, n_gt=12, n_det=40)
    res = evaluate_map(det, gt)
    ref = reference_map(det, gt)
    assert set(res.per_class_ap) == set(ref)
    for c in ref:
        assert res.per_class_ap[c] == ref[c]
    assert res.map == pytest.approx(np.mean(list(ref.values())), abs=1e-12)
    assert 0.0 < res.map < 1.0


def test_thousands_of_detections_are_fast():
    rng = np.random.default_rng(1)
    det, gt = random_case(rng, n_images=50, n_classes=30, n_gt=60, n_det=2000)  # 100k detections
    t0 = time.perf_counter()
    res = evaluate_map(det, gt)
    elapsed = time.perf_counter() - t0
    assert len(res.per_class_ap) == 30
    assert elapsed < 10.0, f"evaluate_map took {elapsed:.1f} s on 100k detections"


def test_best_f1_threshold_keeps_the_detections_that_balance_precision_and_recall():
    import math

    from core.eval.map import ImageDetections, ImageGroundTruth, best_f1_threshold, evaluate_map

    gt = ImageGroundTruth(np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32), np.array([0, 0]),
                          np.array([False, False]))
    # two hits at 0.9 and 0.5, false alarms at 0.8 and 0.2: best F1 keeps down to 0.5 (2 TP, 1 FP → 0.8)
    det = ImageDetections(np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 0, 30, 10], [70, 70, 80, 80]],
                                   np.float32), np.array([0.9, 0.8, 0.5, 0.2], np.float32), np.array([0, 0, 0, 0]))
    res = evaluate_map([det], [gt])
    assert res.best_f1_threshold == pytest.approx(0.5) and res.best_f1 == pytest.approx(0.8)
    assert res.to_json()["best_f1_threshold"] == pytest.approx(0.5)
    assert all(math.isnan(v) for v in best_f1_threshold([], [], 0))


def _random_case(n_images: int, seed: int):
    rng = np.random.default_rng(seed)
    dets, gts = [], []
    for _ in range(n_images):
        xy = rng.uniform(0, 200, (3, 2))
        gt_boxes = np.concatenate([xy, xy + 40], axis=1).astype(np.float32)
        gt_cls = rng.integers(0, 3, 3)
        jitter = rng.normal(0, 8, (3, 4)).astype(np.float32)
        dets.append(ImageDetections(gt_boxes + jitter, rng.uniform(0, 1, 3), gt_cls))
        gts.append(ImageGroundTruth(gt_boxes, gt_cls, np.zeros(3, bool)))
    return dets, gts


def test_bootstrap_of_one_image_is_its_map_and_repeats_with_the_seed():
    dets, gts = _random_case(1, 0)
    full = evaluate_map(dets, gts).map
    maps = bootstrap_maps(dets, gts, samples=20, seed=3)
    assert np.allclose(maps, full)
    dets, gts = _random_case(12, 1)
    a, b = bootstrap_maps(dets, gts, samples=50, seed=7), bootstrap_maps(dets, gts, samples=50, seed=7)
    assert np.array_equal(a, b) and not np.array_equal(a, bootstrap_maps(dets, gts, samples=50, seed=8))
    lo, hi = interval(a)
    assert lo <= evaluate_map(dets, gts).map <= hi and lo < hi


def test_bootstrap_of_a_perfect_detector_has_no_spread():
    _, gts = _random_case(6, 2)
    dets = [ImageDetections(g.boxes, np.linspace(1, 0.5, len(g.boxes)), g.class_ids) for g in gts]
    assert interval(bootstrap_maps(dets, gts, samples=30)) == (1.0, 1.0)
