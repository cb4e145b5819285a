"""Root pytest hooks: keep notebook runs headless and skip build output and checkpoints."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

collect_ignore_glob = ["_build/*", ".venv/*", "**/.ipynb_checkpoints/*", ".jupyter_cache/*"]
