# `python tools/deploy ...` or `python -m tools.deploy ...` (from the repository root); see deploy.py.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.deploy.deploy import main  # noqa: E402

sys.exit(main())
