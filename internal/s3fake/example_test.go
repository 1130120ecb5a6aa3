package s3fake_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fediops/fediops/internal/s3fake"
)

// An S3 client pointed at the fake, path style, as spaces does when
// S3_ENDPOINT is set.
func Example() {
	srv := s3fake.New(nil)
	defer srv.Close()
	if err := srv.CreateBucket("media"); err != nil {
		panic(err)
	}
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, Region: "nyc3",
		Credentials: aws.AnonymousCredentials{}, HTTPClient: srv.Client(),
	})
	ctx := context.Background()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("a.txt"),
		Body: strings.NewReader("hello")}); err != nil {
		panic(err)
	}
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("media")})
	if err != nil {
		panic(err)
	}
	for _, o := range out.Contents {
		fmt.Println(*o.Key, *o.Size)
	}
	fmt.Println(srv.Requests()[0].Op())
	// Output:
	// a.txt 5
	// PutObject
}
