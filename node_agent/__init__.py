"""The node agent: registers a machine, runs the tasks dispatched to it, reports back."""
