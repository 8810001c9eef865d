"""The main job: `make demo` runs this. Trains a tiny GPT-2 with every phasewatch callback."""

import sys

from phasewatch.demo.run import main

if __name__ == "__main__":
    sys.exit(main())
