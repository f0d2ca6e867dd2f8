package daemon

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// loop is background work that Daemon.Serve runs every interval until
// the service stops; atStart runs it once before the first interval.
type loop struct {
	name     string
	interval time.Duration
	atStart  bool
	do       func(context.Context)
}

func (l loop) run(ctx context.Context) {
	if l.atStart {
		l.do(ctx)
	}
	every(ctx, l.interval, func() { l.do(ctx) })
}

// commonLoops are the background work of every assembly: the scrub (when
// configured) and the removal of expired upload sessions.
func (d *Daemon) commonLoops(cfg LoopsConfig, log *slog.Logger) []loop {
	var loops []loop
	if cfg.ScrubInterval > 0 {
		loops = append(loops, loop{name: "scrub", interval: cfg.ScrubInterval, do: func(ctx context.Context) { d.scrub(ctx, log) }})
	}
	expire := func(ctx context.Context) {
		if n := d.Evidence.ExpireUploads(ctx); n > 0 {
			log.Info("expired unfinished uploads removed", "sessions", n)
		}
	}
	return append(loops, loop{name: "expiry", interval: cmp.Or(cfg.ExpiryInterval, DefaultExpiryInterval), atStart: true, do: expire})
}

var (
	scrubChecked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "custody_scrub_checked_total", Help: "Stored items re-hashed by the background scrub.",
	})
	scrubMismatches = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "custody_scrub_mismatches_total", Help: "Stored items whose bytes no longer match their recorded digest.",
	})
	scrubLastRun = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "custody_scrub_last_completed_timestamp_seconds", Help: "When the last full scrub finished.",
	})
	catalogDisagreements = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "custody_catalog_disagreements_total",
		Help: "Catalog item rows found disagreeing with their logged ingest record, by where found (read, verify, scrub, ingest, replay, start); the service refuses to serve them.",
	}, []string{"op"})
	catalogRepairs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "custody_catalog_repairs_total", Help: "Catalog item rows rewritten from their logged ingest record at start.",
	})
)

// every runs f each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// scrub re-hashes every stored item once.
func (d *Daemon) scrub(ctx context.Context, log *slog.Logger) {
	checked, bad, err := d.Evidence.Scrub(ctx, func(_ string, err error) {
		scrubChecked.Inc()
		if err != nil {
			scrubMismatches.Inc()
		}
	})
	if err != nil {
		log.Error("scrub stopped", "err", err)
		return
	}
	scrubLastRun.SetToCurrentTime()
	log.Info("scrub finished", "checked", checked, "mismatches", bad)
}

// repair catalogs log entries that no replica cataloged: a replica killed
// between its log append and its catalog write leaves them behind.
func (d *Daemon) repair(ctx context.Context, log *slog.Logger) {
	n, err := d.Evidence.Replay(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Error("cataloging log entries left by another replica", "err", err)
	case n > 0:
		log.Warn("cataloged log entries another replica logged but did not catalog", "entries", n)
	}
}
