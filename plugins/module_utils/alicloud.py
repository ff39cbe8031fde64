"""The one client layer of the alicloud_* modules.

- Credentials: module options, then the environment (ALIBABA_CLOUD_ACCESS_KEY_ID, ..._SECRET,
  ..._SECURITY_TOKEN), then a profile, then the ECS RAM role (alibabacloud_credentials); the
  source is remembered so that a rejected credential can be named without showing a secret.
- Clients: the official Tea SDK client per RPC product, on its own host (`endpoints`), one host for
  every product (`endpoint`: localcloud) or the SDK's public endpoint for the region, and an OSS
  (alibabacloud_oss_v2) client with `oss_endpoint`.
- Calls: `AlicloudModule.call(product, action, params)` builds the SDK request model from an
  API-shaped dict, retries throttling and 5xx answers with jittered backoff, and returns the
  response body as a dict; an SDK error becomes one clear failure with Alibaba's code, message
  and request id.
- Waiters: `wait_for` polls a describe function until a state is reached.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import random
import re
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

try:
    from alibabacloud_tea_openapi.models import Config
    from Tea.exceptions import TeaException
    HAS_SDK = True
    SDK_IMPORT_ERROR = None
except ImportError as import_error:  # pragma: no cover - reported by the module
    HAS_SDK = False
    SDK_IMPORT_ERROR = import_error
    TeaException = Exception

RPC_PRODUCTS = {
    "ecs": "alibabacloud_ecs20140526",
    "ess": "alibabacloud_ess20220222",
    "ram": "alibabacloud_ram20150501",
    "vpc": "alibabacloud_vpc20160428",
    "sts": "alibabacloud_sts20150401",
    "cms": "alibabacloud_cms20190101",
}

# The creates whose APIs take a ClientToken (ECS, VPC and ESS: "ensure the idempotence of the request"): each
# call gets one, kept across its retries, so a create that timed out after the cloud made the resource returns
# that resource when it is tried again instead of making a second.
IDEMPOTENT_CREATES = frozenset({
    ("ecs", "RunInstances"), ("ecs", "CreateImage"), ("ecs", "CreateSecurityGroup"), ("vpc", "CreateVpc"),
    ("vpc", "CreateVSwitch"), ("ess", "CreateScalingGroup"), ("ess", "CreateScalingConfiguration"),
})

# Answers worth retrying: throttling and transient service errors (plus every 5xx status).
RETRYABLE_CODES = frozenset({
    "Throttling", "Throttling.User", "Throttling.Api", "Throttling.Resource", "ServiceUnavailable",
    "ServiceBusy", "SystemBusy", "InternalError", "UnknownError", "OperationConflict",
    "LastTokenProcessing", "RequestTimeout",
})

# Answers that mean the credentials themselves were refused.
CREDENTIAL_CODES = frozenset({
    "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId", "InvalidAccessKeyId.Inactive",
    "SignatureDoesNotMatch", "InvalidSecurityToken.Expired", "InvalidSecurityToken.Malformed",
    "InvalidSecurityToken.MismatchWithAccessKey", "IncompleteSignature", "InvalidAccessKeySecret",
})

ENV_ACCESS_KEY = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALICLOUD_ACCESS_KEY")
ENV_SECRET_KEY = ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALICLOUD_SECRET_KEY")
ENV_SECURITY_TOKEN = ("ALIBABA_CLOUD_SECURITY_TOKEN", "ALICLOUD_SECURITY_TOKEN")
ENV_REGION = ("ALIBABA_CLOUD_REGION_ID", "ALICLOUD_REGION")
ENV_ENDPOINT = ("ALIBABA_CLOUD_ENDPOINT", "LOCALCLOUD_ENDPOINT")
ENV_OSS_ENDPOINT = ("ALIBABA_CLOUD_OSS_ENDPOINT", "LOCALCLOUD_OSS_ENDPOINT")
ENV_PROFILE = ("ALIBABA_CLOUD_PROFILE",)
ENV_ECS_RAM_ROLE = ("ALIBABA_CLOUD_ECS_METADATA",)

MAX_ATTEMPTS = 6
BASE_DELAY = 0.5
MAX_DELAY = 20.0


def common_argument_spec() -> dict[str, Any]:
    """The options every alicloud_* module takes (documented once in the `alicloud` doc fragment)."""
    return dict(
        region=dict(type="str", aliases=["region_id"]),
        # The id is masked too (-vvv prints the invocation): with its secret it is a credential.
        access_key=dict(type="str", aliases=["access_key_id"], no_log=True),
        secret_key=dict(type="str", aliases=["access_key_secret"], no_log=True),
        security_token=dict(type="str", no_log=True),
        profile=dict(type="str"),
        ecs_ram_role=dict(type="str"),
        endpoint=dict(type="str"),
        endpoints=dict(type="dict"),
        oss_endpoint=dict(type="str"),
        api_retries=dict(type="int", default=MAX_ATTEMPTS - 1),
    )


def first_env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def mask(access_key_id: str | None) -> str:
    """An access key id shown only by its last four characters."""
    if not access_key_id:
        return "(none)"
    return "****" + access_key_id[-4:]


class Credentials:
    """Where the credentials came from and how to give them to a client; never printed whole."""

    def __init__(self, source: str, access_key_id: str | None = None, access_key_secret: str | None = None,
                 security_token: str | None = None, provider: Any = None) -> None:
        self.source = source
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token = security_token
        self.provider = provider

    def describe(self) -> str:
        if self.access_key_id:
            return f"{self.source} (access key id {mask(self.access_key_id)})"
        return self.source

    def tea_fields(self) -> dict[str, Any]:
        if self.provider is not None:
            from alibabacloud_credentials.client import Client as CredentialClient
            return {"credential": CredentialClient(provider=self.provider)}
        return {"access_key_id": self.access_key_id, "access_key_secret": self.access_key_secret,
                "security_token": self.security_token}

    def static(self) -> tuple[str, str, str | None]:
        """Key id, secret and token, resolving a provider (profile, RAM role) once."""
        if self.provider is None:
            return self.access_key_id or "", self.access_key_secret or "", self.security_token
        found = self.provider.get_credentials()
        return found.get_access_key_id(), found.get_access_key_secret(), found.get_security_token()


class CredentialsError(Exception):
    pass


def resolve_credentials(params: dict[str, Any]) -> Credentials:
    """The credentials chain: module options, environment, profile, ECS RAM role, SDK default chain."""
    key, secret = params.get("access_key"), params.get("secret_key")
    if key or secret:
        if not (key and secret):
            raise CredentialsError("access_key and secret_key must be given together (module options).")
        return Credentials("the module options access_key/secret_key", key, secret, params.get("security_token"))
    key, secret = first_env(ENV_ACCESS_KEY), first_env(ENV_SECRET_KEY)
    if key or secret:
        if not (key and secret):
            raise CredentialsError("ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET must be set "
                                   "together (environment).")
        return Credentials("the environment variables ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET", key, secret,
                           params.get("security_token") or first_env(ENV_SECURITY_TOKEN))
    profile = params.get("profile") or first_env(ENV_PROFILE)
    if profile:
        from alibabacloud_credentials.provider import ProfileCredentialsProvider
        return Credentials(f"the profile {profile!r}", provider=ProfileCredentialsProvider(profile_name=profile))
    role = params.get("ecs_ram_role") or first_env(ENV_ECS_RAM_ROLE)
    if role:
        from alibabacloud_credentials.provider import EcsRamRoleCredentialsProvider
        return Credentials(f"the ECS RAM role {role!r} (instance metadata)",
                           provider=EcsRamRoleCredentialsProvider(role_name=role))
    from alibabacloud_credentials.provider import DefaultCredentialsProvider
    return Credentials("the default credentials chain of alibabacloud_credentials (credentials file, "
                       "ECS RAM role)", provider=DefaultCredentialsProvider())


def _exception_chain(err: BaseException) -> list[BaseException]:
    """`err` and what caused it: darabonba's inner exceptions, urllib3's reasons, Python's causes."""
    chain: list[BaseException] = []
    current: Any = err
    while isinstance(current, BaseException) and current not in chain and len(chain) < 12:
        chain.append(current)
        current = (getattr(current, "inner_exception", None) or getattr(current, "reason", None)
                   or current.__cause__ or current.__context__)
    return chain


def unreachable(err: BaseException) -> str:
    """Why a request did not get through, in words: the host and port it went to and the cause (the name does
    not resolve, the connection was refused, it timed out, TLS failed), not an exception's repr."""
    chain = _exception_chain(err)
    text = " ".join(str(e) for e in chain)
    where = re.search(r"host='([^']+)', port=(\d+)", text)
    host = f"{where.group(1)}:{where.group(2)}" if where else "the endpoint"
    names = {type(e).__name__ for e in chain}
    innermost = chain[-1]
    if names & {"NameResolutionError", "gaierror"} or isinstance(innermost, socket.gaierror):
        cause = f"its name does not resolve ({innermost})"
    elif names & {"ConnectionRefusedError"}:
        cause = "the connection was refused (nothing listens there)"
    elif names & {"ConnectTimeoutError", "ReadTimeoutError", "TimeoutError", "timeout", "ConnectTimeout"}:
        cause = "it did not answer in time (timed out: a firewall, no route, or no network to it)"
    elif any(isinstance(e, ssl.SSLError) for e in chain) or "SSLError" in names:
        cause = f"TLS failed ({innermost})"
    else:
        cause = f"{type(innermost).__name__}: {str(innermost)[:200]}"
    return f"{host} could not be reached: {cause}"


class AlicloudError(Exception):
    """An API answer the module cannot go on from: Alibaba's code, message and request id."""

    def __init__(self, action: str, code: str, message: str, request_id: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(f"{action}: {code}: {message}")
        self.action = action
        self.code = code
        self.message = message
        self.request_id = request_id
        self.status = status

    @classmethod
    def from_sdk(cls, action: str, err: Exception) -> AlicloudError:
        code = getattr(err, "code", None)
        data = getattr(err, "data", None) or {}
        message = data.get("Message") if isinstance(data, dict) else None
        if code is None:
            return cls(action, "ConnectionError", unreachable(err))
        return cls(action, str(code), message or str(getattr(err, "message", err)),
                   getattr(err, "request_id", None), getattr(err, "status_code", None))

    def retryable(self) -> bool:
        return (self.code in RETRYABLE_CODES or self.code.startswith("Throttling")
                or (self.status is not None and self.status >= 500) or self.code == "ConnectionError")

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "code": self.code, "message": self.message,
                "request_id": self.request_id, "status": self.status}


def backoff_delays(attempts: int, base: float = BASE_DELAY, cap: float = MAX_DELAY):
    """Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2**n)]."""
    for attempt in range(attempts - 1):
        yield random.uniform(0, min(cap, base * (2 ** attempt)))


def with_client_token(product: str, action: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """`params`, with a ClientToken when the action is a create that takes one (and none is given).

    The token is derived from what the call creates (the action and its parameters) and a nonce of this call:
    its retries send the same token, and the cloud answers them with the first result. A token derived from
    the parameters alone would make a second create of the same thing inside the cloud's idempotence window
    (teardown.yml, then site.yml) answer with the first, deleted, resource.
    """
    params = dict(params or {})
    if (product, action) in IDEMPOTENT_CREATES and not params.get("ClientToken"):
        described = json.dumps([product, action, params], sort_keys=True, default=str)
        params["ClientToken"] = hashlib.sha256(f"{described}|{os.urandom(16).hex()}".encode()).hexdigest()[:64]
    return params


def with_retries(fn: Callable[[], Any], action: str, attempts: int = MAX_ATTEMPTS,
                 sleep: Callable[[float], None] = time.sleep) -> Any:
    """Call `fn`; retry the retryable answers with jittered backoff; raise AlicloudError otherwise."""
    delays = backoff_delays(max(attempts, 1))
    while True:
        try:
            return fn()
        except AlicloudError as err:
            error = err
        except TeaException as err:
            error = AlicloudError.from_sdk(action, err)
        if not error.retryable():
            raise error
        delay = next(delays, None)
        if delay is None:
            raise error
        sleep(delay)


def snake(value: Any) -> Any:
    """An API answer (CamelCase) as Ansible returns it (snake_case); tags keep their keys."""
    if isinstance(value, dict):
        return camel_dict_to_snake_dict(value, ignore_list=["Tags", "tags"])
    return value


def tags_to_dict(tags: Any) -> dict[str, str]:
    """Tags in any of Alibaba's shapes ({Tag: [...]}, [{Key|TagKey, Value|TagValue}], dict) as a dict."""
    if not tags:
        return {}
    if isinstance(tags, dict):
        if "Tag" in tags:
            return tags_to_dict(tags["Tag"])
        return {str(k): str(v) for k, v in tags.items()}
    found = {}
    for tag in tags:
        key = tag.get("Key", tag.get("TagKey"))
        if key is not None and not str(key).startswith(("acs:", "aliyun")):
            found[str(key)] = str(tag.get("Value", tag.get("TagValue", "")) or "")
    return found


def wait_for(describe: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float, what: str,
             failed: Callable[[Any], str | None] | None = None, delay: float = 0.5, max_delay: float = 5.0,
             sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> Any:
    """Poll `describe()` until `done(result)`; raise TimeoutError (naming `what`) or a failure it reports."""
    deadline = clock() + timeout
    while True:
        current = describe()
        if done(current):
            return current
        if failed is not None:
            reason = failed(current)
            if reason:
                raise RuntimeError(f"{what}: {reason}")
        if clock() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        sleep(delay)
        delay = min(delay * 1.5, max_delay)


class AlicloudModule(AnsibleModule):
    """AnsibleModule with the common options, clients for every product, retried calls and waiters."""

    def __init__(self, argument_spec: dict[str, Any], **kwargs: Any) -> None:
        spec = common_argument_spec()
        spec.update(argument_spec)
        kwargs.setdefault("supports_check_mode", True)
        super().__init__(argument_spec=spec, **kwargs)
        if not HAS_SDK:
            self.fail_json(msg=missing_required_lib("alibabacloud_tea_openapi (the Alibaba Cloud Tea SDKs)"),
                           exception=str(SDK_IMPORT_ERROR))
        if (self.params.get("api_retries") or 0) < 0:
            self.fail_json(msg=f"api_retries is {self.params['api_retries']}: it counts the retries after the first "
                           "attempt, so it is 0 (one attempt) or more.")
        self.region = self.params.get("region") or first_env(ENV_REGION)
        self.endpoint = self.params.get("endpoint") or first_env(ENV_ENDPOINT)
        self.endpoints = {str(product): str(host) for product, host in (self.params.get("endpoints") or {}).items()}
        if unknown := sorted(set(self.endpoints) - set(RPC_PRODUCTS)):
            self.fail_json(msg=f"endpoints names {', '.join(unknown)}: give a host for any of "
                               f"{', '.join(RPC_PRODUCTS)} (OSS has oss_endpoint).")
        self.oss_endpoint = self.params.get("oss_endpoint") or first_env(ENV_OSS_ENDPOINT)
        try:
            self.credentials = resolve_credentials(self.params)
        except CredentialsError as err:
            self.fail_json(msg=f"Bad credentials: {err}")
        except Exception as err:  # the credentials SDK raises plain errors for unusable profiles/roles
            self.fail_json(msg=f"Bad credentials: cannot use the credentials chain: {err}")
        self._clients: dict[str, Any] = {}
        self._regions_checked = False
        self._credentials_checked = False

    @property
    def attempts(self) -> int:
        """Attempts per call: the first and `api_retries` retries (0: no retry)."""
        retries = self.params.get("api_retries")
        return MAX_ATTEMPTS if retries is None else retries + 1

    # -- clients ---------------------------------------------------------------------------
    def require_region(self) -> str:
        if not self.region:
            self.fail_json(msg="No region: set the region option or ALIBABA_CLOUD_REGION_ID.")
        return self.region

    def check_credentials(self) -> None:
        """Resolve credentials that come from a provider (a profile, a RAM role, the default chain) once, before
        the first call: none found is a credentials problem, said at once, not a connection error retried."""
        if self.credentials.provider is None or self._credentials_checked:
            return
        try:
            self.credentials.static()
        except Exception as err:  # the credentials SDK raises plain errors when a source gives nothing
            self.fail_json(msg=f"No usable credentials: {self.credentials.describe()} gave none ({str(err)[:300]}). "
                               "Export ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, set "
                               "ALIBABA_CLOUD_PROFILE (or the profile option), or, on an ECS instance, the "
                               "ecs_ram_role option.")
        self._credentials_checked = True

    def endpoint_of(self, product: str) -> str | None:
        """The host a product is called on: its own in `endpoints`, else `endpoint` (every product's, as
        localcloud serves them all), else None (the SDK's public endpoint of the product in the region)."""
        return self.endpoints.get(product) or self.endpoint

    def client(self, product: str) -> Any:
        if product not in self._clients:
            self.check_credentials()
            package = RPC_PRODUCTS[product]
            client_class = importlib.import_module(f"{package}.client").Client
            config = Config(region_id=self.region or "cn-hangzhou", **self.credentials.tea_fields())
            if endpoint := self.endpoint_of(product):
                config.protocol = "http" if not endpoint.startswith("https://") else "https"
                config.endpoint = endpoint.split("://", 1)[-1]
            elif product == "ecs" and not self.region:
                config.endpoint = "ecs.aliyuncs.com"
            config.read_timeout = 30000
            config.connect_timeout = 10000
            self._clients[product] = client_class(config)
        return self._clients[product]

    def oss(self) -> Any:
        if "oss" not in self._clients:
            self.check_credentials()
            import alibabacloud_oss_v2 as oss
            creds = self.credentials

            def provide() -> Any:
                key_id, secret, token = creds.static()
                return oss.credentials.Credentials(key_id, secret, token)

            cfg = oss.config.load_default()
            cfg.credentials_provider = oss.credentials.CredentialsProviderFunc(provide)
            cfg.region = self.require_region()
            if self.oss_endpoint:
                # Virtual-hosted on a domain (OSS refuses the bucket in the path there); the SDK itself
                # addresses an IP address path-style, as localcloud's endpoint is.
                cfg.endpoint = self.oss_endpoint
            cfg.retry_max_attempts = 1
            self._clients["oss"] = oss.Client(cfg)
        return self._clients["oss"]

    # -- calls -----------------------------------------------------------------------------
    def raw_call(self, product: str, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API call: the request model built from API-shaped `params`; the body as a dict."""
        client = self.client(product)
        models = importlib.import_module(f"{RPC_PRODUCTS[product]}.models")
        request_class = getattr(models, f"{action}Request", None)
        method = getattr(client, _method_name(client, action))
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        response = method() if request_class is None else method(request_class().from_map(clean))
        body = response.body.to_map() if response.body is not None else {}
        return body

    def call(self, product: str, action: str, params: dict[str, Any] | None = None, *,
             missing_ok: tuple[str, ...] = ()) -> dict[str, Any] | None:
        """`raw_call` with retries (a create's ClientToken the same in each); None when the answer's code is
        in `missing_ok` (something gone)."""
        params = with_client_token(product, action, params)
        try:
            return with_retries(lambda: self.raw_call(product, action, params), action,
                                attempts=self.attempts)
        except AlicloudError as err:
            if err.code in missing_ok:
                return None
            self.fail_api(err)

    def oss_call(self, operation: str, request: Any, *, missing_ok: tuple[str, ...] = ()) -> Any:
        """One OSS operation (`get_bucket_info`, ...) with retries; None when its code is in `missing_ok`."""
        action = "".join(part.capitalize() for part in operation.split("_"))

        def attempt() -> Any:
            try:
                return getattr(self.oss(), operation)(request)
            except Exception as err:
                raise oss_error(action, err) from None

        try:
            return with_retries(attempt, action, attempts=self.attempts)
        except AlicloudError as err:
            if err.code in missing_ok:
                return None
            self.fail_api(err)

    def fail_api(self, err: AlicloudError, **extra: Any) -> None:
        msg = f"{err.action} failed: {err.code}: {err.message}"
        if err.request_id:
            msg += f" (request id {err.request_id})"
        if err.code in CREDENTIAL_CODES:
            msg += (f". Bad credentials: they came from {self.credentials.describe()}; check the access key "
                    "and its secret, or give others.")
        elif err.code == "ConnectionError":
            where = ", ".join(f"{product}: {host}" for product, host in self.endpoints.items())
            msg += (f". Check the endpoint ({self.endpoint or 'the SDK default for ' + str(self.region)}"
                    f"{'; endpoints ' + where if where else ''}).")
        self.fail_json(msg=msg, error=err.to_dict(), **extra)

    # -- validation before anything is created ---------------------------------------------
    def check_region(self) -> str:
        """Fail unless the region is one the account offers."""
        region = self.require_region()
        if not self._regions_checked:
            body = self.call("ecs", "DescribeRegions", {}) or {}
            known = [r.get("RegionId") for r in (body.get("Regions") or {}).get("Region", [])]
            if known and region not in known:
                self.fail_json(msg=f"Unknown region {region!r}; this account offers: {', '.join(sorted(known))}.")
            self._regions_checked = True
        return region

    def require_vpc(self, vpc_id: str) -> None:
        """Fail unless the VPC exists, in check mode too: nothing can be made in a VPC that is not there."""
        body = self.call("vpc", "DescribeVpcs", {"RegionId": self.require_region(), "VpcId": vpc_id}) or {}
        if not (body.get("Vpcs") or {}).get("Vpc"):
            self.fail_json(msg=f"The VPC {vpc_id} does not exist in {self.region}; create it first (alicloud_vpc).")

    def zones(self) -> dict[str, list[str]]:
        """Zones of the region and the instance types each offers."""
        if "_zones" not in self._clients:
            body = self.call("ecs", "DescribeZones", {"RegionId": self.check_region()}) or {}
            self._clients["_zones"] = {
                z["ZoneId"]: list(((z.get("AvailableInstanceTypes") or {}).get("InstanceTypes")) or [])
                for z in (body.get("Zones") or {}).get("Zone", [])
            }
        return self._clients["_zones"]

    def check_zones(self, zones: list[str]) -> None:
        known = self.zones()
        unknown = [z for z in zones if z not in known]
        if unknown:
            self.fail_json(msg=f"Unknown zone(s) {', '.join(unknown)} in {self.region}; "
                               f"known zones: {', '.join(sorted(known))}.")

    def check_instance_types(self, instance_types: list[str], zones: list[str] | None = None) -> None:
        offered = self.zones()
        scope = zones or list(offered)
        available = {t for z in scope for t in offered.get(z, [])}
        unknown = [t for t in instance_types if t not in available]
        if unknown:
            where = ", ".join(scope)
            self.fail_json(msg=f"Unknown instance type(s) {', '.join(unknown)} in {where}; "
                               f"offered: {', '.join(sorted(available))}.")

    # -- waiting ---------------------------------------------------------------------------
    def wait(self, describe: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float, what: str,
             failed: Callable[[Any], str | None] | None = None) -> Any:
        try:
            return wait_for(describe, done, timeout=timeout, what=what, failed=failed)
        except (TimeoutError, RuntimeError) as err:
            self.fail_json(msg=str(err))

    # -- results ---------------------------------------------------------------------------
    def exit_resource(self, changed: bool, key: str, before: Any, after: Any, **extra: Any) -> None:
        """Exit with the resource in snake_case under `key`, and a diff when asked."""
        result: dict[str, Any] = {"changed": changed, key: snake(after) if after is not None else {}}
        result.update(extra)
        if self._diff:
            result["diff"] = {"before": snake(before) if before else {}, "after": snake(after) if after else {}}
        self.exit_json(**result)


def oss_error(action: str, err: Exception) -> AlicloudError:
    """An alibabacloud_oss_v2 error (OperationError wrapping ServiceError, or a transport error)."""
    inner = err.unwrap() if hasattr(err, "unwrap") else err
    code = getattr(inner, "code", None)
    if code:
        return AlicloudError(action, str(code), str(getattr(inner, "message", "") or inner),
                             getattr(inner, "request_id", None), getattr(inner, "status_code", None))
    if type(inner).__name__ in ("CredentialsFetchError", "CredentialsEmptyError"):
        return AlicloudError(action, "InvalidAccessKeyId", f"no usable credentials: {inner}")
    return AlicloudError(action, "ConnectionError", f"OSS: {unreachable(inner)}")


def _method_name(client: Any, action: str) -> str:
    wanted = action.lower()
    for name in dir(client):
        if not name.endswith("_async") and not name.startswith("_") and name.replace("_", "") == wanted:
            return name
    raise AttributeError(f"the SDK client has no method for {action}")
