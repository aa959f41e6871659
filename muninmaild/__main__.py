import sys

from muninmaild.cli import main

sys.exit(main())
