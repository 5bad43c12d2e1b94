"""`python -m motia_sse`, the same as `motia-sse`."""

import sys

from motia_sse.cli import main

sys.exit(main())
