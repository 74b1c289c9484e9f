# `python -m tools.vboard` (from the repository root) or `python tools/vboard`:
# run a virtual board in the foreground; see host.py.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.vboard.host import main  # noqa: E402

sys.exit(main())
