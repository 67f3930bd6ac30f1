"""`cmarket demo`: the live marketplace (`live`), or the protocol alone in one process (`scripted`).
The command is in `command.py`; the demos are imported from their modules when run."""
