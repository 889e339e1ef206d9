"""The user's config and cache folders for codeindex, by the platform's convention (``platformdirs``).

Linux: ``$XDG_CONFIG_HOME/codeindex`` (default ``~/.config/codeindex``) and ``$XDG_CACHE_HOME/codeindex``
(default ``~/.cache/codeindex``); macOS: ``~/Library/Application Support/codeindex`` and
``~/Library/Caches/codeindex``; Windows: ``%LOCALAPPDATA%\\codeindex``. Asked on every call, so the
environment can redirect them at run time (tests do).
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP = "codeindex"


def config_file() -> Path:
    """The user config file (the ``user`` layer of the settings)."""
    return platformdirs.user_config_path(APP, appauthor=False) / "config.toml"


def cache_dir() -> Path:
    """The user cache folder (exported ONNX models, model content hashes)."""
    return platformdirs.user_cache_path(APP, appauthor=False)
