"""Notifications: what happened to a job or a license, told to the organisations it concerns by
signed webhooks and by e-mail. Domain apps announce changes with Django signals and the job
lifecycle with `clearstem.jobs.signals`; this app listens (never the other way round), records
one event per organisation after the change commits, and delivers it from a Dramatiq actor."""
