"""OSS's error codes and statuses, as `ApiError`s the endpoint renders in OSS's XML shape."""

from __future__ import annotations

from ..errors import ApiError

# OSS's EC codes for FileAlreadyExists (x-oss-forbid-overwrite: true on a taken key).
EC_OBJECT_EXISTS = "0026-00000201"       # PutObject, CopyObject
EC_COMPLETE_TARGET_EXISTS = "0042-00000214"
EC_INVALID_FORBID_OVERWRITE = "0017-00000279"
# Signatures OSS no longer takes: V1 on a bucket created since 2025-09-01, AWS SigV2 unless support enabled it.
EC_V1_RETIRED = "0002-00000080"
EC_AWS_V2_NOT_ENABLED = "0002-00000032"
# A V4 signature's region: not the bucket's (0002-00000228), or in a presigned URL written as `oss-<region>` or
# not the Host's region (0002-00000226).
EC_SIGNING_REGION = "0002-00000228"
EC_SIGNING_REGION_HOST = "0002-00000226"


class OssError(ApiError):
    """An `ApiError` that also carries OSS's EC code (rendered as `<EC>` and `x-oss-ec`)."""

    def __init__(self, code: str, message: str, status: int = 400, ec: str = "") -> None:
        super().__init__(code, message, status)
        self.ec = ec


def no_such_bucket(bucket: str) -> ApiError:
    return ApiError("NoSuchBucket", f"The specified bucket does not exist: {bucket}.", 404)


def no_such_key(key: str) -> ApiError:
    return ApiError("NoSuchKey", f"The specified key does not exist: {key}.", 404)


def no_such_upload(upload_id: str) -> ApiError:
    return ApiError("NoSuchUpload", f"The specified upload does not exist: {upload_id}. The upload ID may be "
                    "invalid, or the upload may have been aborted or completed.", 404)


def access_denied(message: str) -> ApiError:
    return ApiError("AccessDenied", message, 403)


def malformed_xml(detail: str) -> ApiError:
    return ApiError("MalformedXML", f"The XML you provided was not well-formed or did not validate: {detail}.")


def invalid_argument(message: str) -> ApiError:
    return ApiError("InvalidArgument", message)


def signature_mismatch(scheme: str) -> ApiError:
    return ApiError("SignatureDoesNotMatch", f"The request signature we calculated ({scheme}) does not match the "
                    "signature you provided. Check your key and signing method.", 403)


def file_already_exists(ec: str = "") -> OssError:
    return OssError("FileAlreadyExists", "The object you specified already exists and can not be overwritten.",
                    409, ec)


def invalid_forbid_overwrite(value: str) -> OssError:
    return OssError("InvalidArgument", f"x-oss-forbid-overwrite must be true or false, not {value!r}.", 400,
                    EC_INVALID_FORBID_OVERWRITE)


def v1_signature_retired(bucket: str) -> OssError:
    return OssError("AccessDenied", f"OSS no longer supports V1 signatures for the bucket {bucket!r}, created after "
                    "2025-09-01: sign the request with V4 (OSS4-HMAC-SHA256, the bucket's region in its scope).",
                    403, EC_V1_RETIRED)


def signing_region(region: str, bucket_region: str, ec: str = EC_SIGNING_REGION) -> OssError:
    # The status, code and message are those OSS documents for the same fault in a PostObject form
    # (EC 0002-00000715); the pages of these ECs give the causes only.
    return OssError("InvalidArgument", f"The signing region in credential is invalid: {region!r} (the bucket's "
                    f"region is {bucket_region!r}; a region id such as cn-hangzhou, not an endpoint's oss-...).",
                    400, ec)


def aws_v2_not_enabled() -> OssError:
    return OssError("AccessDenied", "Amazon S3-compatible authentication with Signature Version 2 is not enabled "
                    "for OSS: sign the request with AWS Signature Version 4 or an OSS signature.", 403,
                    EC_AWS_V2_NOT_ENABLED)
