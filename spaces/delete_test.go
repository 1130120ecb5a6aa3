package spaces

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/fediops/fediops/internal/s3fake"
)

// put stores n small objects "d/0000" ... and returns their keys.
func putN(t *testing.T, c *Client, n int) []string {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("d/%04d", i)
		if _, err := c.Put(ctxT(t), keys[i], strings.NewReader("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func left(t *testing.T, c *Client) int {
	t.Helper()
	n := 0
	for _, err := range c.Objects(ctxT(t), "") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// Spaces refuses DeleteObjects without Content-MD5 (the strict fake does
// too, with S3's InvalidRequest); the client sends it, so 1,207 keys go in
// two batches of at most 1,000, with no single deletes.
func TestDeleteBatchesCarryContentMD5(t *testing.T) {
	srv, cfg := newFake(t, s3fake.Strict())
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys := putN(t, c, 1207)
	before := len(srv.Requests())
	if err := c.Delete(ctxT(t), keys...); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()[before:]
	got := ops(reqs)
	t.Logf("requests to delete %d keys: %d %v", len(keys), len(reqs), got)
	if got["DeleteObjects"] != 2 || got["DeleteObject"] != 0 || len(reqs) != 2 {
		t.Errorf("delete requests: %v, want 2 DeleteObjects and nothing else", got)
	}
	for _, r := range reqs {
		if r.Op() == "DeleteObjects" && r.Header.Get("Content-Md5") == "" || r.Header.Get("X-Amz-Checksum-Crc32") != "" {
			t.Errorf("%s: Content-MD5 %q, x-amz-checksum-crc32 %q", r.Op(), r.Header.Get("Content-Md5"), r.Header.Get("X-Amz-Checksum-Crc32"))
		}
	}
	if n := left(t, c); n != 0 {
		t.Errorf("%d objects left", n)
	}
	if strings.Contains(logs.String(), "refused") {
		t.Errorf("a fallback was logged: %s", logs.String())
	}
}

// A server without DeleteObjects (501 NotImplemented) gets one DeleteObject
// per key after its first refusal, and the switch is logged once.
func TestDeleteFallsBackWhenRefused(t *testing.T) {
	srv, cfg := newFake(t, s3fake.Strict(), s3fake.NoBatchDelete())
	cfg.BatchDeleteLimit = 100
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys := putN(t, c, 250)
	before := len(srv.Requests())
	if err := c.Delete(ctxT(t), keys...); err != nil {
		t.Fatal(err)
	}
	if got := ops(srv.Requests()[before:]); got["refused DeleteObjects"] != 1 || got["DeleteObject"] != 250 || len(got) != 2 {
		t.Errorf("delete requests: %v, want 1 refused batch then 250 single deletes", got)
	}
	if n := strings.Count(logs.String(), "DeleteObjects refused"); n != 1 || !strings.Contains(logs.String(), "NotImplemented") {
		t.Errorf("%d fallback lines logged:\n%s", n, logs.String())
	}
	if n := left(t, c); n != 0 {
		t.Errorf("%d objects left", n)
	}
}

// A batch that fails for a reason single deletes share (here a missing
// bucket) is an error, not a reason to send one request per key.
func TestDeleteDoesNotFallBackOnOtherErrors(t *testing.T) {
	srv, cfg := newFake(t, s3fake.Strict())
	cfg.Bucket = "gone"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Delete(ctxT(t), "a", "b", "c")
	if err == nil || !strings.Contains(err.Error(), "NoSuchBucket") || !strings.HasPrefix(err.Error(), "delete 3 objects from gone: ") {
		t.Errorf("err = %v", err)
	}
	if got := ops(srv.Requests()); got["DeleteObjects"] != 1 || len(got) != 1 {
		t.Errorf("requests: %v", got)
	}
}

// A checksum algorithm asked for on the input is kept beside Content-MD5.
func TestDeleteObjectsKeepsAnExplicitChecksum(t *testing.T) {
	srv, cfg := newFake(t)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	putN(t, c, 2)
	_, err = c.S3.DeleteObjects(ctxT(t), &s3.DeleteObjectsInput{
		Bucket:            aws.String("media"),
		Delete:            &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("d/0000")}, {Key: aws.String("d/0001")}}},
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[len(srv.Requests())-1]
	if r.Op() != "DeleteObjects" || r.Refused || r.Header.Get("Content-Md5") == "" || r.Header.Get("X-Amz-Checksum-Crc32") == "" {
		t.Errorf("%s refused=%t headers %v", r.Op(), r.Refused, r.Header)
	}
	if n := left(t, c); n != 0 {
		t.Errorf("%d objects left", n)
	}
}
