import sys

from shieldkit.cli import main

sys.exit(main())
