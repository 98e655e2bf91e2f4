"""`python -m clearstem_verify STEM_FILE BUNDLE.json [--pubkey PEM]`: the same as `clearstem-verify`."""
import sys

from .verify import main

sys.exit(main())
