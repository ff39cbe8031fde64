"""The options every alicloud_* module shares (plugins/module_utils/alicloud.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  region:
    description:
      - The Alibaba Cloud region, for example C(cn-hangzhou).
      - Defaults to the environment variable E(ALIBABA_CLOUD_REGION_ID).
      - Checked against the regions the account offers before anything is created.
    type: str
    aliases: [region_id]
  access_key:
    description:
      - The AccessKey ID. With O(secret_key) it comes first in the credentials chain.
      - The chain is these options, then the environment (E(ALIBABA_CLOUD_ACCESS_KEY_ID),
        E(ALIBABA_CLOUD_ACCESS_KEY_SECRET), E(ALIBABA_CLOUD_SECURITY_TOKEN)), then O(profile),
        then O(ecs_ram_role), then the default chain of C(alibabacloud_credentials).
      - When the cloud refuses the credentials, the failure says which source they came from
        and shows at most the last four characters of the key id.
    type: str
    aliases: [access_key_id]
  secret_key:
    description:
      - The AccessKey secret. Never logged.
    type: str
    aliases: [access_key_secret]
  security_token:
    description:
      - An STS security token, for temporary credentials. Never logged.
      - Defaults to E(ALIBABA_CLOUD_SECURITY_TOKEN) when the keys come from the environment.
    type: str
  profile:
    description:
      - A profile of the Alibaba Cloud credentials file (C(~/.alibabacloud/credentials.ini)).
      - Defaults to E(ALIBABA_CLOUD_PROFILE).
    type: str
  ecs_ram_role:
    description:
      - Take credentials from the instance metadata service for this RAM role (on an ECS instance).
      - Defaults to E(ALIBABA_CLOUD_ECS_METADATA).
    type: str
  endpoint:
    description:
      - C(host:port) (or C(http://host:port)) that replaces the endpoint of every RPC product
        (ECS, ESS, RAM, VPC, STS, CloudMonitor), as localcloud serves them all on one port. On Alibaba
        Cloud each product has hosts of its own, which O(endpoints) names.
      - Defaults to E(ALIBABA_CLOUD_ENDPOINT), then E(LOCALCLOUD_ENDPOINT); without either, each
        product's public endpoint for O(region) is used.
    type: str
  endpoints:
    description:
      - The host of each RPC product, by product (C(ecs), C(ess), C(vpc), C(ram), C(sts), C(cms)), for
        example the VPC endpoints C(ecs-vpc.cn-hangzhou.aliyuncs.com) for C(ecs),
        C(ess-vpc.cn-hangzhou.aliyuncs.com) for C(ess), C(vpc-vpc.cn-hangzhou.aliyuncs.com) for C(vpc),
        C(sts-vpc.cn-hangzhou.aliyuncs.com) for C(sts) and C(cms-vpc.cn-hangzhou.aliyuncs.com) for C(cms)
        (RAM stays on its public host, C(ram.aliyuncs.com)).
      - A product it does not name takes O(endpoint), or without one its public endpoint for O(region).
    type: dict
  oss_endpoint:
    description:
      - The OSS endpoint URL (for example C(http://127.0.0.1:9000) for localcloud, or
        C(https://oss-cn-hangzhou-internal.aliyuncs.com)). A bucket is addressed virtual-hosted on a
        domain name (C(<bucket>.oss-cn-hangzhou-internal.aliyuncs.com)), the only way OSS serves its own
        domains, and path-style on an IP address, as the SDK chooses.
      - Defaults to E(ALIBABA_CLOUD_OSS_ENDPOINT), then E(LOCALCLOUD_OSS_ENDPOINT).
    type: str
  api_retries:
    description:
      - Retries of an API call after its first attempt (V(0) makes one attempt). Throttling and 5xx
        answers are retried with jittered exponential backoff; other errors fail at once with
        Alibaba's code, message and request id.
    type: int
    default: 5
requirements:
  - python >= 3.9
  - alibabacloud_tea_openapi and the product SDKs (alibabacloud_ecs20140526, alibabacloud_ess20220222,
    alibabacloud_ram20150501, alibabacloud_vpc20160428), alibabacloud_credentials, alibabacloud_oss_v2
notes:
  - All modules support check mode and diff mode.
"""
