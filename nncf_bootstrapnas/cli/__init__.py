"""Command-line interface ``nncf-bootstrapnas`` (also ``python -m nncf_bootstrapnas.cli.main``).

Subcommands: run (the whole pipeline), train, search, export, benchmark, generate, quality. Heavy packages (torch,
nncf, openvino) are imported only inside a command, so ``--help`` and configuration errors are instant.
"""
