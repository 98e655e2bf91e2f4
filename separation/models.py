# Separation keeps no tables of its own: jobs and stems live in clearstem.jobs.
