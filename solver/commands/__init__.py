"""The command line, a module per command (solver/commands/main.py holds the registry)."""
