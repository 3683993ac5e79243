//! A repository's tag list (`GET /v2/<name>/tags/list?n=…`), read when it comes whole in one
//! page: looking for cosign's tags of many digests then costs one request per repository
//! instead of a `HEAD` per tag and digest. The answer is untrusted: its body is capped, a list
//! that goes on (a `Link` to a next page, or a full page) is not used, and anything but a
//! clean answer means "ask tag by tag", never a failure.

use reqwest::Method;
use reqwest::header::LINK;
use serde::Deserialize;

use super::Registry;
use super::auth::Scope;
use super::request::{Req, read_capped};

/// Tags asked for in the one page read; a repository with more is asked tag by tag.
pub const TAG_PAGE: usize = 1000;

/// The most bytes of a tag list read (a thousand tags of 128 characters fit in 150 KB).
pub const MAX_TAG_LIST: usize = 1024 * 1024;

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Registry {
    /// Every tag of `repository` when the registry lists them in one page of at most
    /// [`TAG_PAGE`]; `None` when it does not (no such API, an error, a longer list).
    pub async fn all_tags(&self, repository: &str) -> Option<Vec<String>> {
        let scopes = [Scope::pull(repository)];
        let url = self
            .base
            .join(&format!("v2/{repository}/tags/list?n={TAG_PAGE}"))
            .ok()?;
        let req = Req {
            method: Method::GET,
            url,
            scopes: &scopes,
            headers: Vec::new(),
            body: None,
            retry: true,
        };
        let (resp, _permit) = self.send(&req).await.ok()?;
        if !resp.status().is_success() || resp.headers().contains_key(LINK) {
            return None;
        }
        let body = read_capped(resp, MAX_TAG_LIST).await.ok()??;
        let list: TagList = serde_json::from_slice(&body).ok()?;
        let tags = list.tags.unwrap_or_default();
        // A full page may have been cut short without a Link (some registries do).
        (tags.len() < TAG_PAGE).then_some(tags)
    }
}
