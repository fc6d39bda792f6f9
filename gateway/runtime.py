"""Everything one gateway process shares: settings, store, repositories, keys and caches.

Built once at start-up (``Runtime.start``) and handed to the service apps, which capture it in
closures; nothing here is a module-level global.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from functools import partial

from redis.asyncio import Redis

from cext.hotpath import AuthorityTable, CredentialCache
from gateway.assets import AssetService, BlobStore, LocalBlobStore, S3BlobStore, UrlSigner
from gateway.auth.authenticator import Authenticator
from gateway.auth.installation import InstallationKeys
from gateway.auth.keyring import KeyRing
from gateway.auth.scopes import AUTHORITIES
from gateway.auth.secretbox import SecretBox
from gateway.auth.tokens import TokenIssuer, TokenVerifier
from gateway.invocation.ratelimit import LocalRateLimit, RateLimit, RedisRateLimiter
from gateway.llm.priority import queue_lanes, queue_priority
from gateway.objectstore import S3Bucket
from gateway.private_files import make_private_dir
from gateway.redis_client import connect
from gateway.services.clusters.offers import RegistryClusterDirectory
from gateway.services.clusters.placement import ClusterGpuValidator, check_task_gpu
from gateway.services.clusters.registry import ClusterRegistry
from gateway.services.functions.catalog import Catalog
from gateway.services.functions.cluster_groups import ClusterDirectory, EmptyClusterDirectory
from gateway.services.functions.deployment_models import GpuValidator
from gateway.services.functions.routing import RoutingCache
from gateway.services.functions.secret_delivery import SecretDelivery
from gateway.services.tasks.gpus import TaskGpuValidator, accept_all_task_gpus
from gateway.settings import Settings
from gateway.shared.bus import InvalidationBus
from gateway.shared.cluster import SharedState
from gateway.store import Store, open_store
from gateway.store.accounts import Account, AccountRepository
from gateway.store.apikeys import ApiKeyRepository
from gateway.store.assets import AssetRepository
from gateway.store.clusters import ClusterRepository
from gateway.store.deployments import DeploymentRepository
from gateway.store.functions import AuthorizationRepository, FunctionRepository
from invoker.instance_redis import RedisInstanceRegistry
from invoker.instances import InstanceRegistry, MemoryInstanceRegistry
from invoker.presence import Presence
from invoker.queues import InvocationQueue, MemoryQueue
from invoker.queues.priority import PriorityLanes
from invoker.queues.redis import RedisQueue
from invoker.wire import RequestCodec

log = logging.getLogger("gateway")


@dataclass(slots=True)
class Runtime:
    settings: Settings
    store: Store
    accounts: AccountRepository
    api_keys: ApiKeyRepository
    keyring: KeyRing
    issuer: TokenIssuer
    verifier: TokenVerifier
    authorities: AuthorityTable
    credentials: CredentialCache
    authenticator: Authenticator
    default_account: Account
    secretbox: SecretBox
    instances: InstanceRegistry
    routes: RoutingCache
    catalog: Catalog
    # Function secrets to workers (Register, and pushes when they change).
    secret_delivery: SecretDelivery
    queues: InvocationQueue
    assets: AssetService
    # SIS: registered clusters, their credentials and revocation hooks.
    cluster_registry: ClusterRegistry
    # Checks deployment GPU/instance-type names against the clusters usable by the account (all pass while none is).
    gpu_validator: GpuValidator
    # The installation's keys (refreshed in the background) and the URL signer derived from them.
    installation: InstallationKeys
    url_signer: UrlSigner
    # Cluster groups for GET /v2/nvcf/clusterGroups (from the registered clusters).
    clusters: ClusterDirectory = field(default_factory=EmptyClusterDirectory)
    # Checks a task's gpu / instance type at creation; the SIS validator replaces the accept-all default.
    task_gpu_validator: TaskGpuValidator = accept_all_task_gpus
    # Random per start: names this process in Redis (liveness, replies, instances) and in /health.
    process_id: str = ""
    rate_limit: RateLimit = field(default_factory=LocalRateLimit)
    # With --redis: the shared client, this process's liveness key (invoker.presence), and what
    # it shares through Redis (invalidation bus, instance registry).
    redis: Redis | None = None
    presence: Presence | None = None
    shared: SharedState | None = None
    # With --object-store: the shared bucket holding asset blobs and large results.
    object_store: S3Bucket | None = None

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        make_private_dir(settings.data_dir)
        process_id = secrets.token_hex(8)
        store = await open_store(settings.database_url)
        client = connect(settings.redis) if settings.redis else None
        presence = Presence(client, process_id=process_id) if client is not None else None
        queues: InvocationQueue = MemoryQueue()
        if client is not None and presence is not None:
            # The id → version index must outlive a request's wait plus its run.
            index_ttl = settings.queue_lifetime_seconds + 3600
            queues = RedisQueue(client, presence, codec=RequestCodec(), index_ttl=index_ttl)
        try:
            accounts = AccountRepository(store.engine)
            default_account = await accounts.ensure(
                settings.default_nca_id, settings.default_nca_id, settings.admin_client_id
            )
            api_keys = ApiKeyRepository(store.engine)
            # Signing and sealing keys shared by every gateway of the installation (database).
            installation = await InstallationKeys.open(settings, store.engine)
            keyring = installation.keyring
            secretbox = SecretBox(installation.sealing_key)
            url_signer = UrlSigner.derive(installation.sealing_key)
            functions = FunctionRepository(store.engine)
            authorizations = AuthorizationRepository(store.engine)
            deployments = DeploymentRepository(store.engine)
            instances: InstanceRegistry
            shared: SharedState | None = None
            if client is not None:
                # A worker's entry outlives a missed refresh or two, not a dead process.
                ttl = 3 * settings.worker_heartbeat_ms / 1000
                registry = RedisInstanceRegistry(client, process_id, ttl_seconds=ttl)
                shared = SharedState(client, InvalidationBus(client, process_id), registry)
                instances = registry
            else:
                instances = MemoryInstanceRegistry()
            routes = RoutingCache(functions, authorizations, deployments)
            await routes.load_all()
            # Per-account queue priority of LLM functions: lanes over the memory or Redis queue.
            queues = PriorityLanes(queues, queue_priority(routes), queue_lanes(routes))
            catalog = Catalog(functions, authorizations, deployments, instances, routes, store.engine)
            cluster_repository = ClusterRepository(store.engine)
            object_config = settings.object_store_config()
            bucket = S3Bucket(object_config) if object_config is not None else None
            blobs: BlobStore = LocalBlobStore(settings.asset_path) if bucket is None else S3BlobStore(bucket)
            assets = AssetService(
                AssetRepository(store.engine),
                blobs,
                url_signer,
                url_ttl_seconds=settings.asset_url_ttl_seconds,
                max_bytes=settings.max_asset_bytes,
            )
        except BaseException:
            if client is not None:
                await client.aclose()
            await store.close()
            raise
        issuer = TokenIssuer(keyring, settings.issuer, settings.admin_token_ttl_seconds)
        verifier = TokenVerifier(keyring, settings.issuer, settings.trusted_issuer_map())
        authorities = AuthorityTable(AUTHORITIES)
        credentials = CredentialCache()
        authenticator = Authenticator(
            credentials,
            authorities,
            verifier,
            api_keys,
            accounts,
            local_issuer=settings.issuer,
            operator_client=settings.admin_client_id,
        )
        secret_delivery = SecretDelivery(functions, secretbox)
        if shared is not None:
            await shared.start(routes, authenticator, secret_delivery)
        installation.start()
        return cls(
            settings=settings,
            store=store,
            accounts=accounts,
            api_keys=api_keys,
            keyring=keyring,
            issuer=issuer,
            verifier=verifier,
            authorities=authorities,
            credentials=credentials,
            authenticator=authenticator,
            default_account=default_account,
            secretbox=secretbox,
            instances=instances,
            routes=routes,
            catalog=catalog,
            secret_delivery=secret_delivery,
            queues=queues,
            assets=assets,
            cluster_registry=ClusterRegistry(cluster_repository),
            gpu_validator=ClusterGpuValidator(cluster_repository),
            clusters=RegistryClusterDirectory(cluster_repository),
            task_gpu_validator=partial(check_task_gpu, cluster_repository),
            redis=client,
            presence=presence,
            process_id=process_id,
            rate_limit=RedisRateLimiter(client) if client is not None else LocalRateLimit(),
            shared=shared,
            installation=installation,
            url_signer=url_signer,
            object_store=bucket,
        )

    async def close(self) -> None:
        await self.installation.close()
        if self.shared is not None:
            await self.shared.close()
        await self.store.close()
        if self.object_store is not None:
            await self.object_store.aclose()
        if self.redis is not None:
            await self.redis.aclose()
