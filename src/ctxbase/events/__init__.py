"""Live events and their delivery: notification of waiters, matching, transports, worker."""
