"""`python -m esmr_assets.cli`: the `esmr` command."""

import sys

from . import main

sys.exit(main())
