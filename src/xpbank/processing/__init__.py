"""Applying a record: `handle_record` decodes it, runs the core and returns the outputs
and state changes, through the state protocol. `xpbank simulate` and every runtime call
it, which is why they make the same decisions."""
