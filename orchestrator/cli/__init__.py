"""The `niyantra` command line: one module per command group, each registering on the typer app;
`main` is the console-script entry point.

May import: anything in the project (the CLI is the outermost shell, and the only package that
imports rich). Nothing imports the CLI.
"""
