"""MLflow: one parent run per DAG run (found through the run prefix), one child run per group.

Used by the pod (the group's child run) and by finalize (the parent's status). MLflow itself is
imported only when a tracking URI is configured.
"""
