"""Typed settings for every longtasks process (API, worker, CLI, tests).

Built where a process starts (`Settings()`), never at import, so importing a module never reads
the environment (Temporal's workflow sandbox re-imports modules and must not see `os.environ`).
"""

from settings.config import Environment, Settings

__all__ = ["Environment", "Settings"]
