# `python -m tools.link --port PORT ask|watch|status ...` (from the repository root); see cli.py.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.link.cli import main  # noqa: E402

sys.exit(main())
