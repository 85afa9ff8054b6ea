//! `--data-dir` persistence: a restart keeps projects, logstores, shards, logs, consumer
//! groups and checkpoints. Live consumers and shard assignments are not kept: after a
//! restart every consumer re-joins, exactly as after a server-side expiry.
//!
//! Layout under the data directory:
//! - `catalog.json`: everything but the logs, rewritten atomically (temp file + rename) on
//!   every metadata or checkpoint change;
//! - `projects/<project>/<logstore>/shard-<id>.log`: one append-only file per shard, records
//!   `[u32 LE receive time][u32 LE length][LogGroup protobuf]`. A torn last record (crash
//!   mid-write) is cut off at start-up with a warning.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::EmulatorError;
use crate::groups::{Checkpoint, ConsumerGroup};
use crate::store::{Logstore, LogstoreMeta, Project, Shard, ShardSpec, Store, StoredGroup, lock};

const CATALOG: &str = "catalog.json";
const CATALOG_VERSION: u32 = 1;

/// The data directory.
pub(crate) struct Persist {
    root: PathBuf,
    /// Serialises catalog writes; each writer snapshots under it, so the last write wins
    /// with the latest state.
    save_lock: Mutex<()>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogFile {
    version: u32,
    projects: Vec<ProjectFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectFile {
    name: String,
    description: String,
    create_time: u32,
    logstores: Vec<LogstoreFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogstoreFile {
    name: String,
    meta: LogstoreMeta,
    shards: Vec<ShardFile>,
    groups: Vec<GroupFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShardFile {
    id: u32,
    base: i64,
    create_time: u32,
    begin_key: String,
    end_key: String,
    parents: Vec<u32>,
    readonly: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupFile {
    name: String,
    timeout: u32,
    order: bool,
    checkpoints: Vec<CheckpointFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckpointFile {
    shard: u32,
    checkpoint: String,
    update_time: u64,
    consumer: String,
}

impl Persist {
    /// Uses (and creates) `root`.
    pub fn open(root: &Path) -> Result<Self, EmulatorError> {
        std::fs::create_dir_all(root.join("projects")).map_err(|source| {
            EmulatorError::DataDir {
                path: root.to_owned(),
                source,
            }
        })?;
        Ok(Self {
            root: root.to_owned(),
            save_lock: Mutex::new(()),
        })
    }

    fn logstore_dir(&self, project: &str, logstore: &str) -> PathBuf {
        self.root.join("projects").join(project).join(logstore)
    }

    /// Creates an empty directory for a new logstore (a stale one from a deleted logstore of
    /// the same name is removed first).
    pub fn create_logstore_dir(&self, project: &str, logstore: &str) -> std::io::Result<PathBuf> {
        let dir = self.logstore_dir(project, logstore);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    pub fn remove_logstore(&self, project: &str, logstore: &str) -> std::io::Result<()> {
        remove_if_exists(&self.logstore_dir(project, logstore))
    }

    pub fn remove_project(&self, project: &str) -> std::io::Result<()> {
        remove_if_exists(&self.root.join("projects").join(project))
    }

    /// Writes `catalog.json` from the current state.
    pub fn save_catalog(&self, store: &Store) -> std::io::Result<()> {
        let _guard = lock(&self.save_lock);
        let catalog = snapshot(store);
        let json = serde_json::to_vec_pretty(&catalog).map_err(std::io::Error::other)?;
        let tmp = self.root.join(format!("{CATALOG}.tmp"));
        // No fsync: rename keeps the file whole, and an emulator need not survive power loss
        // (checkpoints are written every few seconds per shard).
        File::create(&tmp)?.write_all(&json)?;
        std::fs::rename(&tmp, self.root.join(CATALOG))
    }

    /// Fills `store` from the data directory (nothing to do on a fresh one).
    pub fn load(&self, store: &Store) -> Result<(), EmulatorError> {
        let path = self.root.join(CATALOG);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(EmulatorError::DataDir { path, source }),
        };
        let catalog: CatalogFile =
            serde_json::from_slice(&data).map_err(|e| EmulatorError::Corrupt {
                path: path.clone(),
                what: format!("not a catalog written by this emulator: {e}"),
            })?;
        if catalog.version != CATALOG_VERSION {
            return Err(EmulatorError::Corrupt {
                path,
                what: format!("catalog version {} is not supported", catalog.version),
            });
        }
        for p in catalog.projects {
            let project = Arc::new(Project::new(&p.name, &p.description, p.create_time));
            for l in p.logstores {
                let dir = self.logstore_dir(&p.name, &l.name);
                std::fs::create_dir_all(&dir).map_err(|source| EmulatorError::DataDir {
                    path: dir.clone(),
                    source,
                })?;
                let mut shards = Vec::with_capacity(l.shards.len());
                for s in l.shards {
                    let groups = read_shard_file(&shard_path(&dir, s.id))?;
                    let key = |k: &str| {
                        u128::from_str_radix(k, 16).map_err(|_| EmulatorError::Corrupt {
                            path: self.root.join(CATALOG),
                            what: format!("bad shard key {k:?}"),
                        })
                    };
                    let shard = Shard::new(ShardSpec {
                        id: s.id,
                        base: s.base,
                        create_time: s.create_time,
                        begin_key: key(&s.begin_key)?,
                        end_key: key(&s.end_key)?,
                        parents: s.parents,
                        readonly: s.readonly,
                        groups,
                        dir: Some(&dir),
                    })
                    .map_err(|source| EmulatorError::DataDir {
                        path: shard_path(&dir, s.id),
                        source,
                    })?;
                    shards.push(Arc::new(shard));
                }
                let groups: BTreeMap<String, ConsumerGroup> = l
                    .groups
                    .into_iter()
                    .map(|g| {
                        let mut group = ConsumerGroup::new(&g.name, g.timeout, g.order);
                        for c in g.checkpoints {
                            group.checkpoints.insert(
                                c.shard,
                                Checkpoint {
                                    cursor: c.checkpoint,
                                    update_time_us: c.update_time,
                                    consumer: c.consumer,
                                },
                            );
                        }
                        (g.name, group)
                    })
                    .collect();
                project.insert_logstore(Arc::new(Logstore::restored(
                    l.name,
                    l.meta,
                    shards,
                    groups,
                    Some(dir),
                )));
            }
            store.insert_project(project);
        }
        Ok(())
    }
}

fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn snapshot(store: &Store) -> CatalogFile {
    let projects = store
        .projects()
        .into_iter()
        .map(|p| ProjectFile {
            name: p.name.clone(),
            description: p.description(),
            create_time: p.create_time,
            logstores: p
                .logstores()
                .into_iter()
                .map(|l| LogstoreFile {
                    name: l.name.clone(),
                    meta: lock(&l.meta).clone(),
                    shards: l
                        .shards()
                        .iter()
                        .map(|s| ShardFile {
                            id: s.id,
                            base: s.base,
                            create_time: s.create_time,
                            begin_key: format!("{:032x}", s.begin_key),
                            end_key: format!("{:032x}", s.end_key),
                            parents: s.parents.clone(),
                            readonly: s.is_readonly(),
                        })
                        .collect(),
                    groups: lock(&l.groups)
                        .values()
                        .map(|g| GroupFile {
                            name: g.name.clone(),
                            timeout: g.timeout,
                            order: g.order,
                            checkpoints: g
                                .checkpoints
                                .iter()
                                .map(|(shard, c)| CheckpointFile {
                                    shard: *shard,
                                    checkpoint: c.cursor.clone(),
                                    update_time: c.update_time_us,
                                    consumer: c.consumer.clone(),
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    CatalogFile {
        version: CATALOG_VERSION,
        projects,
    }
}

fn shard_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("shard-{id}.log"))
}

/// Opens (creating) a shard's log file for appending.
pub(crate) fn open_shard_file(dir: &Path, id: u32) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(shard_path(dir, id))
}

/// Appends records in one write (one PutLogs = one `write_all`).
pub(crate) fn append_records<'a>(
    file: &mut File,
    records: impl Iterator<Item = (u32, &'a [u8])>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    for (time, bytes) in records {
        let len = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
        buf.extend_from_slice(&time.to_le_bytes());
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(bytes);
    }
    file.write_all(&buf)
}

/// Reads a shard file into memory; the groups are zero-copy slices of one buffer.
fn read_shard_file(path: &Path) -> Result<Vec<StoredGroup>, EmulatorError> {
    let data = match std::fs::read(path) {
        Ok(d) => Bytes::from(d),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(EmulatorError::DataDir {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut groups = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let time = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes"));
        let len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        let end = pos + 8 + len;
        if end > data.len() {
            break;
        }
        groups.push(StoredGroup {
            bytes: data.slice(pos + 8..end),
            time,
        });
        pos = end;
    }
    if pos != data.len() {
        tracing::warn!(file = %path.display(), kept = pos, dropped = data.len() - pos,
            "shard file ends with a torn record (crash mid-write?); cutting it off");
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|source| EmulatorError::DataDir {
                path: path.to_owned(),
                source,
            })?;
        f.set_len(pos as u64)
            .map_err(|source| EmulatorError::DataDir {
                path: path.to_owned(),
                source,
            })?;
    }
    Ok(groups)
}
