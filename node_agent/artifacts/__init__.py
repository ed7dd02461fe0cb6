"""Build artifacts: the store on JetStream, the agent's local cache, workspace layout, output collection."""
