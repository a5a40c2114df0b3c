"""The behave side: what runs inside behave's process.  The session wires settings,
journal and uploader; the tracker follows behave's callbacks, hooks and captured output
and journals what ran; `api` is what step code may call (behave_bstack.attach, ...)."""
