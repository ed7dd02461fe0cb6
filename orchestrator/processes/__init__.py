"""The long-running processes around the core: the decider, the watchdog, the decider's follow-up
hook, and the shell they share (logging, signals, the ready file).

May import: everything below the CLI (`decision`, `writeside`, `runtime`, `projections`, `schemas`).
Not `cli`.
"""
