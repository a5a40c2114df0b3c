"""How a Gherkin scenario (behave's model, or the plain reader's) maps onto TRA's fields:
names, scopes, tags, statuses, code, step texts.  Pure functions of the model, no I/O.
Runs in behave's process (the tracker) and in the reader of a journal (the catalog)."""
