package daemon

import (
	"time"

	"github.com/custody-dev/custody/evidence"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/server"
	"github.com/custody-dev/custody/storage/s3"
)

// Mode chooses which assembly Start builds.
type Mode string

const (
	// Embedded is one custodyd with its state under the data dir: SQLite
	// catalog, file journal, in-process item locks, upload sessions in
	// files and the POSIX log; evidence on local disk or S3.
	Embedded Mode = "embedded"
	// Replicated is a custodyd that shares its state with other replicas:
	// catalog, journal, item locks and upload sessions in PostgreSQL
	// (package postgres); the log on S3 with MySQL sequencing
	// (custodylog/awslog) when Log.MySQL is set, else the POSIX log under
	// the data dir (one process that wants its catalog in PostgreSQL);
	// evidence on S3 or local disk.
	Replicated Mode = "replicated"
)

// Config is custodyd's configuration, one part per component; see
// cmd/custodyd for the flag that sets each field. Defaults returns the
// defaults, the same for the flags and the tests.
type Config struct {
	// Mode chooses the assembly: Embedded or Replicated.
	Mode Mode
	// DataDir holds the keys and the development PKI, and in embedded
	// mode the catalog, journal, log, upload sessions and (without S3)
	// the evidence.
	DataDir string
	Keys    KeysConfig
	TLS     TLSConfig
	Storage StorageConfig
	Log     LogConfig
	// Replica is the state replicas share (Replicated only).
	Replica ReplicaConfig
	// Evidence tunes the evidence service; the assembly fills in
	// ExtraRecipients (from Keys.ExtraRecipients), UploadDir and
	// StampWait.
	Evidence evidence.Config
	// Server is the network face: addresses, Limits, Admission,
	// PublicMetrics; the assembly fills in the rest (certificates,
	// keys, the services it serves).
	Server server.Config
	Loops  LoopsConfig
	// Faults, for tests only, may wrap the evidence service's
	// collaborators and the server's log before they are used, to make
	// them fail on demand.
	Faults func(deps *evidence.Deps, log *server.Log)
}

// KeysConfig names the service's keys (see package keys).
type KeysConfig struct {
	// SigningKey is the receipt key: a PEM file or a KMS URI (default
	// <data-dir>/keys/receipt-key.pem).
	SigningKey string
	// LogOrigin is the log's origin line, fixed when the log key is
	// first created.
	LogOrigin string
	// ExtraRecipients is a file of extra age recipients that can also
	// decrypt encrypted evidence.
	ExtraRecipients string
}

// TLSConfig is the operator's PKI; all three files unset means the local
// development PKI under <data-dir>/certs.
type TLSConfig struct {
	Cert, Key, ClientCA string
	// Revoked is a deny list of serials or a CRL, re-read on change.
	Revoked string
}

// StorageConfig is where evidence objects go: S3 when S3.Endpoint is set,
// else local disk under <data-dir>/blobs. The shared log's bucket is on
// the same S3 endpoint with the same credentials.
type StorageConfig struct {
	S3 s3.Config
}

// LogConfig is the custody log's configuration.
type LogConfig struct {
	// CheckpointInterval is how often the log publishes a checkpoint.
	CheckpointInterval time.Duration
	// WitnessPolicy, if set, is a witness policy file (Sigsum format):
	// the witnesses asked to cosign each checkpoint.
	WitnessPolicy string
	// TSA are RFC 3161 timestamp authorities' URLs, TSAChain the PEM
	// files of their certificate chains, in the same order.
	TSA, TSAChain []string
	// MySQL, if set, puts the log on S3 (Bucket, on Storage.S3's
	// endpoint) with sequencing in this MySQL-compatible database, so
	// replicas share it (Replicated only); unset means the POSIX log
	// under the data dir.
	MySQL  string
	Bucket string
}

// ReplicaConfig is the state replicas share in PostgreSQL.
type ReplicaConfig struct {
	// DSN is the PostgreSQL URL holding the catalog, the record journal,
	// the item locks and the upload sessions.
	DSN string
	// MaxHeldLocks bounds how many item locks this replica holds at once,
	// each on its own connection (default DefaultMaxHeldLocks).
	MaxHeldLocks int
}

// LoopsConfig is how often the background work runs; every assembly runs
// it from Daemon.Serve.
type LoopsConfig struct {
	// ScrubInterval, if set, re-hashes every stored item that often.
	ScrubInterval time.Duration
	// RepairInterval is how often a replica catalogs log entries another
	// replica logged but did not catalog (it died between the two).
	// Replicated only.
	RepairInterval time.Duration
	// ExpiryInterval is how often unfinished upload sessions past their
	// time are removed (also once at start).
	ExpiryInterval time.Duration
}

// Defaults of what custodyd's flags do not cover, or cover with the
// daemon's own default.
const (
	// DefaultMaxHeldLocks bounds a replica's lock connections to
	// PostgreSQL (each held lock keeps one).
	DefaultMaxHeldLocks = 64
	// DefaultRepairInterval is --repair-interval's default.
	DefaultRepairInterval = 5 * time.Second
	// DefaultExpiryInterval is how often expired upload sessions are
	// looked for.
	DefaultExpiryInterval = time.Hour
	// DefaultCheckpointInterval is --checkpoint-interval's default.
	DefaultCheckpointInterval = time.Second
	// closeTimeout bounds how long the log takes to shut down.
	closeTimeout = 30 * time.Second
)

// Defaults is custodyd's default configuration: the embedded assembly
// under ./custody-data. cmd/custodyd registers its flags with these
// values; tests start from them.
func Defaults() Config {
	return Config{
		Mode:    Embedded,
		DataDir: "./custody-data",
		Keys:    KeysConfig{LogOrigin: "custody.local/log"},
		Storage: StorageConfig{S3: s3.Config{IdleTimeout: s3.DefaultIdleTimeout}},
		Log:     LogConfig{CheckpointInterval: DefaultCheckpointInterval},
		Replica: ReplicaConfig{MaxHeldLocks: DefaultMaxHeldLocks},
		Evidence: evidence.Config{
			MaxUploadBytes:  evidence.DefaultMaxUploadBytes,
			MaxBundleEvents: evidence.MaxBundleEvents,
			Retention:       evidence.DefaultRetention,
			ReleaseTTL:      evidence.DefaultReleaseTTL,
			UploadTTL:       evidence.DefaultUploadTTL,
			SpecialReaders:  []identity.Role{identity.RoleCourt},
		},
		Server: server.Config{
			GRPCAddr: "127.0.0.1:8443",
			HTTPAddr: "127.0.0.1:8080",
			Limits: server.Limits{
				RatePerSecond:     server.DefaultRatePerSecond,
				Burst:             server.DefaultBurst,
				StreamIdleTimeout: server.DefaultStreamIdleTimeout,
			},
			Admission: server.Admission{
				MaxInFlight:          server.DefaultMaxInFlight,
				MaxStreams:           server.DefaultMaxStreams,
				Wait:                 server.DefaultAdmissionWait,
				HealthWatches:        server.DefaultHealthWatches,
				HealthWatchesPerPeer: server.DefaultHealthWatchesPerPeer,
			},
		},
		Loops: LoopsConfig{RepairInterval: DefaultRepairInterval, ExpiryInterval: DefaultExpiryInterval},
	}
}
