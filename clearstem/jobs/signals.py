"""The job lifecycle's events, for the parts of the platform that react to them (notifications)
without the lifecycle knowing them.

`job_state_changed` is sent by `lifecycle.transition` inside the writer's transaction, after the
new state is saved: receivers that act outside the database must wait for the commit
(`transaction.on_commit`). Arguments: job, state (the new one), previous."""
from django.dispatch import Signal

job_state_changed = Signal()

#: Sent after each reconciler pass over the jobs (`reconciler.reconcile_once`), so other parts of
#: the platform re-send work a broker lost (webhook deliveries) on the same schedule. No arguments.
reconciler_pass = Signal()
