import os
import sys

# Tests import helpers (e.g. reference_odconv) that live beside them.
sys.path.insert(0, os.path.dirname(__file__))
