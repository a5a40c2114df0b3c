"""The journal: a run's files on disk, the only code that writes or reads them, the
compact drafts and the catalog that expands them, the machine-wide registry of the
processes of one build, and removing journals that are done.  Written by behave's
process, read by the uploader and the command."""
