//! The copy engine, written once for every pair of stores: registry → bundle (`export`),
//! bundle → registry (`import`), and whatever comes next. It walks each image children
//! before parents; moves every object once per destination scope (a failure is not cached,
//! so a later image, or a re-run, tries again); links a blob into a repository from another
//! one that holds it before it uploads it (the mount policy: repositories that received the
//! blob in this run, or that an image of this run uses); writes each manifest once and tags
//! the top-level one per image; and reports through a [`Reporter`]. It bounds nothing itself:
//! the stores hold a permit for each real transfer, so walking never deadlocks on a limit.
//!
//! Its bookkeeping stays small however many images a run covers: what it learns about an
//! object (moved in a scope, held by a repository, whose turn it is) is forgotten once every
//! image of the run that uses the object is done, and which images use which object is one
//! sorted list of borrowed digests, not a map of cloned names.

#![deny(missing_docs)]

pub mod progress;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use tokio::sync::OnceCell;

#[cfg(test)]
mod tests;

use crate::progress::Reporter;
use ferry_oci::digest::Digest;
use ferry_oci::reference::Reference;
use ferry_plan::resolve::ResolvedImage;
use ferry_store::{
    Destination, FetchedManifest, Mount, ObjectKind, Source, SourceBlob, StoreError,
};

/// One image to copy: what it is (read where it was resolved), and where it goes (the
/// destination name carries the tag the top-level manifest gets).
#[derive(Debug, Clone)]
pub struct Job {
    /// Its manifests and blobs.
    pub image: ResolvedImage,
    /// Where it goes: repository and tag in the destination.
    pub to: Reference,
}

impl Job {
    /// The job of copying `image` to `to`. The image's object map goes: the engine reads only
    /// its manifests and blobs, and a run of thousands of images would keep it for nothing.
    pub fn new(mut image: ResolvedImage, to: Reference) -> Job {
        image.objects = std::collections::BTreeMap::new();
        Job { image, to }
    }

    /// The image name as listed (for messages).
    pub fn name(&self) -> &str {
        &self.image.locked.name
    }

    /// Where it is read: registry and repository in the source (where it was resolved).
    pub fn from(&self) -> &Reference {
        &self.image.reference
    }
}

/// What copying one image did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageStats {
    /// Blobs this image's walk moved.
    pub blobs_moved: u64,
    /// Their bytes.
    pub bytes_moved: u64,
    /// Blobs this image's walk linked from another repository instead.
    pub blobs_mounted: u64,
    /// Their bytes.
    pub bytes_mounted: u64,
    /// Blobs this image's walk found already there. A blob two images share is counted by
    /// the one that handled it, so the sum over images counts each blob once per scope.
    pub blobs_present: u64,
}

impl std::ops::AddAssign<&ImageStats> for ImageStats {
    fn add_assign(&mut self, o: &ImageStats) {
        self.blobs_moved += o.blobs_moved;
        self.bytes_moved += o.bytes_moved;
        self.blobs_mounted += o.blobs_mounted;
        self.bytes_mounted += o.bytes_mounted;
        self.blobs_present += o.blobs_present;
    }
}

/// A failed image and why (the first failure; `more` others of the same image).
#[derive(Debug, thiserror::Error)]
#[error("{image}: {source}{}", if *.more > 0 { format!(" (and {} more failure(s))", .more) } else { String::new() })]
pub struct CopyError {
    /// The image name as listed.
    pub image: String,
    /// What went wrong.
    pub source: Box<StoreError>,
    /// How many other objects of the image failed too.
    pub more: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Moved,
    Mounted,
    Present,
}

type Cell = Arc<OnceCell<Outcome>>;

/// The engine between one source and one destination.
pub struct Engine<'a, S: Source, D: Destination> {
    source: &'a S,
    dest: &'a D,
    reporter: &'a dyn Reporter,
    /// One cell per (scope, digest): an object moves once per scope.
    cells: Mutex<HashMap<(String, Digest), Cell>>,
    /// Per digest, across scopes: one repository uploads a blob while the others wait to
    /// mount it from there. An entry lives while someone holds or waits for its turn.
    turns: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    /// Where in the destination each blob is known to be, learned in this run (at most
    /// [`MAX_HOLDERS`] repositories per blob).
    holders: Mutex<HashMap<Digest, Vec<Reference>>>,
}

/// Repositories remembered per blob as mount sources: the first that answers is enough; a
/// few more get past repositories the destination does not let this user read, and every
/// repository an image of the run puts the blob in is a candidate after them anyway.
const MAX_HOLDERS: usize = 8;

/// One [`Engine::copy_all`]: its jobs, which job uses which object, and which jobs are done.
struct Run<'j> {
    jobs: &'j [Job],
    /// One entry per object of each job (its manifests and blobs), sorted by digest, then job.
    uses: Vec<Use<'j>>,
    /// Per job: copied (or failed) already.
    finished: Vec<AtomicBool>,
}

/// Job `job` uses object `digest`: a blob (a mount candidate: the job puts it in its
/// repository) or a manifest.
struct Use<'j> {
    digest: &'j Digest,
    job: usize,
    blob: bool,
}

impl<'j> Run<'j> {
    fn new(jobs: &'j [Job]) -> Run<'j> {
        let mut uses: Vec<Use<'j>> = Vec::new();
        for (job, j) in jobs.iter().enumerate() {
            uses.extend(j.image.blobs.keys().map(|digest| Use {
                digest,
                job,
                blob: true,
            }));
            uses.extend(j.image.manifests.iter().map(|m| Use {
                digest: &m.digest,
                job,
                blob: false,
            }));
        }
        uses.sort_unstable_by(|a, b| a.digest.cmp(b.digest).then(a.job.cmp(&b.job)));
        Run {
            jobs,
            uses,
            finished: jobs.iter().map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Every use of `digest`.
    fn uses_of(&self, digest: &Digest) -> &[Use<'j>] {
        let start = self.uses.partition_point(|u| u.digest < digest);
        let len = self.uses[start..].partition_point(|u| u.digest == digest);
        &self.uses[start..start + len]
    }

    /// Distinct blobs of the run and their bytes.
    fn planned(&self) -> (u64, u64) {
        let mut count = 0u64;
        let mut bytes = 0u64;
        let mut last: Option<&Digest> = None;
        for u in self.uses.iter().filter(|u| u.blob) {
            if last == Some(u.digest) {
                continue;
            }
            last = Some(u.digest);
            count += 1;
            let size = self.jobs[u.job].image.blobs.get(u.digest).copied();
            bytes = bytes.saturating_add(size.unwrap_or(0));
        }
        (count, bytes)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<'a, S: Source, D: Destination> Engine<'a, S, D> {
    /// An engine copying from `source` to `dest`, reporting to `reporter`.
    pub fn new(source: &'a S, dest: &'a D, reporter: &'a dyn Reporter) -> Self {
        Engine {
            source,
            dest,
            reporter,
            cells: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
            holders: Mutex::new(HashMap::new()),
        }
    }

    fn cell(&self, to: &Reference, digest: &Digest) -> Cell {
        lock(&self.cells)
            .entry((self.dest.scope(to), digest.clone()))
            .or_default()
            .clone()
    }

    fn turn(&self, digest: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.turns).entry(digest.clone()).or_default().clone()
    }

    /// Gives `turn` (of `digest`) back, dropping its entry when nobody else holds or waits
    /// for it (clones are only made under the map's lock, so the count cannot rise here).
    fn end_turn(&self, digest: &Digest, turn: Arc<tokio::sync::Mutex<()>>) {
        let mut turns = lock(&self.turns);
        if Arc::strong_count(&turn) <= 2 {
            turns.remove(digest);
        }
    }

    fn hold(&self, digest: &Digest, at: &Reference) {
        let mut h = lock(&self.holders);
        let list = h.entry(digest.clone()).or_default();
        if list.len() < MAX_HOLDERS && !list.iter().any(|r| r.repository() == at.repository()) {
            list.push(at.clone());
        }
    }

    /// Job `job` of `run` is done: what the engine knows of each of its objects that no
    /// other unfinished job of the run uses is dropped (a later run checks the destination
    /// again).
    fn finished(&self, run: &Run<'_>, job: usize) {
        run.finished[job].store(true, Ordering::SeqCst);
        let image = &run.jobs[job].image;
        let objects = image
            .blobs
            .keys()
            .chain(image.manifests.iter().map(|m| &m.digest));
        for digest in objects {
            let uses = run.uses_of(digest);
            if !uses
                .iter()
                .all(|u| run.finished[u.job].load(Ordering::SeqCst))
            {
                continue;
            }
            {
                let mut cells = lock(&self.cells);
                let mut last_scope: Option<String> = None;
                for u in uses {
                    let scope = self.dest.scope(&run.jobs[u.job].to);
                    if last_scope.as_ref() != Some(&scope) {
                        cells.remove(&(scope.clone(), digest.clone()));
                        last_scope = Some(scope);
                    }
                }
            }
            lock(&self.holders).remove(digest);
        }
    }

    /// Tells the engine that the destination already holds `digest` in `at`'s repository (a
    /// mount source: a delta's base layers, found before the copy).
    pub fn knows(&self, digest: &Digest, at: &Reference) {
        self.hold(digest, at);
    }

    /// Repositories of the destination known to hold `digest` (mount sources).
    fn holders_of(&self, digest: &Digest) -> Vec<Reference> {
        lock(&self.holders).get(digest).cloned().unwrap_or_default()
    }

    /// Moves one blob into `job.to`'s scope once: present, mounted, or pushed. A failure is
    /// not cached: the cell stays empty, so a later caller tries again.
    async fn blob(
        &self,
        run: &Run<'_>,
        job: &Job,
        digest: &Digest,
        size: u64,
    ) -> Result<(Outcome, bool), StoreError> {
        let cell = self.cell(&job.to, digest);
        let mut mine = false;
        let outcome = cell
            .get_or_try_init(|| async {
                mine = true;
                if self
                    .dest
                    .exists(&job.to, digest, size, ObjectKind::Blob)
                    .await?
                {
                    self.hold(digest, &job.to);
                    self.reporter.finished(digest, size, false);
                    return Ok(Outcome::Present);
                }
                let turn = self.turn(digest);
                let moved = {
                    let _turn = turn.lock().await;
                    self.mount_or_push(run, job, digest, size).await
                };
                self.end_turn(digest, turn);
                let outcome = moved?;
                self.hold(digest, &job.to);
                Ok::<_, StoreError>(outcome)
            })
            .await?;
        Ok((*outcome, mine))
    }

    /// Links the blob from another repository when one has it (those that received it in
    /// this run first, then those an image of this run puts it in: an interrupted run may
    /// have put it there), else pushes it.
    async fn mount_or_push(
        &self,
        run: &Run<'_>,
        job: &Job,
        digest: &Digest,
        size: u64,
    ) -> Result<Outcome, StoreError> {
        let mut session = None;
        let scope = self.dest.scope(&job.to);
        let held = self.holders_of(digest);
        let users = run
            .uses_of(digest)
            .iter()
            .filter(|u| u.blob)
            .map(|u| &run.jobs[u.job].to);
        let mut tried: Vec<&str> = Vec::new();
        for from in held.iter().chain(users) {
            if tried.contains(&from.repository()) || self.dest.scope(from) == scope {
                continue;
            }
            tried.push(from.repository());
            match self.dest.mount(&job.to, digest, from).await {
                Ok(Mount::Mounted) => {
                    self.reporter.started(digest, size);
                    self.reporter.bytes(size);
                    self.reporter.finished(digest, size, true);
                    return Ok(Outcome::Mounted);
                }
                // Not there: the store may have opened an upload session, used below.
                Ok(Mount::NotMounted(s)) => {
                    session = s;
                    break;
                }
                Ok(Mount::Unsupported) => break,
                // Not allowed to read the other repository (another Harbor project): push.
                Err(e) => tracing::debug!(
                    "mounting {digest} from {} into {} failed ({e}); pushing it",
                    from.repository(),
                    job.to.repository()
                ),
            }
        }
        self.reporter.started(digest, size);
        let from = SourceBlob {
            source: self.source,
            image: job.from(),
            digest,
            size,
        };
        self.dest
            .push_blob(&job.to, digest, size, &from, session, &|n| {
                self.reporter.bytes(n)
            })
            .await?;
        self.reporter.finished(digest, size, true);
        Ok(Outcome::Moved)
    }

    /// Writes one manifest once per scope: a child only when the destination lacks it, the
    /// top-level one always, with the image's tag. Says whether this call wrote it.
    async fn manifest(
        &self,
        job: &Job,
        m: &FetchedManifest,
        top: bool,
    ) -> Result<bool, StoreError> {
        let cell = self.cell(&job.to, &m.digest);
        let mut wrote = false;
        let tag = if top { job.to.tag() } else { None };
        cell.get_or_try_init(|| async {
            let size = m.bytes.len() as u64;
            if !top
                && self
                    .dest
                    .exists(&job.to, &m.digest, size, ObjectKind::Manifest)
                    .await?
            {
                return Ok(Outcome::Present);
            }
            self.dest.push_manifest(&job.to, m, tag).await?;
            wrote = true;
            Ok::<_, StoreError>(Outcome::Moved)
        })
        .await?;
        Ok(wrote)
    }

    /// Copies one image: every blob (largest first, concurrently), then its manifests,
    /// children first, the top-level one last under the image's tag.
    async fn copy_image(&self, run: &Run<'_>, job: &Job) -> Result<ImageStats, CopyError> {
        let fail = |source: StoreError, more: usize| CopyError {
            image: job.name().to_string(),
            source: Box::new(source),
            more,
        };
        let mut blobs: Vec<(&Digest, u64)> = job.image.blobs.iter().map(|(d, s)| (d, *s)).collect();
        blobs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let results =
            futures_util::future::join_all(blobs.iter().map(|(d, s)| self.blob(run, job, d, *s)))
                .await;
        let mut stats = ImageStats::default();
        let mut errors = Vec::new();
        for ((_, size), r) in blobs.iter().zip(results) {
            match r {
                Ok((Outcome::Moved, true)) => {
                    stats.blobs_moved += 1;
                    stats.bytes_moved += size;
                }
                Ok((Outcome::Mounted, true)) => {
                    stats.blobs_mounted += 1;
                    stats.bytes_mounted += size;
                }
                Ok((Outcome::Present, true)) => stats.blobs_present += 1,
                // Another image's walk moved it (and counts it).
                Ok((_, false)) => {}
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            let more = errors.len() - 1;
            return Err(fail(errors.remove(0), more));
        }
        let last = job.image.manifests.len().saturating_sub(1);
        for (i, m) in job.image.manifests.iter().enumerate() {
            let top = i == last;
            let wrote = self.manifest(job, m, top).await.map_err(|e| fail(e, 0))?;
            // Another name of the same digest wrote it: this image's tag still goes on it.
            if top && !wrote && job.to.tag().is_some() {
                self.dest
                    .push_manifest(&job.to, m, job.to.tag())
                    .await
                    .map_err(|e| fail(e, 0))?;
            }
        }
        Ok(stats)
    }

    /// Whether each image is already complete in the destination: its tag at the image's
    /// digest and every manifest of its graph there (one HEAD each), `parallel` images at a
    /// time; results in input order. A registry refuses a manifest whose blobs are missing,
    /// so blobs are not checked. The blobs of complete images that incomplete ones need count
    /// as held by their repositories (mount sources).
    pub async fn complete(&self, jobs: &[Job], parallel: usize) -> Vec<Result<bool, StoreError>> {
        let mut out: Vec<(usize, Result<bool, StoreError>)> =
            futures_util::stream::iter(jobs.iter().enumerate())
                .map(|(i, job)| async move { (i, self.is_complete(job).await) })
                .buffer_unordered(parallel.max(1))
                .collect()
                .await;
        out.sort_by_key(|(i, _)| *i);
        let out: Vec<Result<bool, StoreError>> = out.into_iter().map(|(_, r)| r).collect();
        let needed: HashSet<&Digest> = jobs
            .iter()
            .zip(&out)
            .filter(|(_, r)| !matches!(r, Ok(true)))
            .flat_map(|(job, _)| job.image.blobs.keys())
            .collect();
        if !needed.is_empty() {
            for (job, _) in jobs.iter().zip(&out).filter(|(_, r)| matches!(r, Ok(true))) {
                for d in job.image.blobs.keys().filter(|d| needed.contains(d)) {
                    self.hold(d, &job.to);
                }
            }
        }
        out
    }

    /// Whether one image is complete in the destination (see [`Engine::complete`]).
    async fn is_complete(&self, job: &Job) -> Result<bool, StoreError> {
        let top = job.image.locked.bundle_digest();
        if self.dest.tag_digest(&job.to).await?.as_ref() != Some(top) {
            return Ok(false);
        }
        for m in job.image.manifests.iter().filter(|m| &m.digest != top) {
            let size = m.bytes.len() as u64;
            if !self
                .dest
                .exists(&job.to, &m.digest, size, ObjectKind::Manifest)
                .await?
            {
                tracing::info!(
                    "{}: the tag is in place but manifest {} is missing; copying the image again",
                    job.to,
                    m.digest
                );
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Lists the referrers of `landed` (jobs whose images are all in the destination, copied
    /// in this run or already there) where the destination's readers find them, when it does
    /// not index them itself (a registry without the referrers API keeps its referrers
    /// tag-schema index; see [`Destination::index_referrers`]): every manifest of those jobs
    /// with a `subject`, grouped per destination scope and subject, one merge each, `parallel`
    /// at a time. A failure names the first job that carries one of the subject's referrers.
    pub async fn index_referrers(&self, landed: &[&Job], parallel: usize) -> Vec<CopyError> {
        type Group<'j> = (&'j Job, Vec<&'j FetchedManifest>);
        let mut groups: Vec<((String, Digest), Group<'_>)> = Vec::new();
        let mut at: HashMap<(String, Digest), usize> = HashMap::new();
        let mut seen: HashSet<(String, &Digest)> = HashSet::new();
        for job in landed {
            let scope = self.dest.scope(&job.to);
            for m in &job.image.manifests {
                let Some(subject) = ferry_oci::referrers::subject_of(&m.bytes) else {
                    continue;
                };
                if !seen.insert((scope.clone(), &m.digest)) {
                    continue;
                }
                let key = (scope.clone(), subject);
                match at.get(&key) {
                    Some(i) => groups[*i].1.1.push(m),
                    None => {
                        at.insert(key.clone(), groups.len());
                        groups.push((key, (job, vec![m])));
                    }
                }
            }
        }
        futures_util::stream::iter(groups)
            .map(|((_, subject), (job, referrers))| async move {
                self.dest
                    .index_referrers(&job.to, &subject, &referrers)
                    .await
                    .err()
                    .map(|e| CopyError {
                        image: job.name().to_string(),
                        source: Box::new(e),
                        more: 0,
                    })
            })
            .buffer_unordered(parallel.max(1))
            .filter_map(std::future::ready)
            .collect()
            .await
    }

    /// Copies every job, `parallel` images at a time; results in input order.
    pub async fn copy_all(
        &self,
        jobs: &[Job],
        parallel: usize,
    ) -> Vec<Result<ImageStats, CopyError>> {
        let run = Run::new(jobs);
        let (blobs, bytes) = run.planned();
        self.reporter.planned(blobs, bytes);
        // Blobs known held that no job of this run needs are no mount source for it.
        lock(&self.holders).retain(|d, _| !run.uses_of(d).is_empty());
        let run = &run;
        let mut out: Vec<(usize, Result<ImageStats, CopyError>)> =
            futures_util::stream::iter(jobs.iter().enumerate())
                .map(|(i, job)| async move {
                    let r = self.copy_image(run, job).await;
                    self.finished(run, i);
                    self.reporter.image(job.name(), r.is_ok());
                    (i, r)
                })
                .buffer_unordered(parallel.max(1))
                .collect()
                .await;
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, r)| r).collect()
    }
}
