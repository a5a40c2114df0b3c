"""Where the build ran: CI provider, version control, host.  Runs in behave's process
and in the command (`doctor`, `open`)."""
