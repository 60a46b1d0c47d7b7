"""Fuzz harness for every msjax reader: seeds, mutators, a subprocess runner.

    python -m tests.fuzz.run --reader all --cases 2000 --jobs 2
    python -m tests.fuzz.run --reader pth --case 17 --show
"""
