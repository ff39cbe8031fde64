"""Object storage: an OSS endpoint that also answers S3 clients (OSS's S3-compatible API).

    server     HTTP endpoint: addressing (path or virtual host), dispatch, error rendering
    signing    who signed a request: OSS V1/V4, AWS SigV2/SigV4, headers or presigned URLs
    access     which RAM action and resource each operation is, and the authorization check
    buckets    bucket operations          objects    object operations and listings
    multipart  multipart uploads          meta       the metadata database
    blobs      object data on disk, written atomically, with OSS's checksums
    xmlio      OSS's XML documents in and out
"""
