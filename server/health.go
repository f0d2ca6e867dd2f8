package server

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// handleHealth answers liveness (the process serves HTTP) and, with
// ?ready=1, readiness: storage, catalog and log answer and the latest
// checkpoint is younger than ten checkpoint intervals (at least 10 s).
// Not ready is 503 with the reasons, for load balancers and operators.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("ready") == "" || s.cfg.Evidence == nil {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	rd := s.cfg.Evidence.Ready(r.Context())
	body := map[string]any{"status": "ready"}
	problems := map[string]string{}
	// Readiness is public: it names what fails, never how (paths, SQL,
	// driver text go to the server's log, as for every caller).
	for name, err := range map[string]error{"storage": rd.Storage, "catalog": rd.Catalog, "log": rd.Log} {
		if err != nil {
			problems[name] = "the " + name + " does not answer; the server log has the details"
			s.log.WarnContext(r.Context(), "not ready", "dependency", name, "err", err)
		}
	}
	if rd.CheckpointKnown {
		body["checkpoint_size"] = rd.CheckpointSize
		body["checkpoint_age_seconds"] = rd.CheckpointAge.Seconds()
		if limit := max(10*s.cfg.CheckpointInterval, 10*time.Second); rd.CheckpointAge > limit {
			problems["log"] = "the latest checkpoint is " + rd.CheckpointAge.Round(time.Second).String() + " old"
		}
	}
	// Witnesses, timestamp authorities and the history map never stop
	// custody events: their lag is a detail for operators, not a reason
	// to be unready.
	if l := s.cfg.Log; l != nil {
		if ws, err := l.Witnesses(r.Context()); err == nil && ws != nil {
			lag := map[string]uint64{}
			for _, w := range ws {
				lag[w.Name] = w.Lag
			}
			body["witness_lag_entries"] = lag
		}
		if hs, err := l.HistoryMapping(r.Context()); err == nil {
			body["history_map_lag_entries"] = hs.PublishedSize - min(hs.CommittedSize, hs.PublishedSize)
			if hs.Err != "" {
				// The log holds an entry the map cannot take: bundles
				// stop proving completeness (events go on).
				body["history_map_stopped"] = "the history map stopped at a log entry it cannot read; the server log has the details"
				s.log.WarnContext(r.Context(), "history map stopped", "err", hs.Err)
			}
		}
		if ts, ok, err := l.Timestamping(r.Context()); err == nil && ok {
			body["timestamp_gap_entries"] = ts.PublishedSize - min(ts.StampedSize, ts.PublishedSize)
			if len(ts.Errors) > 0 {
				failing := make([]string, 0, len(ts.Errors))
				for url, e := range ts.Errors {
					failing = append(failing, url)
					s.log.WarnContext(r.Context(), "timestamp authority failing", "url", url, "err", e)
				}
				slices.Sort(failing)
				body["timestamp_authorities_failing"] = failing
			}
		}
	}
	code := http.StatusOK
	if len(problems) > 0 {
		body["status"], body["problems"] = "not ready", problems
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

// readinessCollector exports the checkpoint's age and readiness in
// /metrics, computed at scrape time.
type readinessCollector struct {
	s       *Server
	age     *prometheus.Desc
	ready   *prometheus.Desc
	backlog *prometheus.Desc
	witness *prometheus.Desc
	stamp   *prometheus.Desc
	tsaUp   *prometheus.Desc
	mapLag  *prometheus.Desc
}

func newReadinessCollector(s *Server) *readinessCollector {
	return &readinessCollector{
		s:     s,
		age:   prometheus.NewDesc("custody_checkpoint_age_seconds", "Age of the latest published log checkpoint.", nil, nil),
		ready: prometheus.NewDesc("custody_dependency_up", "Whether a dependency answers (1) or not (0).", []string{"dependency"}, nil),
		backlog: prometheus.NewDesc("custody_log_backlog_entries",
			"Log entries sequenced (their appends acknowledged) but not yet integrated into the tree; grows when integration falls behind.", nil, nil),
		witness: prometheus.NewDesc("custody_witness_lag_entries",
			"Entries the published checkpoint holds beyond the largest one this witness cosigned since the process started.", []string{"witness"}, nil),
		stamp: prometheus.NewDesc("custody_timestamp_gap_entries",
			"Entries the published checkpoint holds beyond the largest timestamped one.", nil, nil),
		tsaUp: prometheus.NewDesc("custody_timestamp_authority_up",
			"Whether a timestamp authority's last request succeeded (1) or not (0).", []string{"authority"}, nil),
		mapLag: prometheus.NewDesc("custody_history_map_lag_entries",
			"Entries the published checkpoint holds beyond the tree size of this process's newest history-map commitment it covers (docs/HISTORY_MAP.md).", nil, nil),
	}
}

func (c *readinessCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.age
	ch <- c.ready
	ch <- c.backlog
	ch <- c.witness
	ch <- c.stamp
	ch <- c.tsaUp
	ch <- c.mapLag
}

func (c *readinessCollector) Collect(ch chan<- prometheus.Metric) {
	if c.s.cfg.Evidence == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rd := c.s.cfg.Evidence.Ready(ctx)
	if rd.CheckpointKnown {
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, rd.CheckpointAge.Seconds())
	}
	if l := c.s.cfg.Log; l != nil {
		if backlog, err := l.Backlog(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(backlog))
		}
		if ws, err := l.Witnesses(ctx); err == nil {
			for _, w := range ws {
				ch <- prometheus.MustNewConstMetric(c.witness, prometheus.GaugeValue, float64(w.Lag), w.Name)
			}
		}
		if hs, err := l.HistoryMapping(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(c.mapLag, prometheus.GaugeValue, float64(hs.PublishedSize-min(hs.CommittedSize, hs.PublishedSize)))
		}
		if ts, ok, err := l.Timestamping(ctx); err == nil && ok {
			ch <- prometheus.MustNewConstMetric(c.stamp, prometheus.GaugeValue, float64(ts.PublishedSize-min(ts.StampedSize, ts.PublishedSize)))
			for _, a := range c.s.cfg.TimestampAuthorities {
				up := 1.0
				if _, failed := ts.Errors[a]; failed {
					up = 0
				}
				ch <- prometheus.MustNewConstMetric(c.tsaUp, prometheus.GaugeValue, up, a)
			}
		}
	}
	for name, err := range map[string]error{"storage": rd.Storage, "catalog": rd.Catalog, "log": rd.Log} {
		v := 1.0
		if err != nil {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, v, name)
	}
}
