"""Fuzz harness for every msjax reader: seeds, mutators, a subprocess runner.

    python -m tests.fuzz.run --reader all --cases 2000 --jobs 2
    python -m tests.fuzz.run --reader pth --case 17 --show

Modules: ``seeds`` (seed files written by msjax, a torch-free .pth), ``mut_bytes`` /
``mut_proto`` / ``mut_ckpt`` / ``mut_safetensors`` / ``mut_pth`` (mutators), ``mutate`` (one
case from (reader, case number)), ``targets`` (the reader calls), ``worker`` (the child that
runs cases) and ``run`` (the runner, its report and the command line).
"""
