"""localcloud: an embedded Alibaba Cloud that speaks the real wire protocols.

The official SDKs, s3fs/ossfs and the project's Ansible modules talk to it unchanged except for
the endpoint. See docs/localcloud.md for the CLI.
"""

__version__ = "0.1.0"

DEFAULT_REGION = "cn-hangzhou"
