from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResultKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECT: _ClassVar[ResultKind]
    LARGE_RESULT: _ClassVar[ResultKind]

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    TASK_RUNNING: _ClassVar[TaskState]
    TASK_COMPLETED: _ClassVar[TaskState]
    TASK_ERRORED: _ClassVar[TaskState]
    TASK_CANCELED: _ClassVar[TaskState]
    TASK_EXCEEDED_MAX_RUNTIME_DURATION: _ClassVar[TaskState]
DIRECT: ResultKind
LARGE_RESULT: ResultKind
TASK_STATE_UNSPECIFIED: TaskState
TASK_RUNNING: TaskState
TASK_COMPLETED: TaskState
TASK_ERRORED: TaskState
TASK_CANCELED: TaskState
TASK_EXCEEDED_MAX_RUNTIME_DURATION: TaskState

class RegisterRequest(_message.Message):
    __slots__ = ("credential", "function_id", "version_id", "instance_id", "max_concurrency", "gpu", "instance_type", "backend", "location", "cluster_id", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    credential: str
    function_id: str
    version_id: str
    instance_id: str
    max_concurrency: int
    gpu: str
    instance_type: str
    backend: str
    location: str
    cluster_id: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, credential: _Optional[str] = ..., function_id: _Optional[str] = ..., version_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., max_concurrency: _Optional[int] = ..., gpu: _Optional[str] = ..., instance_type: _Optional[str] = ..., backend: _Optional[str] = ..., location: _Optional[str] = ..., cluster_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("session_id", "function_id", "version_id", "function_name", "nca_id", "inference_url", "inference_port", "heartbeat_interval_ms", "max_direct_response_bytes", "metadata", "secrets", "max_concurrency")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_NAME_FIELD_NUMBER: _ClassVar[int]
    NCA_ID_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_URL_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_PORT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_DIRECT_RESPONSE_BYTES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    function_id: str
    version_id: str
    function_name: str
    nca_id: str
    inference_url: str
    inference_port: int
    heartbeat_interval_ms: int
    max_direct_response_bytes: int
    metadata: _containers.ScalarMap[str, str]
    secrets: FunctionSecrets
    max_concurrency: int
    def __init__(self, session_id: _Optional[str] = ..., function_id: _Optional[str] = ..., version_id: _Optional[str] = ..., function_name: _Optional[str] = ..., nca_id: _Optional[str] = ..., inference_url: _Optional[str] = ..., inference_port: _Optional[int] = ..., heartbeat_interval_ms: _Optional[int] = ..., max_direct_response_bytes: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ..., secrets: _Optional[_Union[FunctionSecrets, _Mapping]] = ..., max_concurrency: _Optional[int] = ...) -> None: ...

class FunctionSecrets(_message.Message):
    __slots__ = ("secrets_json",)
    SECRETS_JSON_FIELD_NUMBER: _ClassVar[int]
    secrets_json: bytes
    def __init__(self, secrets_json: _Optional[bytes] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class InputAsset(_message.Message):
    __slots__ = ("asset_id", "url", "content_type")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    url: str
    content_type: str
    def __init__(self, asset_id: _Optional[str] = ..., url: _Optional[str] = ..., content_type: _Optional[str] = ...) -> None: ...

class Invocation(_message.Message):
    __slots__ = ("request_id", "method", "path", "headers", "body", "deadline_ms", "attempt", "compat", "assets", "subject", "nca_id", "poll_seconds", "enqueued_at_ms", "grpc")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    COMPAT_FIELD_NUMBER: _ClassVar[int]
    ASSETS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    NCA_ID_FIELD_NUMBER: _ClassVar[int]
    POLL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    GRPC_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    method: str
    path: str
    headers: _containers.RepeatedCompositeFieldContainer[Header]
    body: bytes
    deadline_ms: int
    attempt: int
    compat: bool
    assets: _containers.RepeatedCompositeFieldContainer[InputAsset]
    subject: str
    nca_id: str
    poll_seconds: int
    enqueued_at_ms: int
    grpc: GrpcCall
    def __init__(self, request_id: _Optional[str] = ..., method: _Optional[str] = ..., path: _Optional[str] = ..., headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., body: _Optional[bytes] = ..., deadline_ms: _Optional[int] = ..., attempt: _Optional[int] = ..., compat: _Optional[bool] = ..., assets: _Optional[_Iterable[_Union[InputAsset, _Mapping]]] = ..., subject: _Optional[str] = ..., nca_id: _Optional[str] = ..., poll_seconds: _Optional[int] = ..., enqueued_at_ms: _Optional[int] = ..., grpc: _Optional[_Union[GrpcCall, _Mapping]] = ...) -> None: ...

class GrpcCall(_message.Message):
    __slots__ = ("streaming_requests",)
    STREAMING_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    streaming_requests: bool
    def __init__(self, streaming_requests: _Optional[bool] = ...) -> None: ...

class GrpcRequestFrames(_message.Message):
    __slots__ = ("request_id", "data", "half_close")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    HALF_CLOSE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    data: bytes
    half_close: bool
    def __init__(self, request_id: _Optional[str] = ..., data: _Optional[bytes] = ..., half_close: _Optional[bool] = ...) -> None: ...

class GrpcTrailers(_message.Message):
    __slots__ = ("request_id", "code", "message", "metadata")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    code: int
    message: str
    metadata: _containers.RepeatedCompositeFieldContainer[Header]
    def __init__(self, request_id: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., metadata: _Optional[_Iterable[_Union[Header, _Mapping]]] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ("request_id", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GatewayMessage(_message.Message):
    __slots__ = ("invocations", "cancels", "ping", "drain", "grpc_requests", "secrets")
    INVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    CANCELS_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    GRPC_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    invocations: _containers.RepeatedCompositeFieldContainer[Invocation]
    cancels: _containers.RepeatedCompositeFieldContainer[Cancel]
    ping: bool
    drain: bool
    grpc_requests: _containers.RepeatedCompositeFieldContainer[GrpcRequestFrames]
    secrets: FunctionSecrets
    def __init__(self, invocations: _Optional[_Iterable[_Union[Invocation, _Mapping]]] = ..., cancels: _Optional[_Iterable[_Union[Cancel, _Mapping]]] = ..., ping: _Optional[bool] = ..., drain: _Optional[bool] = ..., grpc_requests: _Optional[_Iterable[_Union[GrpcRequestFrames, _Mapping]]] = ..., secrets: _Optional[_Union[FunctionSecrets, _Mapping]] = ...) -> None: ...

class ResponseStart(_message.Message):
    __slots__ = ("request_id", "status", "headers", "kind")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: int
    headers: _containers.RepeatedCompositeFieldContainer[Header]
    kind: ResultKind
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[int] = ..., headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., kind: _Optional[_Union[ResultKind, str]] = ...) -> None: ...

class ResponseChunk(_message.Message):
    __slots__ = ("request_id", "data")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    data: bytes
    def __init__(self, request_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ResponseEnd(_message.Message):
    __slots__ = ("request_id", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    error: str
    def __init__(self, request_id: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("request_id", "percent", "partial_response")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    percent: int
    partial_response: bytes
    def __init__(self, request_id: _Optional[str] = ..., percent: _Optional[int] = ..., partial_response: _Optional[bytes] = ...) -> None: ...

class WorkerMessage(_message.Message):
    __slots__ = ("credits", "starts", "chunks", "progress", "ends", "heartbeat", "draining", "grpc_trailers")
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    STARTS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ENDS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    GRPC_TRAILERS_FIELD_NUMBER: _ClassVar[int]
    credits: int
    starts: _containers.RepeatedCompositeFieldContainer[ResponseStart]
    chunks: _containers.RepeatedCompositeFieldContainer[ResponseChunk]
    progress: _containers.RepeatedCompositeFieldContainer[Progress]
    ends: _containers.RepeatedCompositeFieldContainer[ResponseEnd]
    heartbeat: bool
    draining: bool
    grpc_trailers: _containers.RepeatedCompositeFieldContainer[GrpcTrailers]
    def __init__(self, credits: _Optional[int] = ..., starts: _Optional[_Iterable[_Union[ResponseStart, _Mapping]]] = ..., chunks: _Optional[_Iterable[_Union[ResponseChunk, _Mapping]]] = ..., progress: _Optional[_Iterable[_Union[Progress, _Mapping]]] = ..., ends: _Optional[_Iterable[_Union[ResponseEnd, _Mapping]]] = ..., heartbeat: _Optional[bool] = ..., draining: _Optional[bool] = ..., grpc_trailers: _Optional[_Iterable[_Union[GrpcTrailers, _Mapping]]] = ...) -> None: ...

class TaskHello(_message.Message):
    __slots__ = ("credential", "instance_id", "gpu", "instance_type", "cluster_id", "backend", "max_tasks", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    credential: str
    instance_id: str
    gpu: str
    instance_type: str
    cluster_id: str
    backend: str
    max_tasks: int
    labels: _containers.ScalarMap[str, str]
    def __init__(self, credential: _Optional[str] = ..., instance_id: _Optional[str] = ..., gpu: _Optional[str] = ..., instance_type: _Optional[str] = ..., cluster_id: _Optional[str] = ..., backend: _Optional[str] = ..., max_tasks: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TaskWelcome(_message.Message):
    __slots__ = ("session_id", "heartbeat_interval_ms")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    heartbeat_interval_ms: int
    def __init__(self, session_id: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ...) -> None: ...

class TaskAssignment(_message.Message):
    __slots__ = ("task_id", "nca_id", "name", "container_image", "container_args", "environment", "max_runtime_ms", "termination_grace_ms", "secrets_json", "launched_at_ms")
    class EnvironmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NCA_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_IMAGE_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ARGS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    MAX_RUNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_GRACE_MS_FIELD_NUMBER: _ClassVar[int]
    SECRETS_JSON_FIELD_NUMBER: _ClassVar[int]
    LAUNCHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    nca_id: str
    name: str
    container_image: str
    container_args: str
    environment: _containers.ScalarMap[str, str]
    max_runtime_ms: int
    termination_grace_ms: int
    secrets_json: bytes
    launched_at_ms: int
    def __init__(self, task_id: _Optional[str] = ..., nca_id: _Optional[str] = ..., name: _Optional[str] = ..., container_image: _Optional[str] = ..., container_args: _Optional[str] = ..., environment: _Optional[_Mapping[str, str]] = ..., max_runtime_ms: _Optional[int] = ..., termination_grace_ms: _Optional[int] = ..., secrets_json: _Optional[bytes] = ..., launched_at_ms: _Optional[int] = ...) -> None: ...

class TaskStop(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TaskGatewayMessage(_message.Message):
    __slots__ = ("welcome", "assignments", "stops", "ping")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    STOPS_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    welcome: TaskWelcome
    assignments: _containers.RepeatedCompositeFieldContainer[TaskAssignment]
    stops: _containers.RepeatedCompositeFieldContainer[TaskStop]
    ping: bool
    def __init__(self, welcome: _Optional[_Union[TaskWelcome, _Mapping]] = ..., assignments: _Optional[_Iterable[_Union[TaskAssignment, _Mapping]]] = ..., stops: _Optional[_Iterable[_Union[TaskStop, _Mapping]]] = ..., ping: _Optional[bool] = ...) -> None: ...

class TaskUpdate(_message.Message):
    __slots__ = ("task_id", "state", "percent_complete", "last_updated_at_ms", "message")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    state: TaskState
    percent_complete: int
    last_updated_at_ms: int
    message: str
    def __init__(self, task_id: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., percent_complete: _Optional[int] = ..., last_updated_at_ms: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class TaskResultReport(_message.Message):
    __slots__ = ("task_id", "name", "metadata_json")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    name: str
    metadata_json: bytes
    def __init__(self, task_id: _Optional[str] = ..., name: _Optional[str] = ..., metadata_json: _Optional[bytes] = ...) -> None: ...

class TaskWorkerMessage(_message.Message):
    __slots__ = ("hello", "results", "updates", "heartbeat", "running")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    hello: TaskHello
    results: _containers.RepeatedCompositeFieldContainer[TaskResultReport]
    updates: _containers.RepeatedCompositeFieldContainer[TaskUpdate]
    heartbeat: bool
    running: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, hello: _Optional[_Union[TaskHello, _Mapping]] = ..., results: _Optional[_Iterable[_Union[TaskResultReport, _Mapping]]] = ..., updates: _Optional[_Iterable[_Union[TaskUpdate, _Mapping]]] = ..., heartbeat: _Optional[bool] = ..., running: _Optional[_Iterable[str]] = ...) -> None: ...
