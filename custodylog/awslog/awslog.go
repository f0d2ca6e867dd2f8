// Package awslog keeps the custody log on engines several custodyd
// replicas share, on Tessera's AWS driver: tiles, entry bundles and the
// checkpoint in an S3 bucket (AWS, MinIO or another S3-compatible
// server), sequencing in a MySQL-compatible database (MySQL, MariaDB).
// Every replica appends; the database orders their entries, and whichever
// replica holds the database's integration row builds the tree.
//
// It owns the S3 client (endpoint, credentials, idle-connection timeout),
// creating the bucket, how the checkpoint's age is read (the object's
// modification time), and reporting a missing object as os.ErrNotExist
// as the POSIX driver does. It is the only part of the log that imports
// the AWS SDK and the MySQL driver.
package awslog

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/go-sql-driver/mysql"
	"github.com/transparency-dev/tessera"
	tesseraaws "github.com/transparency-dev/tessera/storage/aws"

	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/internal/idleconn"
)

// MinCheckpointInterval is the shortest checkpoint interval Tessera's
// AWS driver accepts.
const MinCheckpointInterval = time.Second

// BatchMaxAge is how long an append to the shared log waits to be
// sequenced with others. Tessera's AWS driver closes a batch this long
// after its first entry whether or not the previous batch's sequencing
// transaction (MySQL, one at a time per process) has finished: below the
// transaction's duration batches queue behind each other, stay small, and
// the queue grows until every writer waits in it. Measured with one
// replica under load on a shared two-core machine (docs/BENCHMARKS.md):
// transactions of 15–20 ms; at 10 ms (the POSIX log's age) batches of 5
// entries waited 115 ms in the queue, at 30 ms batches of 18–27 waited
// 0–10 ms, and the append took 48 ms instead of 140.
const BatchMaxAge = 30 * time.Millisecond

// Config says where the shared log is.
type Config struct {
	// S3Endpoint is host:port of the S3 API; Insecure uses plain HTTP.
	S3Endpoint string
	Insecure   bool
	Region     string
	AccessKey  string
	SecretKey  string
	// Bucket holds the log's public resources. It must not have object
	// lock: Tessera removes partial tiles once the full tile exists.
	Bucket string
	// MySQLDSN is the sequencing database, in go-sql-driver form
	// (user:password@tcp(host:port)/database).
	MySQLDSN string
	// IdleTimeout fails an S3 connection on which no byte moved for this
	// long (default 30s), as for the evidence store.
	IdleTimeout time.Duration
}

func (c Config) region() string { return cmp.Or(c.Region, "us-east-1") }

func (c Config) validate() error {
	switch {
	case c.S3Endpoint == "":
		return errors.New("a shared log needs an S3 endpoint (--s3-endpoint)")
	case c.Bucket == "":
		return errors.New("a shared log needs a bucket for its tiles (--log-bucket)")
	}
	if _, err := mysql.ParseDSN(c.MySQLDSN); err != nil {
		return fmt.Errorf("--log-mysql: %w", err)
	}
	return nil
}

func (c Config) s3Client() *s3.Client {
	scheme := "https://"
	if c.Insecure {
		scheme = "http://"
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = idleconn.Dialer(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}, cmp.Or(c.IdleTimeout, 30*time.Second))
	t.ResponseHeaderTimeout = time.Minute
	return s3.New(s3.Options{
		HTTPClient:   &http.Client{Transport: t},
		BaseEndpoint: aws.String(scheme + c.S3Endpoint),
		Region:       c.region(),
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, ""),
		UsePathStyle: true,
		// Only send and check checksums where the API needs them: MinIO and
		// other S3-compatible servers differ in what they accept.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// New returns the backend for the shared log cfg describes, creating the
// bucket if it is missing (Tessera creates its tables in the database when
// the log is opened).
func New(ctx context.Context, cfg Config) (custodylog.Backend, error) {
	if err := cfg.validate(); err != nil {
		return custodylog.Backend{}, err
	}
	client := cfg.s3Client()
	if err := ensureBucket(ctx, client, cfg.Bucket); err != nil {
		return custodylog.Backend{}, err
	}
	dsn, err := readCommitted(ctx, cfg.MySQLDSN)
	if err != nil {
		return custodylog.Backend{}, err
	}
	driver, err := tesseraaws.New(ctx, tesseraaws.Config{
		SDKConfig: &aws.Config{Region: cfg.region()},
		S3Options: func(o *s3.Options) {
			*o = client.Options()
		},
		Bucket:       cfg.Bucket,
		DSN:          dsn,
		MaxOpenConns: 32,
		MaxIdleConns: 8,
	})
	if err != nil {
		return custodylog.Backend{}, err
	}
	modTime := func(ctx context.Context) (time.Time, error) {
		out, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(cfg.Bucket), Key: aws.String("checkpoint")})
		if err != nil {
			return time.Time{}, err
		}
		return aws.ToTime(out.LastModified), nil
	}
	return custodylog.Backend{
		Driver:         driver,
		CheckpointTime: modTime,
		WrapReader:     func(r tessera.LogReader) tessera.LogReader { return notExistReader{r} },
		Annex:          annex{client: client, bucket: cfg.Bucket},
	}, nil
}

// readCommitted returns dsn with its sessions at isolation level READ
// COMMITTED. At InnoDB's default, REPEATABLE READ, the integrator's
// "SELECT … FROM Seq WHERE seq >= ? … FOR UPDATE" takes next-key locks up
// to the end of the table, and so blocks every replica's sequencing
// INSERT INTO Seq while it writes the new tiles to S3, once a second.
// READ COMMITTED takes record locks only. Tessera's ordering does not
// rest on gap locks: sequencing transactions serialise on SeqCoord's row
// (so batches commit in index order), and integrators on IntCoord's.
// MySQL and MariaDB from 11.1 call the variable transaction_isolation,
// older MariaDB tx_isolation; the first one the server knows is used. A
// DSN that sets either itself is left alone.
func readCommitted(ctx context.Context, dsn string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("--log-mysql: %w", err)
	}
	for _, v := range []string{"transaction_isolation", "tx_isolation"} {
		if _, ok := cfg.Params[v]; ok {
			return dsn, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for _, v := range []string{"transaction_isolation", "tx_isolation"} {
		try := cfg.Clone()
		if try.Params == nil {
			try.Params = map[string]string{}
		}
		try.Params[v] = "'READ-COMMITTED'"
		connector, err := mysql.NewConnector(try)
		if err != nil {
			return "", err
		}
		db := sql.OpenDB(connector)
		err = db.PingContext(ctx)
		db.Close()
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1193 { // unknown system variable
			last = err
			continue
		}
		if err != nil {
			return "", fmt.Errorf("log sequencing database: %w", err)
		}
		return try.FormatDSN(), nil
	}
	return "", fmt.Errorf("log sequencing database: setting READ COMMITTED: %w", last)
}

// ensureBucket creates bucket unless it exists (another replica may create
// it at the same moment).
func ensureBucket(ctx context.Context, client *s3.Client, bucket string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		return nil
	}
	_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	if err == nil || errors.As(err, &owned) || errors.As(err, &exists) {
		return nil
	}
	return fmt.Errorf("log bucket %q: %w", bucket, err)
}

// notExistReader makes the AWS driver's "no such key" an os.ErrNotExist,
// as the POSIX driver reports it, so partial-tile fallbacks work alike.
type notExistReader struct{ tessera.LogReader }

func notExist(err error) error {
	if err == nil {
		return nil
	}
	var nsk *types.NoSuchKey
	var api smithy.APIError
	switch {
	case errors.As(err, &nsk), errors.As(err, &api) && (api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NotFound"),
		// Tessera's partial-or-full fetch flattens the S3 error into its
		// message (%v), losing the types above.
		strings.Contains(err.Error(), "NoSuchKey"):
		return fmt.Errorf("%w: %v", os.ErrNotExist, err)
	}
	return err
}

func (r notExistReader) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	b, err := r.LogReader.ReadCheckpoint(ctx)
	return b, notExist(err)
}

func (r notExistReader) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	b, err := r.LogReader.ReadTile(ctx, level, index, p)
	return b, notExist(err)
}

func (r notExistReader) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	b, err := r.LogReader.ReadEntryBundle(ctx, index, p)
	return b, notExist(err)
}

// annex keeps the log's own files as objects under custody/ in the log's
// bucket.
type annex struct {
	client *s3.Client
	bucket string
}

func (a annex) Read(ctx context.Context, name string) ([]byte, error) {
	out, err := a.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(a.bucket), Key: aws.String("custody/" + name)})
	if err != nil {
		return nil, notExist(err)
	}
	defer out.Body.Close()
	return io.ReadAll(io.LimitReader(out.Body, 16<<20))
}

func (a annex) Write(ctx context.Context, name string, data []byte) error {
	_, err := a.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(a.bucket), Key: aws.String("custody/" + name), Body: bytes.NewReader(data)})
	return err
}
