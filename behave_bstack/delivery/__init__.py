"""Delivery: the uploader process that follows a journal and sends it to TRA, in
dependency order, within the API's limits, over the standard library's HTTP.  Runs in
the uploader process and in `behave-bstack upload`; never in behave's process."""
