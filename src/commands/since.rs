//! `ferry export --since OLD`: the older image set a delta bundle is made against, from its
//! `images.lock` (manifests fetched by digest from upstream) or its bundle (read in place).

use std::path::Path;

use anyhow::Context as _;

use super::common;
use super::printer::Printer;
use ferry_plan::delta::Base;
use ferry_plan::{LockFile, Pin};
use ferry_store::bundle::{BundleError, BundleReader, BundleSource, IMAGES_LOCK};
use ferry_store::registry::Registries;

/// The older set at `path`: a bundle (`.tar`, `.parts`, a delta too) or a lock file.
pub async fn base_of(
    path: &Path,
    registries: &Registries,
    jobs: usize,
    printer: &Printer,
) -> anyhow::Result<Base> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (lock_bytes, resolved, failed) = match BundleReader::open(path) {
        Ok(reader) => {
            let source = BundleSource::new(reader);
            let bytes = source
                .reader()
                .metadata(IMAGES_LOCK)
                .with_context(|| {
                    format!("--since {}: the bundle has no images.lock", path.display())
                })?
                .to_vec();
            let lock = common::bundle_lock(&source)?;
            let inputs = lock.inputs(Pin::Bundle)?;
            let (resolved, failed) = common::resolve(&source, &inputs, jobs, printer).await;
            (bytes, resolved, failed)
        }
        Err(BundleError::NotABundle { .. }) => {
            let bytes =
                ferry_base::fsutil::read_small_bytes(path, ferry_base::fsutil::MAX_TEXT_FILE)
                    .with_context(|| format!("cannot read --since {}", path.display()))?;
            let lock = LockFile::load(path).with_context(|| {
                format!(
                    "--since {} is neither a ferry bundle nor an images.lock",
                    path.display()
                )
            })?;
            let inputs = lock.inputs(Pin::Bundle)?;
            let (resolved, failed) = common::resolve(registries, &inputs, jobs, printer).await;
            (bytes, resolved, failed)
        }
        Err(e) => return Err(e).with_context(|| format!("--since {}", path.display())),
    };
    if !failed.is_empty() {
        // Their layers are then carried: the delta is bigger, never incomplete.
        tracing::warn!(
            "--since {}: {} image(s) of the older set could not be read, so their layers are carried again: {}",
            path.display(),
            failed.len(),
            crate::error::causes_line(common::pairs(&failed))
        );
    }
    Ok(Base::new(name, &lock_bytes, &resolved))
}
