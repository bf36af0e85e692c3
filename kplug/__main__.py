import sys

from kplug.cli import main

sys.exit(main())
