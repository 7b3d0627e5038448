"""A deterministic, GroZi-3.2k-like one-shot detection benchmark: retail products on shelves.

Why: GroZi-3.2k is large and not redistributable with the app, but pruning and evaluation need a
benchmark with the same structure -- one clean "in vitro" class image per product, "in situ" shelf
photos, held-out classes -- that anyone can regenerate in a couple of minutes, byte for byte.

What: products are designed procedurally (packaging shapes, colours, stripes, bands, logos, printed
brand words, art cut from scikit-image's bundled sample photos); look-alike families share a brand.
Scenes are shelves (2-4 rows, several facings of the same product side by side, unannotated
distractor products, price rails, hanging promo cards, foreground occluders) seen through a slightly
rotated/keystoned camera, with lighting gradients, blur, noise and JPEG artefacts.

Output (read by `core.data.grozi.load_dataset_dir`):
    DIR/dataset.json
    DIR/classes/synth.csv              one row per ground-truth box, relative xyxy, split train/val
    DIR/classes/images/<classid>.png   class images
    DIR/src/images/<imageid>.jpg       scene images
    DIR/demo.mp4, DIR/demo_classes.json  optional demo video over a large val shelf

Determinism: every random choice comes from a `numpy.random.Generator` seeded with
`[seed, <kind tag>, <index>...]`, so a class, distractor or scene looks the same whatever order
(or thread) renders it, and the same seed gives byte-identical CSV and image files.

Modules, one concern each: `config` (SynthConfig, constants, seeded streams), `colors`, `draw`, `text`
(drawing helpers and vocabularies), `design` (brands and variants), `art` (package fronts), `product`
(sprites and class images), `layout` (what stands where on a shelf), `shelf` (the shelf photo),
`catalog` (splits, families, sprite cache), `dataset` (`generate`), `demo` (the demo video). Names with a
leading underscore are internal to this package; its modules share them.
"""

from core.data.grozi import CSV_COLUMNS
from core.data.synth.art import Assets, load_assets
from core.data.synth.config import (CLASS_IMAGE_SIDE, CSV_NAME, CUT_DIFFICULT, DEMO_FPS, DEMO_FRAMES, DEMO_SIZE,
                                    DISTRACTOR_POOL, GENERATOR_VERSION, MIN_VISIBLE, OBJECT_HEIGHT,
                                    OCCLUDED_DIFFICULT, SPRITE_SIDE, SynthConfig, SynthResult)
from core.data.synth.dataset import generate
from core.data.synth.design import Brand, ProductDesign, make_brand, make_design
from core.data.synth.product import Sprite, class_image, render_product
from core.data.synth.shelf import ShelfObject, ShelfScene, render_shelf

__all__ = [
    "CLASS_IMAGE_SIDE", "CSV_COLUMNS", "CSV_NAME", "CUT_DIFFICULT", "DEMO_FPS", "DEMO_FRAMES", "DEMO_SIZE",
    "DISTRACTOR_POOL", "GENERATOR_VERSION", "MIN_VISIBLE", "OBJECT_HEIGHT", "OCCLUDED_DIFFICULT", "SPRITE_SIDE",
    "Assets", "Brand", "ProductDesign", "ShelfObject", "ShelfScene", "Sprite", "SynthConfig", "SynthResult",
    "class_image", "generate", "load_assets", "make_brand", "make_design", "render_product", "render_shelf",
]
