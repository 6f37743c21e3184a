"""Self-enrolment: join with double opt-in, consents, magic-link sign-in, self-service (see docs/members.md)."""
