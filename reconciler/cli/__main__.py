"""`python -m reconciler.cli`."""
from .main import main

main()
