"""Scope names and authorities, as NVCF's control plane and API Keys service define them.

A JWT scope ``s`` is the authority ``s``; an API-key scope ``s`` is the authority ``apikey:s``.
Endpoints accept ``hasAnyAuthority(s, apikey:s)`` unless they are JWT-only.
"""

from __future__ import annotations

APIKEY_PREFIX = "apikey:"

# What `POST /v1/admin/keys` puts in the admin token (reference §3.1, in that order).
ADMIN_DEFAULT_SCOPES: tuple[str, ...] = (
    "register_function",
    "list_functions",
    "list_functions_details",
    "deploy_function",
    "update_function",
    "update_secrets",
    "delete_function",
    "manage_telemetries",
    "manage_registry_credentials",
    "cluster-management",
)

FUNCTION_KEY_DEFAULT_SCOPES: tuple[str, ...] = (
    "invoke_function",
    "list_functions",
    "queue_details",
    "list_functions_details",
)

TASK_KEY_DEFAULT_SCOPES: tuple[str, ...] = (
    "launch_task",
    "list_tasks",
    "task_details",
    "cancel_task",
    "delete_task",
    "list_events",
    "list_results",
    "update_secrets",
)

EXTRA_SCOPES: tuple[str, ...] = ("authorize_clients", "list_cluster_groups", "account_setup")

ALL_SCOPES: tuple[str, ...] = tuple(
    dict.fromkeys(ADMIN_DEFAULT_SCOPES + FUNCTION_KEY_DEFAULT_SCOPES + TASK_KEY_DEFAULT_SCOPES + EXTRA_SCOPES)
)

# Every authority the hot path knows as a bit (plain and apikey: forms).
AUTHORITIES: tuple[str, ...] = ALL_SCOPES + tuple(APIKEY_PREFIX + s for s in ALL_SCOPES)

FUNCTIONS_PRODUCT = "nv-cloud-functions"
TASKS_PRODUCT = "nv-cloud-tasks"


def jwt_authorities(scopes: list[str] | tuple[str, ...]) -> frozenset[str]:
    return frozenset(s for s in scopes if isinstance(s, str))


def apikey_authorities(scopes: list[str] | tuple[str, ...]) -> frozenset[str]:
    return frozenset(APIKEY_PREFIX + s for s in scopes if isinstance(s, str))
