"""SamSyn's own `/api/v1` API (github Mistra-C2B2/samsyn), served by a thin adapter.

The real SamSyn frontend calls these paths with its own shapes. Every route here translates
a request into a call on the samsyn services (the same permissions, events and caches as
`/api/...`) and the answer back into SamSyn's shape; no logic lives here twice.
"""
