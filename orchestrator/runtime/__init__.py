"""Running niyantra: how a process reaches NATS (servers, credentials, ordered consumers that
survive a lost server), the embedded nats-server, a cluster, the supervisor of `up`/`down`, ports
and per-role authorization.

May import: `schemas`, `orchestrator.errors`; the supervisor and cluster start processes by
module name. Not `decision`, `cli`.
"""
