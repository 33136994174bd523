import sys

from xpbank.cli.main import main

sys.exit(main())
