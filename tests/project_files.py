"""The project's files as a clean clone would have them, plus new files not yet committed (but never ignored ones)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from plan.offline import PROJECT_DIR


def project_files() -> list[Path]:
    """Relative paths of the tracked and the untracked, not ignored, files under PROJECT_DIR."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # A file deleted in the working tree but still in the index is listed too: skip it.
    return [Path(name) for name in listed if (PROJECT_DIR / name).is_file()]
