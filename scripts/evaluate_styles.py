"""Quality harness: each style's own objective, fast network against Gatys optimisation
(``fst.training.evaluation`` says what is measured and why).

    python scripts/evaluate_styles.py great_wave --out docs/evaluation
    python scripts/evaluate_styles.py runs/a/out/a.weights.h5 --limit 8 --iterations 0   # fast network only
    python scripts/evaluate_styles.py runs/a/out/a.weights.h5 --cache runs/gatys   # reuse Gatys results

Writes evaluation.md (the table: fast/Gatys, the objective's terms, seconds, and colour / strokes /
retention) and contact_NAME.png (photo, fast, Gatys per row) into --out. The Gatys result does not
depend on the network: with --cache it is computed once per objective, photo and iteration count, so
evaluating checkpoint after checkpoint costs only the fast side.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fst.cli.options import number_or
from fst.errors import FstError
from fst.files import write_atomic
from fst.images import encode, find_images
from fst.training.evaluation import contact_sheet, evaluate, table

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("styles", nargs="+", help="style names or .weights.h5 paths")
    parser.add_argument("--photos", type=Path, default=SHARED / "photos" / "val", help="folder of photos")
    parser.add_argument("--paintings", type=Path, default=SHARED / "styles",
                        help="where to find a painting whose recorded path is not on this machine")
    parser.add_argument("--size", type=int, default=256, help="shorter side of each photo (default 256)")
    parser.add_argument("--iterations", type=int, default=100, help="Gatys L-BFGS iterations (0: fast only)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    parser.add_argument("--sheet-rows", type=int, default=6, help="photos on the contact sheet")
    parser.add_argument("--out", type=Path, default=Path("evaluation"))
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder that keeps each Gatys result, to reuse when evaluating again")
    parser.add_argument("--vgg-weights", default=None, help="VGG19 weights file (else $FST_VGG19_WEIGHTS)")
    parser.add_argument("--measure-size", type=int, default=None,
                        help="measure the photo and the result resized to this shorter side (default: --size); "
                             "the strength figures compare with the painting at 512 px, so a result at 2048 px "
                             "is measured as seen at 512")
    parser.add_argument("--stroke-scale", type=number_or(("auto",)), default="auto",
                        help="the fast network's stroke scale (default auto, as fst run; 1 turns it off)")
    args = parser.parse_args()

    photos = find_images(args.photos)[:args.limit]
    if not photos:
        raise SystemExit(f"{args.photos}: no photos")
    results = []
    for style in args.styles:
        try:
            result, sheet = evaluate(style, photos, size=args.size, iterations=args.iterations,
                                     paintings=args.paintings, cache=args.cache, vgg_weights=args.vgg_weights,
                                     sheet_rows=args.sheet_rows, stroke_scale=args.stroke_scale,
                                     measure_size=args.measure_size)
        except FstError as exc:
            raise SystemExit(str(exc)) from None
        # Two versions of one style (a checkpoint against the shipped file) get their own sheets.
        repeats = sum(r["style"] == result["style"] for r in results)
        results.append(result)
        args.out.mkdir(parents=True, exist_ok=True)
        name = result["style"] + (f"_{repeats + 1}" if repeats else "")
        write_atomic(encode(np.asarray(contact_sheet(sheet, args.size)), "PNG"), args.out / f"contact_{name}.png")
    report = table(results, args.size, args.iterations)
    write_atomic(report.encode(), args.out / "evaluation.md")
    print("\n" + report)


if __name__ == "__main__":
    main()
