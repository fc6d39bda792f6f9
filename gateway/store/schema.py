"""Table definitions (SQLAlchemy Core). Times are integer epoch milliseconds: portable and exact."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", BigInteger, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("nca_id", String(64), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("admin_client_id", String(128), nullable=True, unique=True),
    Column("limits", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    # sha256 of the key: the value itself is never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("nca_id", String(64), nullable=False),
    Column("owner_id", String(256), nullable=False),
    Column("owner_type", String(16), nullable=False),
    Column("issuer_service_id", String(128), nullable=False),
    Column("audience_service_ids", JSON, nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("authorizations", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_api_keys_owner", "issuer_service_id", "owner_id"),
)

# --- NVCF control plane (migration 2) -------------------------------------------------------------

function_versions = Table(
    "function_versions",
    metadata,
    Column("version_id", String(36), primary_key=True),
    Column("function_id", String(36), nullable=False),
    Column("nca_id", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    # The CreateFunctionRequest as accepted (camelCase JSON), secrets removed.
    Column("spec", JSON, nullable=False),
    Column("public", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_function_versions_function", "function_id"),
    Index("ix_function_versions_nca", "nca_id"),
)

# Secret values encrypted at rest (gateway.auth.secrets); names are listed in FunctionDto.
function_secrets = Table(
    "function_secrets",
    metadata,
    Column("version_id", String(36), primary_key=True),
    Column("name", String(48), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

deployments = Table(
    "deployments",
    metadata,
    Column("deployment_id", String(36), primary_key=True),
    Column("function_id", String(36), nullable=False),
    Column("version_id", String(36), nullable=False, unique=True),
    Column("nca_id", String(64), nullable=False),
    # [GpuSpecificationDto, …] with server-assigned gpuSpecificationId.
    Column("specs", JSON, nullable=False),
    Column("health_info", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Accounts a function (version_id == "") or one version is shared with.
function_authorizations = Table(
    "function_authorizations",
    metadata,
    Column("function_id", String(36), primary_key=True),
    Column("version_id", String(36), primary_key=True),
    Column("nca_id", String(64), primary_key=True),
    Column("client_id", String(128), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

telemetries = Table(
    "telemetries",
    metadata,
    Column("telemetry_id", String(36), primary_key=True),
    Column("nca_id", String(64), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("secret_name", String(48), nullable=True),
    Column("ciphertext", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_telemetries_nca", "nca_id"),
)

registry_credentials = Table(
    "registry_credentials",
    metadata,
    Column("credential_id", String(36), primary_key=True),
    Column("nca_id", String(64), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("secret_name", String(48), nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_registry_credentials_nca", "nca_id"),
)

assets = Table(
    "assets",
    metadata,
    Column("asset_id", String(36), primary_key=True),
    Column("nca_id", String(64), nullable=False),
    Column("content_type", String(256), nullable=False),
    Column("description", Text, nullable=False),
    Column("size", BigInteger, nullable=True),
    Column("uploaded_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_assets_nca", "nca_id"),
)

CONTROL_PLANE_TABLES = (
    function_versions,
    function_secrets,
    deployments,
    function_authorizations,
    telemetries,
    registry_credentials,
    assets,
)

# --- SIS cluster registry (migration 3) -----------------------------------------------------------

clusters = Table(
    "clusters",
    metadata,
    Column("cluster_id", String(36), primary_key=True),
    Column("nca_id", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("group_name", String(128), nullable=False),
    # sha256 of the cluster credential (``nvcc-…``): the value itself is never stored.
    Column("credential_hash", String(64), nullable=False, unique=True),
    # The registration as accepted (camelCase JSON): region, gpus, authorizedNCAIds, ….
    Column("spec", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ux_clusters_nca_name", "nca_id", "name", unique=True),
)

# --- NVCT tasks (migration 4) ----------------------------------------------------------------------

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(36), primary_key=True),
    Column("nca_id", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("status", String(40), nullable=False),
    # The CreateTaskRequest as accepted (camelCase JSON, defaults filled in), secrets removed.
    Column("spec", JSON, nullable=False),
    Column("percent_complete", Integer, nullable=True),
    # The worker instance running it ({instanceId, gpu, instanceType, clusterId}), once launched.
    Column("instance", JSON, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("launched_at", BigInteger, nullable=True),
    Column("last_heartbeat_at", BigInteger, nullable=True),
    # The progress file's lastUpdatedAt as last reported.
    Column("last_progress_at", BigInteger, nullable=True),
    Index("ix_tasks_nca_created", "nca_id", "created_at"),
    Index("ix_tasks_status", "status"),
)

task_events = Table(
    "task_events",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("task_id", String(36), nullable=False),
    Column("nca_id", String(64), nullable=False),
    Column("message", Text, nullable=False),
    # Order within a task (created_at alone ties within a millisecond).
    Column("seq", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_task_events_task", "task_id", "seq"),
)

task_results = Table(
    "task_results",
    metadata,
    Column("result_id", String(36), primary_key=True),
    Column("task_id", String(36), nullable=False),
    Column("nca_id", String(64), nullable=False),
    Column("name", String(512), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_task_results_task", "task_id", "seq"),
    Index("ux_task_results_name", "task_id", "name", unique=True),
)

# Secret values encrypted at rest (context ``task-secret:<taskId>:<name>``); only names are shown.
task_secrets = Table(
    "task_secrets",
    metadata,
    Column("task_id", String(36), primary_key=True),
    Column("name", String(48), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

TASK_TABLES = (tasks, task_events, task_results, task_secrets)


# --- keys shared by every gateway of an installation (migration 6) --------------------------------

# Token-signing keys (kind "signing", name = kid) and the sealing key (kind "sealing"), each
# sealed (AES-256-GCM) by the installation's master key, which never enters the database.
installation_keys = Table(
    "installation_keys",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("sealed", Text, nullable=False),
)
