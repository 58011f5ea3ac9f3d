//! Data directories written by journeydb before tables were Delta tables: a table journeydb
//! wrote was a link `<name>` to a version folder `.tables/<version>/` of Parquet files. When
//! the server opens such a directory, each linked version gets a Delta log of its files and
//! takes the link's place; versions no link points to are removed. Each step can be repeated,
//! so a crash during the migration is finished at the next start.

use super::{Store, delta, is_table_name, join};
use crate::error::Result;

/// Where the versions of earlier journeydb versions live in a schema's folder.
const VERSIONS_DIR: &str = ".tables";

/// Migrates the tables of schema folder `sdir` (local disks only).
pub(super) fn migrate_schema(store: &Store, sdir: &str) {
    let Some(dir) = store.objects.local_path(sdir) else { return };
    let versions = dir.join(VERSIONS_DIR);
    if !versions.is_dir() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        let link = e.path();
        if !is_table_name(&name) || !link.is_symlink() {
            continue;
        }
        let Ok(target) = link.canonicalize() else {
            // A link to nothing is not a table.
            let _ = std::fs::remove_file(&link);
            continue;
        };
        let Some(version) = target.file_name().map(|v| v.to_string_lossy().to_string()) else { continue };
        if let Err(e) = migrate_table(store, sdir, &name, &version) {
            tracing::warn!(table = %name, error = %e, "could not migrate the table to a Delta table; it stays readable as it is");
        }
    }
    // A version with a Delta log whose link was removed before it took the link's place.
    let version_names: Vec<String> = std::fs::read_dir(&versions)
        .map(|es| es.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    for version in version_names {
        let rel = join(sdir, &format!("{VERSIONS_DIR}/{version}"));
        let migrated = matches!(delta::log_state(&store.objects, &rel), Ok(delta::LogState::Version(_)));
        let name = migrated
            .then(|| delta::load(&store.objects, &rel).ok())
            .flatten()
            .and_then(|t| t.snapshot().ok().and_then(|s| s.metadata().name().map(str::to_string)));
        match name {
            Some(n) if is_table_name(&n) && !dir.join(&n).exists() => {
                let _ = std::fs::rename(versions.join(&version), dir.join(&n));
            }
            _ => {
                let _ = std::fs::remove_dir_all(versions.join(&version));
            }
        }
    }
    let _ = std::fs::remove_dir(&versions);
}

/// Gives version folder `version` a Delta log of its files, then puts it in place of link
/// `name`.
fn migrate_table(store: &Store, sdir: &str, name: &str, version: &str) -> Result<()> {
    let rel = join(sdir, &format!("{VERSIONS_DIR}/{version}"));
    if delta::log_state(&store.objects, &rel)? == delta::LogState::Absent {
        let files = super::list_data_files(&store.objects, &rel)?;
        let table = super::StoreTable::plain("", name, &store.objects, &rel, &files)?;
        let columns = super::write::file_schema(&datafusion::catalog::TableProvider::schema(&table));
        let rows = super::table::footer_rows(&store.objects, &rel, &files);
        let adds = files.iter().zip(rows).map(|(f, n)| delta::existing_add(&f.path, f.size, f.modified, n)).collect();
        delta::create(&store.objects, &rel, name, &columns, adds)?;
    }
    let (Some(link), Some(target)) = (store.objects.local_path(&join(sdir, name)), store.objects.local_path(&rel))
    else {
        return Ok(());
    };
    std::fs::remove_file(&link)?;
    std::fs::rename(&target, &link)?;
    if let Some(parent) = link.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    tracing::info!(table = %name, "migrated to a Delta table");
    Ok(())
}
