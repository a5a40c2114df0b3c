"""Small helpers every part may use (clock, platform differences, private files and
directories, shared defaults).  Runs in every process; imports nothing else of ours."""
