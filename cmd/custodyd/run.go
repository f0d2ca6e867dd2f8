package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/custody-dev/custody/internal/daemon"
)

func run(ctx context.Context, cfg daemon.Config, log *slog.Logger) error {
	// Credentials come from the environment only, never from flags that
	// show in process listings.
	s3 := &cfg.Storage.S3
	s3.AccessKey, s3.SecretKey = os.Getenv("CUSTODY_S3_ACCESS_KEY"), os.Getenv("CUSTODY_S3_SECRET_KEY")
	if s3.AccessKey == "" && s3.SecretKey == "" {
		s3.AccessKey, s3.SecretKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	return daemon.Run(ctx, cfg, log)
}
