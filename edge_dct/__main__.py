import sys

from edge_dct.cli import main

sys.exit(main())
