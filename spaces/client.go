package spaces

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// ErrNotFound is returned (wrapped) by Get and Head for a missing object.
var ErrNotFound = errors.New("object not found")

// Object is one stored object. Key is relative to Config.KeyPrefix; ETag
// has no quotes (for a multipart upload it is "<md5 of md5s>-<parts>", not
// the MD5 of the content).
type Object struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// Client reads and writes one bucket's objects. It is safe for concurrent use.
type Client struct {
	// S3 is the underlying client, configured for Spaces, for calls this
	// package does not wrap.
	S3  *s3.Client
	cfg Config
	log *slog.Logger
	// noBatchDelete is set once the server refused DeleteObjects.
	noBatchDelete atomic.Bool
}

// NewS3 returns an aws-sdk-go-v2 S3 client that Spaces accepts: BaseEndpoint
// and addressing style from the Config, static credentials, and checksums
// computed and validated only when an operation requires them (Spaces
// rejects the CRC32 / aws-chunked uploads the SDK sends by default since
// service/s3 v1.73). optFns run last.
func (c *Config) NewS3(optFns ...func(*s3.Options)) (*s3.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	d := c.withDefaults()
	o := s3.Options{
		Region:                     d.Region,
		Credentials:                aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(d.AccessKeyID, d.SecretAccessKey, "")),
		UsePathStyle:               d.PathStyle,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		HTTPClient:                 d.httpClient(),
		RetryMaxAttempts:           d.MaxAttempts,
		APIOptions:                 []func(*middleware.Stack) error{deleteObjectsMD5},
	}
	if d.Endpoint != "" {
		o.BaseEndpoint = aws.String(d.Endpoint)
	}
	return s3.New(o, optFns...), nil
}

func (c *Config) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	d := &net.Dialer{Timeout: c.OpenTimeout, KeepAlive: 30 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = d.DialContext
	tr.TLSHandshakeTimeout = c.OpenTimeout
	tr.ResponseHeaderTimeout = c.ReadTimeout
	return &http.Client{Transport: tr}
}

// New validates cfg and returns a Client for its bucket. The S3 client and
// Health's public-URL checks share one HTTP client (Config.HTTPClient, or
// one New builds), so their connections are pooled together.
func New(cfg *Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := cfg.withDefaults()
	d.HTTPClient = d.httpClient()
	cl, err := d.NewS3()
	if err != nil {
		return nil, err
	}
	return &Client{S3: cl, cfg: d, log: d.Logger}, nil
}

// Config returns the client's configuration, defaults filled in (HTTPClient
// included).
func (c *Client) Config() Config { return c.cfg }

func (c *Client) relKey(full string) string {
	if c.cfg.KeyPrefix == "" {
		return full
	}
	return strings.TrimPrefix(full, strings.TrimSuffix(c.cfg.KeyPrefix, "/")+"/")
}

// Objects iterates over every object whose key starts with prefix, in key
// order, fetching one page (Config.PageSize keys) at a time. An error ends
// the iteration: it is yielded once with a zero Object.
func (c *Client) Objects(ctx context.Context, prefix string) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		p := s3.NewListObjectsV2Paginator(c.S3, &s3.ListObjectsV2Input{
			Bucket:  aws.String(c.cfg.Bucket),
			Prefix:  aws.String(c.cfg.FullKey(prefix)),
			MaxKeys: aws.Int32(c.cfg.PageSize),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				yield(Object{}, fmt.Errorf("list %s/%s: %w", c.cfg.Bucket, c.cfg.FullKey(prefix), err))
				return
			}
			for _, o := range page.Contents {
				obj := Object{
					Key:  c.relKey(aws.ToString(o.Key)),
					Size: aws.ToInt64(o.Size),
					ETag: strings.Trim(aws.ToString(o.ETag), `"`),
				}
				if o.LastModified != nil {
					obj.LastModified = *o.LastModified
				}
				if !yield(obj, nil) {
					return
				}
			}
		}
	}
}

// PutOptions are the headers of an upload. Zero values send Mastodon's
// Cache-Control and no Content-Type.
type PutOptions struct {
	ContentType  string
	CacheControl string
}

// Put streams body to key. Bodies under Config.MultipartThreshold go up in
// one PutObject; larger ones in parts of that size, a few parts in memory at
// a time. Uploads carry Config.Permission as ACL and Config.StorageClass.
// A multipart upload that fails or is cancelled half-way is aborted (with a
// context of its own, for at most 15 s), so that its parts are not left
// stored; an abort that fails is part of the returned error.
func (c *Client) Put(ctx context.Context, key string, body io.Reader, opts *PutOptions) (Object, error) {
	if opts == nil {
		opts = &PutOptions{}
	}
	full := c.cfg.FullKey(key)
	in := &s3.PutObjectInput{
		Bucket:       aws.String(c.cfg.Bucket),
		Key:          aws.String(full),
		Body:         &countingReader{r: body},
		CacheControl: aws.String(CacheControl),
	}
	cr := in.Body.(*countingReader)
	if opts.CacheControl != "" {
		in.CacheControl = aws.String(opts.CacheControl)
	}
	if opts.ContentType != "" {
		in.ContentType = aws.String(opts.ContentType)
	}
	if c.cfg.Permission != "" {
		in.ACL = types.ObjectCannedACL(c.cfg.Permission)
	}
	if c.cfg.StorageClass != "" {
		in.StorageClass = types.StorageClass(c.cfg.StorageClass)
	}
	// manager is deprecated in favour of feature/s3/transfermanager, which
	// is still v0.x and by default also aborts with the caller's context;
	// manager's v1 API stays until that one is stable.
	//lint:ignore SA1019 see above
	up := manager.NewUploader(c.S3, func(u *manager.Uploader) {
		u.PartSize = c.cfg.MultipartThreshold
		u.Concurrency = 2
		u.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		// The uploader would abort with ctx, which fails at once when ctx
		// is what ended the upload: abortUpload does it instead.
		u.LeavePartsOnError = true
	})
	//lint:ignore SA1019 manager's v1 API, as above
	out, err := up.Upload(ctx, in)
	if err != nil {
		var mf manager.MultiUploadFailure
		if errors.As(err, &mf) && mf.UploadID() != "" {
			if aerr := c.abortUpload(ctx, full, mf.UploadID()); aerr != nil {
				err = fmt.Errorf("%w; %w", err, aerr)
			}
		}
		return Object{}, fmt.Errorf("put %s/%s: %w", c.cfg.Bucket, full, err)
	}
	c.log.DebugContext(ctx, "spaces: put", "key", full, "bytes", cr.n, "parts", partsOf(out))
	return Object{Key: key, Size: cr.n, ETag: strings.Trim(aws.ToString(out.ETag), `"`)}, nil
}

// abortTimeout bounds the AbortMultipartUpload of a failed upload.
const abortTimeout = 15 * time.Second

// abortUpload aborts a failed multipart upload so that its stored parts are
// deleted (and no longer billed). It uses a context of its own, as ctx may
// be what ended the upload, bounded by abortTimeout.
func (c *Client) abortUpload(ctx context.Context, full, uploadID string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	_, err := c.S3.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(c.cfg.Bucket), Key: aws.String(full), UploadId: aws.String(uploadID),
	})
	if err != nil {
		return fmt.Errorf("abort multipart upload %s: %w", uploadID, err)
	}
	c.log.DebugContext(ctx, "spaces: aborted multipart upload", "key", full, "upload_id", uploadID)
	return nil
}

func partsOf(out *manager.UploadOutput) int {
	if out.UploadID == "" {
		return 1
	}
	return len(out.CompletedParts)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Get opens key for reading; the caller closes the body. A missing key is
// ErrNotFound.
func (c *Client) Get(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	full := c.cfg.FullKey(key)
	out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(full)})
	if err != nil {
		return nil, Object{}, fmt.Errorf("get %s/%s: %w", c.cfg.Bucket, full, notFound(err))
	}
	return out.Body, Object{
		Key: key, Size: aws.ToInt64(out.ContentLength),
		ETag: strings.Trim(aws.ToString(out.ETag), `"`), LastModified: aws.ToTime(out.LastModified),
	}, nil
}

// Head returns key's size, ETag and modification time. A missing key is
// ErrNotFound.
func (c *Client) Head(ctx context.Context, key string) (Object, error) {
	full := c.cfg.FullKey(key)
	out, err := c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(full)})
	if err != nil {
		return Object{}, fmt.Errorf("head %s/%s: %w", c.cfg.Bucket, full, notFound(err))
	}
	return Object{
		Key: key, Size: aws.ToInt64(out.ContentLength),
		ETag: strings.Trim(aws.ToString(out.ETag), `"`), LastModified: aws.ToTime(out.LastModified),
	}, nil
}

func notFound(err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var re *awshttp.ResponseError
	if errors.As(err, &nsk) || errors.As(err, &nf) || (errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound) {
		return fmt.Errorf("%w (%w)", ErrNotFound, err)
	}
	return err
}

// Delete removes keys (missing keys are not an error) with DeleteObjects in
// batches of Config.BatchDeleteLimit, retrying keys a batch reports as
// failed up to Config.BatchDeleteRetry times. Each batch carries the
// Content-MD5 that Spaces requires. If the server still refuses
// DeleteObjects itself (501 NotImplemented, 405, or a 400 that is not about
// credentials, the bucket or the body), the client falls back to one
// DeleteObject per key from then on, and logs that once.
func (c *Client) Delete(ctx context.Context, keys ...string) error {
	for len(keys) > 0 {
		n := min(len(keys), c.cfg.BatchDeleteLimit)
		batch := keys[:n]
		keys = keys[n:]
		if !c.noBatchDelete.Load() {
			err := c.deleteBatch(ctx, batch)
			if err == nil {
				continue
			}
			if !refused(err) {
				return err
			}
			c.noBatchDelete.Store(true)
			c.log.WarnContext(ctx, "spaces: DeleteObjects refused; deleting one key at a time", "bucket", c.cfg.Bucket, "err", err)
		}
		for _, k := range batch {
			full := c.cfg.FullKey(k)
			if _, err := c.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(full)}); err != nil {
				return fmt.Errorf("delete %s/%s: %w", c.cfg.Bucket, full, err)
			}
		}
	}
	return nil
}

func (c *Client) deleteBatch(ctx context.Context, keys []string) error {
	var errs []error
	for attempt := 0; len(keys) > 0 && attempt <= c.cfg.BatchDeleteRetry; attempt++ {
		ids := make([]types.ObjectIdentifier, len(keys))
		for i, k := range keys {
			ids[i] = types.ObjectIdentifier{Key: aws.String(c.cfg.FullKey(k))}
		}
		out, err := c.S3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(c.cfg.Bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("delete %d objects from %s: %w", len(keys), c.cfg.Bucket, err)
		}
		keys, errs = keys[:0:0], errs[:0]
		for _, e := range out.Errors {
			keys = append(keys, c.relKey(aws.ToString(e.Key)))
			errs = append(errs, fmt.Errorf("delete %s/%s: %s: %s", c.cfg.Bucket, aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
		}
	}
	return errors.Join(errs...)
}

// refused tells a server that will not do DeleteObjects at all from one that
// failed for a reason single deletes would share (credentials, bucket, a
// slow or cut body) or that checked the batch's Content-MD5 and found it
// wrong (a fault to report, not to hide behind one request per key).
func refused(err error) bool {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && notRefusal[ae.ErrorCode()] {
		return false
	}
	switch re.HTTPStatusCode() {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusLengthRequired, http.StatusNotImplemented:
		return true
	}
	return false
}

var notRefusal = map[string]bool{
	"AccessDenied": true, "InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true,
	"InvalidToken": true, "AuthorizationHeaderMalformed": true, "NoSuchBucket": true, "InvalidBucketName": true,
	"RequestTimeout": true, "IncompleteBody": true, "BadDigest": true, "InvalidDigest": true,
}
