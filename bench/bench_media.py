"""Image-fit benchmark: our fit vs naive quality stepping, time and SSIM on real photos.

Run: `.venv/bin/python -m bench.bench_media`. Four scikit-image sample photos (see
`tests/support/photos.py` for their licences), 4000x3000 (12 MP) camera-like JPEGs, at budgets of
512,000 and 128,000 bytes. The floor is the naive fit: our SSIM must not be below it on
any photo and must beat it on average; our time must stay under `MAX_SECONDS` a photo.
"""

from __future__ import annotations

import io
import time
from typing import Any

from PIL import Image

from glosmsd.core import rules
from glosmsd.daemon import media
from tests.support import photos

BUDGETS = (512_000, 128_000)
SIZE = (4000, 3000)
MAX_SECONDS = 2.0
SSIM_TOLERANCE = 0.002


def run() -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for name in photos.PHOTOS:
        data = photos.photo_jpeg(name, *SIZE)
        with Image.open(io.BytesIO(data)) as opened:
            original = opened.copy()
        for budget in BUDGETS:
            limits = rules.Limits(mms_max_bytes=budget)
            start = time.perf_counter()
            prepared = media.prepare_attachments([(name + ".jpg", data)], limits)
            ours_time = time.perf_counter() - start
            (ours,) = prepared.kept
            start = time.perf_counter()
            naive = photos.naive_fit(original, budget)
            naive_time = time.perf_counter() - start
            with Image.open(io.BytesIO(ours.data)) as fitted:
                ours_size = fitted.size
            with Image.open(io.BytesIO(naive)) as stepped:
                naive_size = stepped.size
            rows.append(
                {
                    "photo": name,
                    "input_bytes": len(data),
                    "budget": budget,
                    "ours_bytes": ours.size,
                    "ours_dims": ours_size,
                    "ours_s": ours_time,
                    "ours_ssim": photos.ssim(original, ours.data),
                    "naive_bytes": len(naive),
                    "naive_dims": naive_size,
                    "naive_s": naive_time,
                    "naive_ssim": photos.ssim(original, naive),
                }
            )
    header = (
        f"{'photo':10} {'input':>8} {'budget':>7} | {'ours':>7} {'dims':>10} {'s':>5} "
        f"{'SSIM':>6} | {'naive':>7} {'dims':>10} {'s':>5} {'SSIM':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['photo']:10} {r['input_bytes']:8} {r['budget']:7} | {r['ours_bytes']:7} "
            f"{'x'.join(map(str, r['ours_dims'])):>10} {r['ours_s']:5.2f} {r['ours_ssim']:6.4f} | "
            f"{r['naive_bytes']:7} {'x'.join(map(str, r['naive_dims'])):>10} "
            f"{r['naive_s']:5.2f} {r['naive_ssim']:6.4f}"
        )
    mean_ours = sum(r["ours_ssim"] for r in rows) / len(rows)
    mean_naive = sum(r["naive_ssim"] for r in rows) / len(rows)
    print(f"mean SSIM: ours {mean_ours:.4f}, naive {mean_naive:.4f}")
    failures = [
        f"{r['photo']}@{r['budget']}: "
        + ("over budget" if r["ours_bytes"] > r["budget"] else "")
        + (
            f" SSIM {r['ours_ssim']:.4f} < naive {r['naive_ssim']:.4f}"
            if r["ours_ssim"] < r["naive_ssim"] - SSIM_TOLERANCE
            else ""
        )
        + (f" {r['ours_s']:.2f} s > {MAX_SECONDS} s" if r["ours_s"] > MAX_SECONDS else "")
        for r in rows
        if r["ours_bytes"] > r["budget"]
        or r["ours_ssim"] < r["naive_ssim"] - SSIM_TOLERANCE
        or r["ours_s"] > MAX_SECONDS
    ]
    if mean_ours <= mean_naive:
        failures.append(f"mean SSIM {mean_ours:.4f} not above naive {mean_naive:.4f}")
    print("floor: " + ("OK" if not failures else "FAILED: " + "; ".join(failures)))
    return {"rows": rows, "mean_ours": mean_ours, "mean_naive": mean_naive, "failures": failures}


if __name__ == "__main__":
    result = run()
    raise SystemExit(1 if result["failures"] else 0)
