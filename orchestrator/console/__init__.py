"""The web console (`niyantra console`): a read-side process serving pages and `/metrics`.

Rooms: `dag` (the graph drawn as layered SVG), `pages` and `taskpage` (HTML of each page),
`prom` (the Prometheus text format) are pure functions of view values and events; `state`
(mirrors of the views and a follower of the log) and `app` (the Starlette routes) are the shell.
It may import the read side (projections, queries, explain, why, snapshot, gantt, metrics) and
the write side's application only to approve or reject, never the decider process.
"""
