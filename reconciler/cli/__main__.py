"""`python -m reconciler.cli`."""
from .main import main

if __name__ == "__main__":  # importing it (pytest --doctest-modules) must not run the command
    main()
