"""Read models of niyantra: pure ``evolve`` functions and the runner that publishes them to KV."""
