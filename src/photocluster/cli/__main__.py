"""``python -m photocluster.cli``: the same as the ``photocluster`` command."""

import sys

from photocluster.cli import main

sys.exit(main())
