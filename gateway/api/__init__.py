"""The gateway's HTTP side: REST API, dashboard, reports and metrics."""
