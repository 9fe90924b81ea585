"""Gatepost gateway: MQTT ingest, store, alarms, REST API and the command-center dashboard."""
