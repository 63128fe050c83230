"""`python -m keras_resnets ...` is the `keras-resnets` command."""

import sys

from keras_resnets.cli import main

sys.exit(main())
