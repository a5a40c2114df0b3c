"""The `behave-bstack` command: one module per subcommand, `main` parses the command
line.  Runs in its own process; nothing imports it but `behave_bstack.__main__`."""
