"""A tiny stand-in for Mozilla's Antenna crash-report collector: only its
health endpoints, which is what running it behind a load balancer needs."""
