"""`python -m train_agent --config /etc/train-agent/config.json`: what train.sh runs."""

import sys

from .run import main

sys.exit(main())
