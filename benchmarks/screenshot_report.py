"""The HTML report as people see it: headless Chromium screenshots at 900 px and 1400 px wide.

    python benchmarks/screenshot_report.py                     # sample_logs + a 200-run sweep
    python benchmarks/screenshot_report.py --runs 2000 --height 6000
    python benchmarks/screenshot_report.py --readme docs/report.png   # also the README's picture

Writes ``runlens report SOURCE -o OUT/NAME.html`` for ``sample_logs`` and a Keras-layout sweep of
``--runs`` runs (``make_sweep.py``, cached in ``./bench_data``), then screenshots each page with
Debian's ``chromium`` (``--headless --screenshot --window-size=W,H``) at each width, at device
scale factor 2 (a high-density screen: blurry figures show), into ``OUT/NAME-W.png``. Look at them:
nothing may run off the page, the text in the figures must be legible, the frontier's labels apart.

``--readme PATH`` also writes the sample's 1400 px page, top part, as a palette PNG under 300 KB:
the picture the README shows.

Chromium runs as it does for the machine's own check: no sandbox (root), no GPU, no background
networking (the machine has no network: every attempt would be refused), a new empty profile.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, SAMPLE, cached
from make_sweep import make_keras_sweep

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def report(source: Path, target: Path) -> None:
    """``runlens report SOURCE -o TARGET`` in a fresh interpreter, as a user types it in the
    repository (``runlens report sample_logs``: the page's title names the folder as typed)."""
    root = HERE.parent
    name = os.path.relpath(source, root) if source.is_relative_to(root) else str(source)
    command = [sys.executable, "-m", "runlens", "report", name, "-o", str(target.resolve())]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=root)


def screenshot(page: Path, target: Path, width: int, height: int, scale: float) -> None:
    """A ``width`` x ``height`` CSS-pixel screenshot of ``page`` (at ``scale`` device pixels each)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("no chromium: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        command = [
            browser,
            *_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--force-device-scale-factor={scale:g}",
            f"--screenshot={target}",
            page.resolve().as_uri(),
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=120)


def readme_picture(page: Path, target: Path, *, width: int = 1400, height: int = 1500) -> None:
    """The sample's page at ``width`` (scale 1), its top ``height`` px, as a palette PNG (< 300 KB)."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.png"
        screenshot(page, raw, width, height, 1)
        image = Image.open(raw).convert("RGB")
        image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    size = target.stat().st_size
    print(f"{target}: {image.size[0]}x{image.size[1]}, {size / 1e3:.0f} KB")
    if size > 300_000:
        raise SystemExit(f"{target} is {size / 1e3:.0f} KB, over the README's 300 KB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HERE.parent / "screenshots")
    parser.add_argument("--runs", type=int, default=200, help="runs of the generated sweep (0: none)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--widths", type=int, nargs="+", default=[900, 1400])
    parser.add_argument("--height", type=int, default=3000, help="CSS pixels of the page shot")
    parser.add_argument("--scale", type=float, default=2.0, help="device pixels per CSS pixel")
    parser.add_argument("--data", type=Path, default=HERE.parent / "bench_data")
    parser.add_argument("--readme", type=Path, help="also write the README's picture of the sample here")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    sources = {"sample": SAMPLE}
    if args.runs:
        size = f"{args.runs}x{args.epochs}"
        sources[f"sweep{args.runs}"] = cached(
            args.data / f"keras_sweep_{size}", make_keras_sweep, args.runs, args.epochs
        )
    for name, source in sources.items():
        page = args.out / f"{name}.html"
        report(source, page)
        print(f"{page}: {page.stat().st_size / 1e6:.2f} MB")
        for width in args.widths:
            shot = args.out / f"{name}-{width}.png"
            screenshot(page, shot, width, args.height, args.scale)
            print(f"  {shot}")
    if args.readme is not None:
        readme_picture(args.out / "sample.html", args.readme)


if __name__ == "__main__":
    main()
