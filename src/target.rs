//! Where images land inside the air gap: the private registry `rke up` pulls from (the
//! `is_default` entry of cluster.yml's `private_registries`, or `--to`), its endpoint, and
//! the name each image gets there — the registry URL + `/` + the image's path, its tag kept,
//! as RKE rewrites it (`rancher/rke-tools:v0.1.103` with url `1.1.1.1:5555/artifactory`
//! lands at `1.1.1.1:5555/artifactory/rancher/rke-tools:v0.1.103`).

use anyhow::Context;

use ferry_oci::reference::{Reference, RegistryPrefix};
use ferry_rke::ClusterConfig;
use ferry_store::registry::config;

/// The target registry and how images are named there.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host[:port][/path]` as RKE writes it.
    pub prefix: RegistryPrefix,
    /// The endpoint URL (scheme, host, port).
    pub endpoint: url::Url,
}

impl Target {
    /// Parses `--to`: `[http://|https://]HOST[:PORT][/PATH]`.
    pub fn parse(value: &str, plain_http: bool) -> anyhow::Result<Target> {
        let (scheme, rest) = match value.split_once("://") {
            Some((s, r)) if s == "http" || s == "https" => (s, r),
            Some(_) => anyhow::bail!("--to {value:?}: the scheme must be http:// or https://"),
            None => (if plain_http { "http" } else { "https" }, value),
        };
        let rest = rest.trim_end_matches('/');
        let prefix = RegistryPrefix::parse(rest).with_context(|| format!("--to {value:?} is not a registry: write HOST[:PORT][/PATH], e.g. registry.example.com:5000/artifactory"))?;
        let endpoint = config::parse_endpoint(&format!("{scheme}://{}", prefix.host()))?;
        Ok(Target { prefix, endpoint })
    }

    /// The target of the cluster.yml's default private registry.
    pub fn from_cluster(c: &ClusterConfig, plain_http: bool) -> anyhow::Result<Target> {
        match c.default_prefix()? {
            Some(p) => Target::parse(p.as_str(), plain_http),
            None => anyhow::bail!(
                "{} has no private_registries entry with is_default: true and a url, so there is nowhere to push; add one (url: host[:port][/path]) or use --to",
                c.path.display()
            ),
        }
    }

    /// The registry name (`host[:port]`).
    pub fn host(&self) -> &str {
        self.prefix.host()
    }

    /// Where an image lands: `prefix/path` of the source, its tag kept. A source known by
    /// digest alone (a referrer found through the referrers API, which has no tag) stays by
    /// digest: it never takes the tag `latest`.
    pub fn name_for(&self, source: &Reference) -> Reference {
        if source.tag().is_none() && source.digest().is_some() {
            return source.rebase(&self.prefix);
        }
        source.without_digest().rebase(&self.prefix)
    }
}

#[cfg(test)]
mod tests;
