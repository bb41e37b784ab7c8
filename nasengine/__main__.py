"""``python -m nasengine``: the ``nasengine`` command."""

import sys

from nasengine.cli.main import main

sys.exit(main())
