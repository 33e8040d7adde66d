import sys

from massivekit.cli import main

sys.exit(main())
