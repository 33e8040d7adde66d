"""The mock Massive server: REST and WebSocket, faithful to the service and its failures."""
