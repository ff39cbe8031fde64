"""The instance the agent runs on, as the metadata service tells it, with its clients for the cloud (its RAM
role's credentials), and whether a tag tells it not to train."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .cloud import (
    CloudError,
    Keys,
    Metadata,
    RoleCredentials,
    RpcClient,
    StaticCredentials,
)
from .config import AgentError, Config
from .group import instance_tags
from .logs import LOG


@dataclass
class Instance:
    """The instance the agent runs on, and its clients for the cloud (its RAM role's credentials)."""

    instance_id: str
    region: str
    ecs: RpcClient
    ess: RpcClient
    credentials: StaticCredentials | RoleCredentials


def this_instance(config: Config, metadata: Metadata) -> Instance | None:
    """The instance, where the agent talks to the cloud (a lease is configured); None elsewhere."""
    if not config.lease_bucket:
        return None
    if not config.oss_endpoint:
        raise AgentError("lease_bucket is set but oss_endpoint is not; re-apply the train_service role")
    env_keys = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"), os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    credentials = (StaticCredentials(Keys(env_keys[0], env_keys[1], os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN")))
                   if all(env_keys) else RoleCredentials(metadata))
    try:
        instance_id, region = metadata.get("instance-id"), metadata.get("region-id")
    except OSError as exc:
        raise AgentError(f"the lease needs this instance's id and region, and the metadata service at "
                         f"{metadata.base_url} does not answer ({exc})") from exc
    if not instance_id or not region:
        raise AgentError(f"the metadata service at {metadata.base_url} gives no instance-id or region-id")
    return Instance(instance_id, region,
                    RpcClient(config.api_endpoint.format(product="ecs", region=region), "2014-05-26", credentials),
                    RpcClient(config.api_endpoint.format(product="ess", region=region), "2022-02-22", credentials),
                    credentials)


def no_training_tag(config: Config, instance: Instance) -> str | None:
    """The configured no-training tag when this instance has it (None also when its tags cannot be read:
    then it trains, and the lease keeps it from training beside another)."""
    if not config.no_training_tag:
        return None
    key, _, value = config.no_training_tag.partition("=")
    try:
        tags = instance_tags(instance.ecs, instance.region, instance.instance_id)
    except (CloudError, OSError) as exc:
        LOG.warning("cannot read this instance's tags (%s); it trains", exc)
        return None
    return config.no_training_tag if key in tags and tags[key] == value else None
