//! The command line: clap derive structs whose doc comments are the `--help` text, and every
//! environment variable ferry reads, declared once in [`env`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Environment variables ferry reads. Declared here once; `--help` shows each next to its flag.
pub mod env {
    /// A local KDM `data.json` to use instead of the embedded catalog (RKE's own variable).
    pub const RANCHER_METADATA_URL: &str = "RANCHER_METADATA_URL";
    /// The RKE release whose rules ferry applies.
    pub const FERRY_RKE_VERSION: &str = "FERRY_RKE_VERSION";
    /// Log filter (`info`, `debug`, `ferry=trace`), as with `-v`.
    pub const FERRY_LOG: &str = "FERRY_LOG";
}

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
}

const IMAGES_LONG_ABOUT: &str = "\
List RKE system images, one per line on stdout.

Without options this prints what `rke config --system-images` of RKE v1.6.3 prints for its
default Kubernetes version: every system image field in RKE's order, duplicates removed, the
Windows pause image left out.

With --cluster, it prints what `rke up` will really pull for that cluster.yml: its
kubernetes_version, its system_images overrides verbatim, and every other image prefixed with
the url of the first private_registries entry marked is_default (rancher/rke-tools:v0.1.103
becomes registry.example.com:5000/rancher/rke-tools:v0.1.103). --registry does the same
rewrite without a cluster.yml.

Examples:
  ferry images                                   # default version, like rke config -s
  ferry images -k v1.29.9-rancher1-1             # one version
  ferry images --all --unique -o rancher-images.txt   # what a mirror needs, sorted
  ferry images --cluster cluster.yml             # what rke up will pull
  ferry images --list-versions --all             # the current versions";

/// Where the RKE catalog comes from and which RKE release's rules apply.
#[derive(Debug, Clone, Args)]
pub struct CatalogArgs {
    /// Read the catalog from this KDM data.json instead of the embedded one (offline: a local
    /// file; download a remote one first).
    #[arg(long, value_name = "FILE", env = env::RANCHER_METADATA_URL)]
    pub metadata: Option<String>,

    /// Apply the version rules of this RKE release (default Kubernetes version, supported and
    /// current versions).
    #[arg(long, value_name = "VERSION", default_value = crate::rke::DEFAULT_RKE_VERSION, env = env::FERRY_RKE_VERSION)]
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

    /// Use this cluster.yml: its kubernetes_version, system_images overrides and default private registry.
    #[arg(short, long, value_name = "FILE")]
    pub cluster: Option<PathBuf>,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

/// `ferry images`.
#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub select: SelectArgs,

    /// Print the sorted union of the images instead of one list per version (what a mirror needs).
    #[arg(short, long)]
    pub unique: bool,

    /// Rewrite every image onto this registry, as RKE does for the is_default private
    /// registry: HOST[:PORT][/PATH], no scheme (overrides the cluster.yml's).
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
