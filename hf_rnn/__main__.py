"""`python -m hf_rnn ...` is `hf-rnn ...`."""

import sys

from .commands import main

sys.exit(main())
