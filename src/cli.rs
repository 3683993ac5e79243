//! The command line: clap derive structs whose doc comments are the `--help` text, and every
//! environment variable ferry reads, declared once in [`env`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use ferry_base::env_vars::EnvVars;
use ferry_oci::platform::Platform;

const ABOUT: &str = "Carry RKE system images across an air gap";

const LONG_ABOUT: &str = "\
ferry carries the container images Rancher RKE needs into an air-gapped private registry.

On a host with internet access, list the images (`ferry images`), resolve them to digests
(`ferry lock`) and pull them into one portable bundle (`ferry export`). Inside the air gap,
push the bundle into the registry your cluster.yml names (`ferry import`) and prove the
mirror complete (`ferry verify`).

Exit codes: 0 success, 1 problems found (the run finished but something is missing or
differs), 2 error (bad usage or configuration, or the job could not run).";

/// ferry: carry RKE system images across an air gap.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about = ABOUT, long_about = LONG_ABOUT, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// More detail on stderr: -v for info, -vv for debug, -vvv for trace. Secrets are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List RKE system images, exactly like `rke config --system-images`, or what `rke up` will pull for a cluster.yml.
    #[command(long_about = IMAGES_LONG_ABOUT)]
    Images(ImagesArgs),
    /// Resolve images to digests and platforms and write images.lock (on a host with internet access).
    #[command(long_about = LOCK_LONG_ABOUT)]
    Lock(LockArgs),
    /// Pull every image into one verified, resumable bundle file (on a host with internet access).
    #[command(long_about = EXPORT_LONG_ABOUT)]
    Export(ExportArgs),
    /// Push a bundle into the private registry (inside the air gap), under the names rke up will pull.
    #[command(long_about = IMPORT_LONG_ABOUT)]
    Import(ImportArgs),
    /// Prove a mirror complete (registry vs images.lock), or check a bundle offline.
    #[command(long_about = VERIFY_LONG_ABOUT)]
    Verify(VerifyArgs),
    /// Serve bundles as a read-only registry, in place (for clusters with no registry of their own).
    #[command(long_about = SERVE_LONG_ABOUT)]
    Serve(ServeArgs),
    /// Say what a bundle, split bundle or lock holds, in well under a second (nothing is hashed).
    #[command(long_about = INSPECT_LONG_ABOUT)]
    Inspect(InspectArgs),
    /// Compare two image sets (locks or bundles): what changed, and the bytes the new one needs.
    #[command(long_about = DIFF_LONG_ABOUT)]
    Diff(DiffArgs),
}

impl Command {
    /// Whether the command was asked for JSON (`--json`): the printer's output mode, and for
    /// `serve`, its log lines too.
    pub fn json(&self) -> bool {
        match self {
            Command::Images(a) => a.json,
            Command::Lock(a) => a.json,
            Command::Export(a) => a.json,
            Command::Import(a) => a.json,
            Command::Verify(a) => a.json,
            Command::Serve(a) => a.json,
            Command::Inspect(a) => a.json,
            Command::Diff(a) => a.json,
        }
    }
}

const INSPECT_LONG_ABOUT: &str = "\
Say what a bundle holds, from its index, its lock, its manifests and its .parts file: no blob
is read or hashed, so it answers in well under a second on any bundle (`ferry verify` is what
checks the bytes).

One line per image: its name, short digest, media type, platforms, unique bytes (only this
image needs them) and shared bytes (other images of the bundle need them too), and the
artifacts attached to it (attestation manifests). Then the totals (images, platforms, blobs,
bytes, bytes saved by de-duplication), the parts of a split bundle with their recorded sha256,
and what a delta bundle is a delta of. For an images.lock: what the lock knows (digests,
platforms, sizes).

--html FILE writes a self-contained transfer report (no external scripts, fonts or images;
prints on A4) for a change request; --markdown FILE the same for a ticket.

Examples:
  ferry inspect rke-images.tar
  ferry inspect rke-images.tar.parts --html transfer.html --markdown transfer.md
  ferry inspect images.lock --json";

const DIFF_LONG_ABOUT: &str = "\
Compare two image sets, each an images.lock or a bundle (its images.lock is read): the images
added, removed and changed (the same reference at another digest, with the platforms added
and removed), and the bytes the new set needs beyond the old one: exactly what
`ferry export --since OLD` would carry (every manifest and config of the new set, and the
layers the old set lacks).

The bytes need both sets' manifests: a bundle has them; for a lock, --resolve fetches them by
digest from the registries (a few KB each, no layer), as export --since does. Without them
the diff gives an upper bound (the added and changed images whole).

Exit codes: 0 the sets are identical, 1 they differ, 2 error (as diff(1)).

Examples:
  ferry diff v1.29.lock v1.30.lock
  ferry diff rke-v1.29.tar rke-v1.30.tar --json
  ferry diff v1.29.lock v1.30.lock --resolve";

const SERVE_LONG_ABOUT: &str = "\
Serve one or more bundles as a read-only container registry, straight from the bundle files:
nothing is extracted, and every byte is checked against its digest (in the background from
the start, or all before listening with --verify-first; a corrupt blob is withdrawn and the
images it breaks are named). Several bundles serve as one registry; a later bundle's tag wins.

Images are served under their source paths, so a cluster pulls
HOST:5000/rancher/rke-tools:v0.1.103 just as from an imported mirror. For rke up, point
cluster.yml at it:

  private_registries:
    - url: HOST:5000
      is_default: true

Nodes must trust the server's certificate: with --tls-self-signed DIR, copy DIR/ca.crt to
/etc/docker/certs.d/HOST:5000/ca.crt on Docker nodes, and to
/etc/containerd/certs.d/HOST:5000/ca.crt with a hosts.toml on containerd nodes (ferry prints
both when it starts).

For people and monitoring, the same address serves a status page at / (the bundles, images,
tags and platforms, the check's progress, withdrawn blobs and the images they break, and the
cluster.yml and CA snippets for this host and port; plain HTML, no script) and Prometheus
metrics at /metrics (requests by method, route and status, bytes, durations, connections,
blobs verified, pending and withdrawn; --no-metrics turns it off). With --htpasswd, both ask
for the same login as the registry API.

A readiness line goes to stdout once ferry listens; one access-log line per request to
stderr. SIGINT or SIGTERM stop it cleanly, letting running transfers finish.

Examples:
  ferry serve rke-images.tar                                   # http://127.0.0.1:5000
  ferry serve rke-images.tar --listen 0.0.0.0:5000 \\
      --tls-self-signed /etc/ferry/tls --hostname registry.lan
  ferry serve old.tar upgrade.tar --htpasswd /etc/ferry/htpasswd --tls-cert c.pem --tls-key k.pem";

/// Keyless signatures, as `cosign verify` checks them, against a trust root the site holds:
/// the alternative to --key for `verify`, `import` and `serve`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("keyless_identity").args(["certificate_identity", "certificate_identity_regexp"])))]
#[command(group(clap::ArgGroup::new("keyless_issuer").args(["certificate_oidc_issuer", "certificate_oidc_issuer_regexp"])))]
pub struct KeylessArgs {
    /// Check keyless signatures (a Fulcio certificate and a Rekor entry: cosign 3's sigstore
    /// bundle referrers, or a keyless `.sig`) offline against this sigstore trusted_root.json
    /// (its CA certificates, Rekor and CT log keys): the certificate chains to a CA valid at
    /// the signing time, the Rekor signed entry timestamp verifies, and so does the embedded
    /// SCT where the root names a CT log. Needs an identity and an issuer, as cosign does.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "key",
        requires_all = ["keyless_identity", "keyless_issuer"]
    )]
    pub trusted_root: Option<PathBuf>,

    /// The signer's identity in the certificate (its email or URI SAN), exactly, as
    /// `cosign verify --certificate-identity`.
    #[arg(long, value_name = "ID", requires = "trusted_root")]
    pub certificate_identity: Option<String>,

    /// The signer's identity as a regular expression (matching anywhere; anchor with ^…$), as
    /// `cosign verify --certificate-identity-regexp`.
    #[arg(long, value_name = "REGEX", requires = "trusted_root")]
    pub certificate_identity_regexp: Option<String>,

    /// The OIDC issuer in the certificate (Fulcio's extension), exactly, as `cosign verify
    /// --certificate-oidc-issuer`.
    #[arg(long, value_name = "URL", requires = "trusted_root")]
    pub certificate_oidc_issuer: Option<String>,

    /// The OIDC issuer as a regular expression (matching anywhere), as `cosign verify
    /// --certificate-oidc-issuer-regexp`.
    #[arg(long, value_name = "REGEX", requires = "trusted_root")]
    pub certificate_oidc_issuer_regexp: Option<String>,
}

/// `ferry serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The bundles to serve, as one registry (a later bundle's tag wins).
    #[arg(value_name = "BUNDLE.tar", required = true)]
    pub bundles: Vec<PathBuf>,

    /// Serve only images with a valid cosign signature by this public key (PEM; ECDSA
    /// P-256/P-384, RSA or Ed25519), checked offline from the signatures in the bundles at
    /// start. The others are withdrawn (404), with why, on the status page and in the log.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub keyless: KeylessArgs,

    /// Where to listen; serving on all interfaces (0.0.0.0:5000) must be asked for.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    pub listen: std::net::SocketAddr,

    /// TLS certificate chain (PEM), with --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM), with --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Write (or reuse) a CA in DIR and serve TLS with a certificate it signs for the
    /// --hostname names; ferry prints where nodes must put DIR/ca.crt.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: Option<PathBuf>,

    /// A name (or IP address) nodes reach this server by, for --tls-self-signed (repeatable;
    /// default: the listen address, localhost and 127.0.0.1).
    #[arg(long = "hostname", value_name = "NAME")]
    pub hostnames: Vec<String>,

    /// Require Basic auth from the users of this htpasswd file (bcrypt: `htpasswd -B`).
    #[arg(long, value_name = "FILE")]
    pub htpasswd: Option<PathBuf>,

    /// Serve images under this path, like a registry URL with a path
    /// (HOST:5000/PREFIX/rancher/rke-tools:…).
    #[arg(long, value_name = "PATH")]
    pub prefix: Option<String>,

    /// Check every blob against its digest before listening (default: in the background).
    #[arg(long)]
    pub verify_first: bool,

    /// Do not serve Prometheus metrics at /metrics (404). They are on by default and, with
    /// --htpasswd, need the same login as the registry API.
    #[arg(long)]
    pub no_metrics: bool,

    /// Connections that have made a request, at most. When all are taken, the one idle the
    /// longest is closed to make room; when all are transferring, a request gets 503 and
    /// Retry-After. Each takes a file descriptor (ferry raises its soft `ulimit -n`).
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,

    /// Connections that have not made a request yet, at most, counted apart from
    /// --max-connections so that silent sockets never take a transferring client's slot.
    /// When all are taken, the oldest is closed to make room.
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_pending: u32,

    /// Connections of either kind from one client address, at most; more are closed at once.
    /// Nodes behind one NAT address share it.
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections_per_client: u32,

    /// Seconds from connecting to the first request's headers, TLS handshake included;
    /// a connection that says nothing for that long is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub first_request_timeout: u64,

    /// Seconds a connection may stay open with no request running before it is closed
    /// (HTTP/1 keep-alive and HTTP/2 alike; pings do not count as requests).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub idle_timeout: u64,

    /// The readiness line, the access log and ferry's messages as JSON lines.
    #[arg(long)]
    pub json: bool,
}

const VERIFY_LONG_ABOUT: &str = "\
Check that every image of images.lock is complete, and report every problem found, not just
the first: a missing image, a tag pointing at another digest, a missing platform, a missing
blob, content that does not match its digest.

Against a registry (--cluster cluster.yml or --to, same names and credentials as import):
every tag resolves to the lock's digest, every platform manifest and every config and layer
is present; --deep downloads and re-hashes everything.

Offline, for a bundle: every blob is re-hashed against its name (in parallel), every
manifest's references are present with the right sizes, and index.json, manifest.json and
the embedded lock agree.

Exit codes: 0 complete, 1 problems found, 2 could not check.

Examples:
  ferry verify rke-images.tar                          # offline, before carrying it over
  ferry verify --lock images.lock --cluster cluster.yml
  ferry verify rke-images.tar --to registry.example.com:5000 --deep";

const IMPORT_LONG_ABOUT: &str = "\
Push every image of a bundle into the private registry, under exactly the names `rke up` will
pull: the registry URL + \"/\" + the image's path (rancher/rke-tools:v0.1.103 becomes
1.1.1.1:5555/artifactory/rancher/rke-tools:v0.1.103). The target is the is_default entry of
--cluster cluster.yml, or --to.

The bundle is read in place (no extraction): blobs stream concurrently straight from the tar,
each verified while it streams. What the registry already has is skipped; a blob pushed to
another repository in the same run is mounted instead of uploaded; child manifests go by
digest, the tag last. Re-running an import does only the missing work.

Credentials, first match wins: --username with --password-stdin; FERRY_USERNAME and
FERRY_PASSWORD; the cluster.yml entry's user/password; ~/.docker/config.json (auths,
credHelpers, credsStore); ECR (ecr_credential_plugin or AWS_* variables); anonymous.

Examples:
  ferry import rke-images.tar --cluster cluster.yml
  ferry import rke-images.tar --to registry.example.com:5000/artifactory
  echo \"$PASS\" | ferry import b.tar --to harbor.local/rke --username robot --password-stdin
  ferry import b.tar --to 127.0.0.1:5000 --plain-http --dry-run";

const EXPORT_LONG_ABOUT: &str = "\
Pull every image, all platforms, into one bundle: an OCI image layout in an uncompressed tar,
each blob stored once however many images share it, every byte verified against its digest
while it streams, manifests byte-identical to upstream. The bundle also holds images.lock and
a docker manifest.json (one platform, --docker-platform) so `docker load` works.

The bundle is written in place: each blob goes straight to its planned position in the final
file. If the run is interrupted (even kill -9), run the same command again: it continues
where it stopped, fetching only what is not yet verified. The file name appears only when
the bundle is complete; the same inputs always give a byte-identical bundle.

Examples:
  ferry export -o rke-images.tar                       # RKE's default version
  ferry export --all -o rke-images.tar
  ferry export --lock images.lock -o rke-images.tar    # exactly what was locked
  ferry export --lock images.lock -o b.tar --dry-run";

const LOCK_LONG_ABOUT: &str = "\
Resolve every image to its digest, its platforms and its size, and write images.lock.

The images are the RKE system images (same selection as `ferry images`: the default version,
-k, --all, or --cluster) or the list in --images FILE. Tags are resolved with HEAD requests,
which do not count against Docker Hub's pull rate limit; only manifests that must be read are
fetched, each once. An image that cannot be resolved is reported by name, the others are still
locked, and the exit code is 1.

The lock file is the contract for `ferry export`, `ferry import` and `ferry verify`: YAML,
stable order, never any credentials.

Examples:
  ferry lock                                   # RKE's default version, from Docker Hub
  ferry lock --all -o images.lock              # every current version
  ferry lock --images rancher-images.txt
  ferry lock --upstream docker.io=https://mirror.example.com   # through a pull-through cache";

const IMAGES_LONG_ABOUT: &str = "\
List RKE system images, one per line on stdout.

Without options this prints what `rke config --system-images` of RKE v1.6.3 prints for its
default Kubernetes version: every system image field in RKE's order, duplicates removed, the
Windows pause image left out.

With --cluster, it prints what `rke up` will really pull for that cluster.yml, and nothing
else: kubernetes, the pause image (or services.kubelet.infra_container_image), rke-tools,
etcd (unless services.etcd.external_urls is set), and the images of the one network plugin
(network.plugin, default canal), DNS provider (dns.provider, default coredns; plus NodeLocal
DNS with dns.nodelocal.ip_address), nginx ingress (its default backend only with
ingress.default_backend, which defaults to false from Kubernetes 1.21) and metrics-server
the cluster deploys; `none` deploys nothing. Which fields a plugin uses comes from the
version's addon template (from the --metadata data.json's own templates when it has them).
-v says what was left out and why; --json says which setting selected each image. An
unknown network.plugin or ingress.provider is refused, as RKE refuses it.

System images use the cluster.yml's kubernetes_version, its system_images overrides
verbatim, and every other image prefixed with the url of the first private_registries entry
marked is_default (rancher/rke-tools:v0.1.103 becomes
registry.example.com:5000/rancher/rke-tools:v0.1.103). --registry does the same rewrite
without a cluster.yml. After them come the images of the cluster's own addons (addons and
addons_include: local files relative to the cluster.yml, and https:// URLs fetched like
--metadata), as written: rke up does not rewrite them, and ferry says so on stderr.
--include-unused prints every system image of the version instead of the trimmed set, as
without --cluster; lock and export with --cluster carry the same set as images does.

Examples:
  ferry images                                   # default version, like rke config -s
  ferry images -k v1.29.9-rancher1-1             # one version
  ferry images --all --unique -o rancher-images.txt   # what a mirror needs, sorted
  ferry images --cluster cluster.yml             # what rke up will pull
  ferry images --cluster cluster.yml --include-unused   # every system image, rewritten
  ferry images --list-versions --all             # the current versions";

/// Where the RKE catalog comes from and which RKE release's rules apply.
#[derive(Debug, Clone, Args)]
pub struct CatalogArgs {
    /// Read the catalog from this KDM data.json (a local file or an http(s):// URL) instead of
    /// the embedded one.
    ///
    /// A URL such as https://releases.rancher.com/kontainer-driver-metadata/release-v2.9/data.json
    /// is downloaded into ~/.cache/ferry/metadata (or $XDG_CACHE_HOME/ferry/metadata) and
    /// revalidated with its ETag on the next run; when the download fails, the cached copy is
    /// used with a warning. Credentials in the URL (https://USER:PASSWORD@HOST/…) are never
    /// printed.
    #[arg(long, value_name = "FILE|URL", env = EnvVars::RANCHER_METADATA_URL, hide_env_values = true)]
    pub metadata: Option<String>,

    /// Trust this CA certificate (PEM) for the --metadata URL, on top of the system roots
    /// (repeatable).
    #[arg(long, value_name = "FILE")]
    pub metadata_ca_file: Vec<PathBuf>,

    /// Never download the --metadata URL: use the copy cached by an earlier run (an error if
    /// there is none).
    #[arg(long)]
    pub offline: bool,

    /// Apply the version rules of this RKE release (default Kubernetes version, supported and
    /// current versions).
    #[arg(long, value_name = "VERSION", default_value = ferry_rke::DEFAULT_RKE_VERSION, env = EnvVars::FERRY_RKE_VERSION)]
    pub rke_version: String,
}

/// Which RKE images to work on: shared by `images`, `lock` and `export`.
#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// Kubernetes version to list (default: RKE's default; with --cluster, its kubernetes_version).
    #[arg(
        short = 'k',
        long,
        visible_alias = "k8s-version",
        value_name = "VERSION"
    )]
    pub kubernetes_version: Option<String>,

    /// Every current version (newest patch of each supported minor), ascending, one block each.
    #[arg(short, long, conflicts_with = "kubernetes_version")]
    pub all: bool,

    /// Include the Windows pause image (RKE's list leaves it out; Windows nodes need it).
    #[arg(long)]
    pub windows: bool,

    /// Use this cluster.yml: only the system images rke up deploys for it (its network plugin,
    /// DNS, ingress and monitoring choices), its kubernetes_version, system_images overrides and
    /// default private registry, and the images of its addons and addons_include manifests.
    #[arg(short, long, value_name = "FILE")]
    pub cluster: Option<PathBuf>,

    /// With --cluster: every system image of the version (what `rke config --system-images`
    /// lists, rewritten onto the registry), not only the ones rke up deploys for that cluster.yml.
    #[arg(long)]
    pub include_unused: bool,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

impl SelectArgs {
    /// The selection these flags ask for.
    pub fn select(&self) -> ferry_rke::Select<'_> {
        ferry_rke::Select {
            metadata: self.catalog.metadata.as_deref(),
            metadata_ca_files: &self.catalog.metadata_ca_file,
            offline: self.catalog.offline,
            rke_version: &self.catalog.rke_version,
            kubernetes_version: self.kubernetes_version.as_deref(),
            all: self.all,
            windows: self.windows,
            cluster: self.cluster.as_deref(),
            include_unused: self.include_unused,
        }
    }
}

/// `ferry images`.
#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub select: SelectArgs,

    /// Print the sorted union of the images instead of one list per version (what a mirror needs).
    #[arg(long)]
    pub unique: bool,

    /// Rewrite every image onto this registry, as RKE does for the is_default private
    /// registry: `HOST[:PORT][/PATH]`, no scheme (overrides the cluster.yml's).
    #[arg(long, value_name = "URL")]
    pub registry: Option<String>,

    /// Print the default Kubernetes version (with --all: every current version) instead of images.
    #[arg(short, long)]
    pub list_versions: bool,

    /// Machine-readable JSON on stdout instead of lines.
    #[arg(long)]
    pub json: bool,

    /// Write the list to FILE (atomically) instead of stdout, e.g. rancher-images.txt.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Where the source registries are: `lock` and `export`.
#[derive(Debug, Clone, Args)]
pub struct UpstreamArgs {
    /// Send requests for REGISTRY to URL instead (repeatable): a pull-through cache, or a
    /// local stand-in for Docker Hub, e.g. docker.io=https://127.0.0.1:5000. Plain HTTP only
    /// when the URL says http://.
    #[arg(long, value_name = "REGISTRY=URL")]
    pub upstream: Vec<String>,

    /// Leave out what cosign attached to the images. By default the cosign tags of each
    /// image's digest and of each platform's manifest (sha256-<hex>.sig signatures, .att
    /// attestations, .sbom SBOMs, and what is attached to those) are carried with it, byte
    /// for byte: one HEAD per tag, nothing more when there is none. skopeo's spelling.
    #[arg(long)]
    pub remove_signatures: bool,
}

/// How ferry reaches registries: shared by `lock`, `export`, `import` and `verify`.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Trust this CA certificate (PEM) on top of the system roots (repeatable).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Vec<PathBuf>,

    /// Verify TLS certificates; --tls-verify=false accepts any certificate (test registries only).
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls_verify: bool,

    /// Transfers running at once, over all registries.
    #[arg(short, long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,

    /// Transfers running at once against one registry host.
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub per_host: u16,

    /// Attempts per request before giving up (connection errors, 5xx and 429 are retried with backoff).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub retries: u32,

    /// Seconds a transfer may go without receiving data before it is retried (and resumed).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stall_timeout: u64,

    /// HTTP version towards registries: 1.1 (a pool of up to --per-host connections per
    /// host, the default: measured faster for bulk transfers), or 2 (HTTP/2 where the
    /// server offers it over TLS: every transfer multiplexed on one connection).
    #[arg(long, value_name = "1.1|2", default_value = "1.1")]
    pub http: HttpVersion,
}

/// The target registry and its credentials: shared by `import` and `verify`.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The first private_registries entry with is_default: true of this cluster.yml (its
    /// user/password are used), under exactly the names `rke up` will pull.
    #[arg(short, long, value_name = "FILE")]
    pub cluster: Option<PathBuf>,

    /// This registry: `HOST[:PORT][/PATH]` (a path prefix such as an Artifactory repository or
    /// a Harbor project), optionally with http:// or https://.
    #[arg(long, value_name = "REGISTRY", conflicts_with = "cluster")]
    pub to: Option<String>,

    /// Talk plain HTTP to the registry (default HTTPS).
    #[arg(long)]
    pub plain_http: bool,

    /// User for the registry (with --password-stdin; else FERRY_USERNAME/FERRY_PASSWORD,
    /// cluster.yml, docker login).
    #[arg(short, long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,

    /// Read the registry's password from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

/// Parses a size: `8388608`, `8MiB`, `8M` (MiB), `512KiB`, `1GiB`, `10MB` (decimal).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("invalid size {s:?}: write a number with an optional unit, e.g. 8MiB")
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {unit:?} (use KiB, MiB, GiB, kB, MB or GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("invalid size {s:?}: must be between 1 byte and 16 EiB"))
}

/// `ferry lock`.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub select: SelectArgs,

    /// Lock the images listed in FILE (one reference per line, # comments; the
    /// rancher-images.txt format) instead of the RKE catalog.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["kubernetes_version", "all", "cluster"])]
    pub images: Option<PathBuf>,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub upstream: UpstreamArgs,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Where to write the lock file.
    #[arg(short, long, value_name = "FILE", default_value = "images.lock")]
    pub output: PathBuf,

    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `ferry export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The bundle to write (an uncompressed tar holding an OCI image layout).
    #[arg(short, long, value_name = "BUNDLE.tar")]
    pub output: PathBuf,

    /// Export exactly the images of this lock file (their digests, no tag lookups).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["images", "kubernetes_version", "all", "cluster"])]
    pub lock: Option<PathBuf>,

    /// Export the images listed in FILE (one reference per line) instead of the RKE catalog.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["kubernetes_version", "all", "cluster"])]
    pub images: Option<PathBuf>,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub select: SelectArgs,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub upstream: UpstreamArgs,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Export only this platform (repeatable), e.g. linux/amd64. Attestations of kept
    /// platforms stay. Filtering rewrites the index (a new digest, recorded in the lock as
    /// written_digest next to the upstream one); by default every platform is exported and
    /// every manifest is byte-identical to upstream.
    #[arg(long = "platform", value_name = "OS/ARCH[/VARIANT]")]
    pub platforms: Vec<Platform>,

    /// The platform of the docker-archive manifest.json view (what classic `docker load` reads).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", default_value = "linux/amd64")]
    pub docker_platform: Platform,

    /// Write the bundle in parts of at most SIZE bytes (e.g. 4GiB, 700MB, or fat32 for
    /// 4 GiB − 1), as BUNDLE.tar.001, .002, … plus BUNDLE.tar.parts listing each part's size
    /// and sha256; `cat BUNDLE.tar.0* > BUNDLE.tar` joins them. import, verify and serve
    /// read the parts in place (give them the .parts file).
    #[arg(long, value_name = "SIZE|fat32", value_parser = parse_split)]
    pub split: Option<u64>,

    /// Write a delta bundle for an upgrade: leave out every layer the older image set
    /// already has. OLD is its images.lock (its manifests are fetched by digest, no layer)
    /// or its bundle (a delta too). The delta still lists and describes every image; import
    /// it into a registry that holds the older set (`ferry import` checks first).
    #[arg(long, value_name = "OLD.lock|OLD.tar")]
    pub since: Option<PathBuf>,

    /// Show what would be exported (images, platforms, blobs, bytes, rate-limited GETs) and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `--http`: the HTTP version towards registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpVersion {
    /// A pool of HTTP/1.1 connections, one transfer each.
    #[value(name = "1.1")]
    Http1,
    /// HTTP/2 where the server offers it over TLS, every transfer on one connection.
    #[value(name = "2")]
    Http2,
}

/// `--layer-compression`: what happens to an archive's uncompressed layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayerCompression {
    /// gzip them while importing.
    Gzip,
    /// Push them as they are.
    None,
}

/// A `--split` size: a size (`4GiB`, `700MB`) or `fat32` (4 GiB − 1 byte, FAT32's largest file).
pub fn parse_split(s: &str) -> Result<u64, String> {
    if s.trim().eq_ignore_ascii_case("fat32") {
        return Ok(ferry_store::bundle::FAT32_MAX_FILE);
    }
    parse_size(s)
}

/// `ferry import`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["cluster", "to"])))]
pub struct ImportArgs {
    /// The bundle written by `ferry export` (a .tar, or a split bundle's .parts), or an
    /// archive people already have: `docker save` / `podman save` output (gzip-compressed or
    /// not, e.g. rancher-images.tar.gz) or an OCI archive. The kind is told from the content.
    #[arg(value_name = "BUNDLE.tar|ARCHIVE")]
    pub bundle: PathBuf,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub target: TargetArgs,

    /// Upload in chunks of this size (e.g. 8MiB) for registries that limit request bodies;
    /// default: one streaming PUT per blob.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub chunk_size: Option<u64>,

    /// For a docker-save or podman archive, whose layers are uncompressed tars: gzip them
    /// while importing (the default; what `docker push` does) or push them as they are
    /// (`none`, for registries and clients that take uncompressed layers). The layer content
    /// is unchanged either way; the digests differ from the registry the images came from,
    /// so write --lock-out to verify them later.
    #[arg(long, value_name = "gzip|none", default_value = "gzip")]
    pub layer_compression: LayerCompression,

    /// gzip level for those layers, 1 (fastest, the default) to 9 (smallest).
    #[arg(long, value_name = "1-9", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub gzip_level: u32,

    /// For an archive: write an images.lock of what was pushed (names and the new digests),
    /// for `ferry verify --lock FILE`.
    #[arg(long, value_name = "FILE")]
    pub lock_out: Option<PathBuf>,

    /// For an archive that must be read as a stream (gzip-compressed): where its layers are
    /// kept until the images are known (default: the temporary directory, TMPDIR).
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,

    /// Most temporary space the spooled layers may take (default: the free space of the
    /// spool directory, less 1 GiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub spool_limit: Option<u64>,

    /// Check every blob and manifest of every image in the target, also of images already
    /// there. By default an image whose tag points at the locked digest and whose every
    /// platform manifest exists counts as complete: a registry refuses a manifest whose blobs
    /// are missing, but blobs deleted later (garbage collection, lost storage) are only found
    /// with --check-all, or by `ferry verify`.
    #[arg(long)]
    pub check_all: bool,

    /// For an Amazon ECR target (<account>.dkr.ecr.<region>.amazonaws.com): create the
    /// repositories the push needs that do not exist yet, since ECR refuses a push into a
    /// missing repository. Uses the AWS keys ferry logs in with (cluster.yml
    /// ecr_credential_plugin, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), which then need the
    /// IAM permission ecr:CreateRepository (or ecr:DescribeRepositories, when every repository
    /// exists already). --ecr-create-repos=false pushes without creating anything.
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub ecr_create_repos: bool,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Push only images with a valid cosign signature by this public key (PEM; ECDSA
    /// P-256/P-384, RSA or Ed25519), checked offline from the signatures in the bundle. Every
    /// other image is named and not pushed, and the exit code is 1. Bundles only.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub keyless: KeylessArgs,

    /// Show what would be pushed and what is already there; push nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `ferry verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// A bundle: verified offline (every blob re-hashed, index, manifest.json and lock
    /// consistent), or, with --cluster/--to, the source of the lock to check the registry against.
    #[arg(value_name = "BUNDLE.tar")]
    pub bundle: Option<PathBuf>,

    /// The lock to check (default: the one inside BUNDLE).
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub target: TargetArgs,

    /// Download every blob from the registry and re-hash it (default: read each blob's first
    /// byte, which proves its storage is there at about the cost of a HEAD).
    #[arg(long)]
    pub deep: bool,

    /// For a delta bundle checked offline: the bundle(s) it builds on (repeatable, e.g. the
    /// full bundle and an earlier delta). Every layer the delta leaves out must be in one of
    /// them and is re-hashed there; without --base those layers are listed, not checked.
    #[arg(long = "base", value_name = "OLD.tar")]
    pub bases: Vec<PathBuf>,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Also require a valid cosign signature by this public key (PEM: cosign.pub, or
    /// `openssl pkey -pubout`; ECDSA P-256/P-384, RSA or Ed25519) on every image's digest,
    /// checked offline from the signatures carried with the images. Like `cosign verify
    /// --key`, the signed docker-reference is not compared, so a mirror under another name
    /// still verifies. Unsigned images and bad signatures are named; the exit code is 1.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub keyless: KeylessArgs,

    /// With --key, also require a valid cosign attestation (`cosign attest --key`: a DSSE
    /// envelope of an in-toto statement, carried as `sha256-<hex>.att`) by the same key whose
    /// statement names the image's digest, as `cosign verify-attestation --key` does.
    /// Unattested images and bad attestations are named; the exit code is 1.
    #[arg(long, requires = "key")]
    pub attestations: bool,

    /// Print a machine-readable report on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `ferry inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A bundle (.tar), a split bundle (its .parts file or a part), or an images.lock.
    #[arg(value_name = "BUNDLE|PARTS|LOCK")]
    pub path: PathBuf,

    /// Also write a self-contained HTML transfer report to FILE (a bundle or split bundle).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Also write the same report as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,

    /// Print the full record as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `ferry diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older set: an images.lock, or a bundle (.tar, .parts).
    #[arg(value_name = "OLD")]
    pub old: PathBuf,

    /// The newer set: an images.lock, or a bundle (.tar, .parts).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,

    /// For a lock: fetch its manifests by digest from the registries (a few KB each, no
    /// layer), to count the bytes the new set needs exactly.
    #[arg(long)]
    pub resolve: bool,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub upstream: UpstreamArgs,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Print the comparison as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
