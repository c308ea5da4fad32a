#!/usr/bin/env python3
"""Regenerate every committed reference fixture (PyTorch, scikit-image, SciPy).

Needs Debian's python3-torch, python3-torchvision, python3-skimage and python3-scipy:
    apt-get install python3-torch python3-torchvision python3-skimage python3-scipy
    /usr/bin/python3 scripts/make_fixtures.py
Each script in scripts/fixtures/ writes its own files under test/fixtures/. CI never runs this.
"""
import pathlib, runpy, sys

here = pathlib.Path(__file__).resolve().parent / "fixtures"
only = set(sys.argv[1:])
for script in sorted(here.glob("*.py")):
    if only and script.stem not in only:
        continue
    print(f"== {script.name}")
    runpy.run_path(str(script), run_name="__main__")
