"""The main job: `make demo` runs this. Trains a tiny GPT-2 with every phasewatch callback."""

import os
import sys

# Before torch loads OpenMP: idle worker threads sleep instead of spinning. Same bits; on the
# 2 shared cores here a 200-step run took 15 s instead of 237 s under load, and about 10 % longer
# idle (docs/demo.md, Reproducibility). An OMP_WAIT_POLICY you set yourself wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from phasewatch.demo.run import main

if __name__ == "__main__":
    sys.exit(main())
