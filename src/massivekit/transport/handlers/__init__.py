"""Protocol handlers shipped with the transport: Massive, generic JSON, JSON-RPC 2.0."""
