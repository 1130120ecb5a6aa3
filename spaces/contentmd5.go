package spaces

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// deleteObjectsMD5 is the API option NewS3 adds: DeleteObjects carries the
// Content-MD5 of its XML body, which Spaces and older MinIO require, and no
// longer the CRC32 checksum that aws-sdk-go-v2 sends in its place since
// service/s3 v1.73 (Spaces refuses x-amz-checksum-* headers): the request
// is again the one SDKs sent before. A checksum algorithm the caller set on
// the input is kept, with Content-MD5 beside it.
func deleteObjectsMD5(stack *middleware.Stack) error {
	if stack.ID() != "DeleteObjects" {
		return nil
	}
	// Before Signing: both headers are part of the signature.
	return stack.Finalize.Insert(contentMD5{}, "Signing", middleware.Before)
}

type contentMD5 struct{}

func (contentMD5) ID() string { return "fediops:DeleteObjectsContentMD5" }

func (contentMD5) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error,
) {
	req, ok := in.Request.(*smithyhttp.Request)
	if !ok {
		return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("content-md5: unexpected request type %T", in.Request)
	}
	if req.Header.Get("X-Amz-Sdk-Checksum-Algorithm") == "" {
		for k := range req.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
				req.Header.Del(k)
			}
		}
	}
	if req.Header.Get("Content-Md5") == "" {
		sum, err := bodyMD5(req)
		if err != nil {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("content-md5 of the DeleteObjects body: %w", err)
		}
		req.Header.Set("Content-Md5", sum)
	}
	return next.HandleFinalize(ctx, in)
}

// bodyMD5 returns the base64 MD5 of req's body and rewinds it.
func bodyMD5(req *smithyhttp.Request) (string, error) {
	h := md5.New()
	if body := req.GetStream(); body != nil {
		if !req.IsStreamSeekable() {
			return "", errors.New("body cannot be rewound")
		}
		if _, err := io.Copy(h, body); err != nil {
			return "", err
		}
		if err := req.RewindStream(); err != nil {
			return "", err
		}
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}
