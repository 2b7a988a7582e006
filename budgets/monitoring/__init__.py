"""Health, readiness and metrics endpoints for operators' probes and Prometheus."""
