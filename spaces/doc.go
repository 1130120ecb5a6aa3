// Package spaces reaches a Mastodon instance's media in DigitalOcean Spaces:
// read the S3_* variables with ConfigFromEnv, then call New for a Client
// (Objects, Put, Get, Head, Delete, Health), Config.PublicURL for the URLs
// Mastodon hands out, and NewCDN for the CDN endpoint in front of the Space.
//
// The S3 client it builds is one Spaces accepts: BaseEndpoint from
// S3_ENDPOINT, path-style addressing whenever S3_ENDPOINT is set (unless
// S3_OVERRIDE_PATH_STYLE=true, as in Mastodon), static credentials from
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and request checksums and
// response validation only "when required": since aws-sdk-go-v2's
// service/s3 v1.73 the defaults send CRC32 checksums and aws-chunked bodies
// that Spaces rejected. DeleteObjects, to which the SDK would add a CRC32
// checksum, carries the Content-MD5 that Spaces requires instead, so Delete
// removes up to S3_BATCH_DELETE_LIMIT keys a request; it falls back to
// single deletes only on a server that refuses DeleteObjects.
//
// Bad settings come back as one *ConfigError naming every variable at fault
// (S3_BUCKET missing, S3_ALIAS_HOST with a scheme, S3_ENDPOINT that starts
// with the bucket name, a Spaces S3_HOSTNAME without S3_ENDPOINT ...). No
// error, log line or String of a Config contains the access key or secret.
//
// Public URLs follow paperclip: https://<S3_ALIAS_HOST>/<key> with an alias
// host, else the path-style https://<S3_HOSTNAME>/<bucket>/<key>.
// Client.Consistency checks that the bucket answers and that the alias host
// is the custom domain of the CDN endpoint whose origin is the Space
// ("<bucket>.<region>.digitaloceanspaces.com"); CDN.Plan and Plan.Apply make
// it so, CDN.SetTTL and CDN.Flush manage its cache, honouring DO's 429
// Retry-After and its 50-paths-per-request purge limit.
package spaces
