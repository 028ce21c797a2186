"""The exceptions kedro-gcs-bridge raises: one base class, one subclass per concern."""

from __future__ import annotations

from collections.abc import Iterable


class GCSBridgeError(Exception):
    """Base class of every error kedro-gcs-bridge raises on purpose."""


class ConfigError(GCSBridgeError):
    """The `airflow` config (airflow.yml, `--params`) has a key with a wrong value or type."""


class PlanError(GCSBridgeError):
    """The pipeline cannot become a DAG: bad tags, a cyclic grouping, an impossible pod size.

    Every problem found is kept in `problems`, so one run reports them all.
    """

    def __init__(self, pipeline_name: str, problems: Iterable[str]) -> None:
        self.pipeline_name = pipeline_name
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(
            f"Pipeline {pipeline_name} cannot be turned into an Airflow DAG "
            f"({len(self.problems)} problem(s)):\n{lines}"
        )


class ReplayError(GCSBridgeError):
    """A DAG file cannot be replayed (import errors, no DAG, not our operators)."""


class TrackingError(GCSBridgeError):
    """The MLflow tracking server failed while `mlflow.required: true` (else only a warning)."""


class HandoffError(GCSBridgeError):
    """A boundary dataset could not be saved to or loaded from the run prefix."""


class MissingHandoffError(HandoffError):
    """A boundary dataset that this group needs is not under the run prefix."""


class ChecksumError(HandoffError):
    """An object under the run prefix does not match the checksum its manifest records."""


class ForbiddenFormatError(HandoffError):
    """A value can only be stored as pickle, and pickle is forbidden by config."""


class NotCommittedError(MissingHandoffError):
    """The task that makes a boundary dataset has no committed manifest under the run prefix."""


class SupersededAttemptError(HandoffError):
    """A newer attempt of the same task committed first: this attempt's outputs are discarded."""


class MetadataError(HandoffError):
    """A manifest or a record in it is missing, not JSON, or lacks a field or has a wrong type."""


class ProtocolVersionError(HandoffError):
    """An object under the run prefix was written with a newer major run-prefix protocol."""


class SymlinkError(HandoffError):
    """A local object under the run prefix is a symlink, or resolves outside the prefix."""


class CatalogEnvError(GCSBridgeError):
    """`kedro gcs-bridge catalog` cannot write the GCS catalog env (bad root, bad env name)."""


class StorageUnreachableError(GCSBridgeError):
    """The storage behind a root URL (`runs list/gc`) does not answer in time, or refuses."""


class DeprecatedKeyWarning(FutureWarning):
    """An airflow config key is spelled the old, flat way (`pod_labels`): it still works."""


class DeployError(GCSBridgeError):
    """`kedro gcs-bridge deploy` refuses or fails: a file it did not write, a bad digest."""


class AirflowApiError(GCSBridgeError):
    """Airflow's REST API refused a request or did not answer (`kedro gcs-bridge trigger`)."""


class AirflowAuthError(AirflowApiError):
    """Airflow's REST API refused the token (HTTP 401): a new token may be let in."""


class AirflowUnavailableError(AirflowApiError):
    """Airflow's REST API did not answer, or answered busy or failing (HTTP 429, 5xx): the
    same request may succeed when asked again."""
