"""One module per subcommand: ``add(subparsers)`` declares its flags, ``execute(args) -> exit code`` runs it."""

from nncf_bootstrapnas.cli.commands import benchmark, export, generate, quality, run, search, train

ALL = (run, train, search, export, benchmark, generate, quality)

__all__ = ["ALL"]
