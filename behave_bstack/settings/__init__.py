"""The settings of a run: env vars, browserstack.yml, behave's config files and -D
userdata, resolved into one Settings; and the project root they are relative to.
Runs in behave's process and in the command (the uploader gets them as one JSON line)."""
