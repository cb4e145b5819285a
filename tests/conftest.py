"""Shared pytest setup: headless matplotlib and no collection of build artefacts."""

import matplotlib

matplotlib.use("Agg")

collect_ignore_glob = ["../_build/*", "../.venv/*"]
